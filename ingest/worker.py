"""What runs in the worker processes: extraction, term counts, near-duplicate signatures,
scoring. CPU only: this module imports neither the store nor httpx, so a worker (forked
from a server that preloads it) carries none of them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from .blobs import unpack
from .dedup import signature, text_hash
from .extract import Page, extract, extract_plain
from .relevance import Scored, TermStats, score_stream, term_counts


@dataclass(frozen=True)
class Analysed:
    """What a worker process returns for one page."""

    page: Page
    title: str  # the page's title, or its first line when it has none
    text: str  # the article text (paragraphs separated by blank lines)
    counts: dict[str, int]
    text_hash: str
    minhash: bytes | None  # near-duplicate signature


def analyse(html: bytes, url: str, content_type: str = "") -> Analysed | None:
    """Extraction, term counting and near-duplicate signature: the CPU-bound part (runs in a worker).
    A text/plain page is read as text (trafilatura would find no HTML in it)."""
    if content_type.split(";")[0].strip().lower() == "text/plain":
        charset = content_type.partition("charset=")[2].split(";")[0].strip(" \"'") or None
        page = extract_plain(html, url, charset)
    else:
        page = extract(html, url)
    if page is None:
        return None
    title = page.title or page.text.split("\n", 1)[0][:120]
    text = page.text.strip()
    # term counts of the text as the corpus file holds it (title line, then the text)
    return Analysed(page, title, text, term_counts(f"{title}\n\n{text}\n"), text_hash(page.text),
                    signature(page.text))


def score_window(seeds: Sequence[str], window: Sequence[bytes], batch: Sequence[dict[str, int]],
                 labels: Sequence[bool | None], language: str, fixed: float | None) -> Scored:
    """Score the model's window (packed term counts, as stored) and a batch in one stream;
    returns the batch's scores. CPU work (a fraction of a second for 3,000 texts): runs in a worker."""
    scored = score_packed(seeds, window, labels, language, fixed, batch)
    return Scored(scored.scores[len(window):], scored.threshold)


def score_packed(seeds: Sequence[str], window: Sequence[bytes], labels: Sequence[bool | None], language: str,
                 fixed: float | None, batch: Sequence[dict[str, int]] = ()) -> Scored:
    """Score the window (packed as stored) followed by ``batch`` (term counts) as one stream.
    Pure CPU: may run in a worker process."""
    counts = [unpack(b) for b in window] + list(batch)
    return score_stream(seeds, counts, list(labels) + [None] * len(batch), stats=TermStats(language), fixed=fixed)


def make_executor(workers: int | None = None, language: str = "en") -> Executor:
    """A process pool for extraction and scoring, one worker per core. Workers fork from a
    server that has loaded the code and the word statistics of ``language`` once (ingest.preload),
    shared by all of them, not from the event-loop process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    os.environ["INGEST_PRELOAD_LANGUAGE"] = language  # read by the fork server when it starts
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.preload"])
    return ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=ctx,
                               initializer=_watch_parent, initargs=(os.getpid(),))


def _watch_parent(pid: int) -> None:
    """In each worker: exit when the process that made the pool is gone. Workers are children
    of the fork server, not of that process, and block on a queue whose write end they hold
    themselves, so a parent killed outright (SIGKILL, OOM) would otherwise leave them forever."""
    import threading

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass  # alive (owned by another user after a pid reuse: cannot tell, keep going)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def kill_workers(executor: Executor) -> None:
    """Kill the pool's worker processes and their fork server at once (for an immediate exit)."""
    import multiprocessing.forkserver
    import signal

    for proc in list((getattr(executor, "_processes", None) or {}).values()):
        proc.kill()
    pid = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)
    if pid:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
