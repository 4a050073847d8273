"""What ``ingest poll`` shows while it runs: feeds done, pages fetched, kept.

On a terminal, a progress bar (rich); log lines printed meanwhile go above the
bar (rich redirects stderr while it is live), so nothing is garbled. With
stderr redirected (cron, systemd, a pipe, a log file) a plain line every
``INGEST_PROGRESS_SECONDS`` (10 s) instead, so a long first poll is not silent.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Protocol, Self, TextIO

LINE_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


class ProgressHook(Protocol):
    def start(self, feeds: int) -> None: ...
    def feed_done(self) -> None: ...
    def page_fetched(self) -> None: ...
    def kept(self) -> None: ...


class TerminalProgress:
    """Use as a context manager around the poll; pass it as the poll's progress hook."""

    def __init__(self, handler: logging.Handler | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("feeds"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("· pages fetched {task.fields[pages]} · kept {task.fields[kept]}"),
                                  TimeElapsedColumn(), console=Console(file=sys.stderr), transient=False,
                                  redirect_stderr=True, redirect_stdout=False)
        self._task = self._progress.add_task("poll", total=None, pages=0, kept=0)
        self._pages = self._kept = 0
        self._handler = handler if isinstance(handler, logging.StreamHandler) else None
        self._stream = None

    def __enter__(self) -> TerminalProgress:
        self._progress.start()
        if self._handler is not None:  # log lines through rich's stderr proxy: printed above the bar
            self._stream = self._handler.setStream(sys.stderr)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handler is not None and self._stream is not None:
            self._handler.setStream(self._stream)
        self._progress.stop()

    def start(self, feeds: int) -> None:
        self._progress.update(self._task, total=feeds)

    def feed_done(self) -> None:
        self._progress.advance(self._task)

    def page_fetched(self) -> None:
        self._pages += 1
        self._progress.update(self._task, pages=self._pages)

    def kept(self) -> None:
        self._kept += 1
        self._progress.update(self._task, kept=self._kept)


class _Ticker:
    """A line on ``stream`` every ``every`` seconds while the run goes on (from a thread: it speaks also
    while the run waits on a slow host), and nothing when the run took less."""

    def __init__(self, stream: TextIO | None = None, every: float | None = None) -> None:
        self._stream = stream or sys.stderr
        env = os.environ.get("INGEST_PROGRESS_SECONDS")
        self._every = every if every is not None else float(env) if env else LINE_EVERY
        self._pages = self._kept = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            print(f"{self._line()} · {time.monotonic() - self._started:.0f} s", file=self._stream, flush=True)

    def _line(self) -> str:
        raise NotImplementedError


class LineProgress(_Ticker):
    """``ingest poll`` without a terminal: feeds done, pages fetched, kept."""

    def __init__(self, stream: TextIO | None = None, every: float | None = None) -> None:
        super().__init__(stream, every)
        self._feeds: int | None = None
        self._done = 0

    def _line(self) -> str:
        total = f"/{self._feeds}" if self._feeds is not None else ""
        return f"poll: {self._done}{total} feeds done · pages fetched {self._pages} · kept {self._kept}"

    def start(self, feeds: int) -> None:
        self._feeds = feeds

    def feed_done(self) -> None:
        self._done += 1

    def page_fetched(self) -> None:
        self._pages += 1

    def kept(self) -> None:
        self._kept += 1


class BackfillBar:
    """``ingest backfill`` on a terminal: pages fetched of the budget (or of the candidates), candidates
    found, kept, and the time left at the current pace (the fetcher's politeness sets it)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("backfill"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("· candidates {task.fields[found]} · kept {task.fields[kept]} · ETA"),
                                  TimeRemainingColumn(), console=Console(file=sys.stderr), transient=False)
        self._task = self._progress.add_task("backfill", total=None, found=0, kept=0)
        self._found = self._kept = 0

    def __enter__(self) -> BackfillBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, budget: int | None, pending: int) -> None:
        self._progress.update(self._task, total=min(budget, pending) if budget is not None else pending)

    def found(self, n: int) -> None:
        self._found += n
        self._progress.update(self._task, found=self._found)

    def fetched(self, kept: bool) -> None:
        self._kept += kept
        self._progress.update(self._task, advance=1, kept=self._kept)


class BackfillLines(_Ticker):
    """``ingest backfill`` without a terminal: a line every ``INGEST_PROGRESS_SECONDS``."""

    def __init__(self, stream: TextIO | None = None, every: float | None = None) -> None:
        super().__init__(stream, every)
        self._found = 0
        self._total: int | None = None

    def _line(self) -> str:
        total = f"/{self._total}" if self._total is not None else ""
        return f"backfill: candidates {self._found} · fetched {self._pages}{total} · kept {self._kept}"

    def start(self, budget: int | None, pending: int) -> None:
        self._total = min(budget, pending) if budget is not None else pending

    def found(self, n: int) -> None:
        self._found += n

    def fetched(self, kept: bool) -> None:
        self._pages += 1
        self._kept += kept
