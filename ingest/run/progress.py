"""A progress bar for ``ingest poll`` on a terminal (rich): feeds done, pages fetched, kept.

Shown only when stderr is a TTY; log lines printed meanwhile go above the
bar (rich redirects stderr while it is live), so nothing is garbled. With
stderr redirected (cron, systemd, a pipe) nothing extra is written.
"""

from __future__ import annotations

import logging
import sys
from typing import Protocol


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
