"""The worker processes: a fork-server process pool for the CPU work of a poll (extraction,
ingest.text.analysis; scoring, ingest.judge.scoring), whose workers exit with their parent.
The fork server preloads that code once (ingest.run.preload); the workers carry neither the
store nor httpx."""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import Executor


def make_executor(workers: int | None = None, language: str = "en") -> Executor:
    """A process pool for extraction and scoring, one worker per core. Workers fork from a
    server that has loaded the code and the word statistics of ``language`` once (ingest.run.preload),
    shared by all of them, not from the event-loop process."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    os.environ["INGEST_PRELOAD_LANGUAGE"] = language  # read by the fork server when it starts
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.run.preload"])
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
