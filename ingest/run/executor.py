"""The worker processes: a fork-server process pool for the CPU work of a poll (extraction,
ingest.text.analysis; scoring, ingest.judge.scoring), whose workers exit with their parent.
The fork server preloads that code once (ingest.run.preload); the workers carry neither the
store nor httpx."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

from ingest.run.memory import release_freed_memory

IDLE_POOL = 60.0  # seconds without a task after which the service's pool (workers, fork server) exits


def make_executor(workers: int | None = None, language: str = "en", idle: float | None = None) -> Executor:
    """A process pool for extraction and scoring, one worker per core. Workers fork from a
    server that has loaded the code and the word statistics of ``language`` once (ingest.run.preload),
    shared by all of them, not from the event-loop process. With ``idle``, the pool exists only
    while there is work (:class:`IdlePool`)."""
    if idle is not None:
        return IdlePool(lambda: _process_pool(workers, language), idle)
    return _process_pool(workers, language)


def _process_pool(workers: int | None, language: str) -> ProcessPoolExecutor:
    import multiprocessing

    os.environ["INGEST_PRELOAD_LANGUAGE"] = language  # read by the fork server when it starts
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.run.preload"])
    return ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=ctx,
                               initializer=_watch_parent, initargs=(os.getpid(),))


class IdlePool(Executor):
    """A process pool started by the first task and stopped, with its fork server, when no task has
    run for ``idle`` seconds. The service polls for a minute and waits for half an hour: the
    extraction processes would otherwise hold ~200 MB (PSS) the whole time for nothing; starting
    them again costs ~2 s of CPU at the next poll."""

    def __init__(self, make: Callable[[], ProcessPoolExecutor], idle: float) -> None:
        self._make, self.idle = make, idle
        self._lock = threading.Lock()
        self.pool: ProcessPoolExecutor | None = None
        self._busy = 0
        self._timer: threading.Timer | None = None
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.pool is None:
                self.pool = self._make()
            self._busy += 1
            future = self.pool.submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy == 0 and not self._closed and self.pool is not None:
                self._timer = threading.Timer(self.idle, self._expire)
                self._timer.daemon = True
                self._timer.start()

    def _expire(self) -> None:
        with self._lock:  # held throughout: a task submitted now must not meet a fork server being stopped
            if self._busy or self.pool is None or self._closed:
                return
            self.pool.shutdown(wait=True)
            self.pool = None
            _stop_fork_server()
        release_freed_memory()  # what the poll left in this process's heap, too

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            pool = self.pool
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _stop_fork_server() -> None:
    """Stop the fork server (it exits when its "alive" pipe closes); the next pool starts another.
    multiprocessing has no public call for it; without one the server just stays."""
    import multiprocessing.forkserver

    stop = getattr(multiprocessing.forkserver._forkserver, "_stop", None)
    if stop is not None:
        with contextlib.suppress(OSError, ChildProcessError):
            stop()


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

    pool = executor.pool if isinstance(executor, IdlePool) else executor
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.kill()
    pid = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)
    if pid:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
