"""The worker processes: a fork-server process pool for the CPU work of a poll (extraction,
ingest.text.analysis; scoring, ingest.judge.scoring), whose workers exit with their parent.
The fork server preloads that code once (ingest.run.preload); the workers carry neither the
store nor httpx."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future, ProcessPoolExecutor
from typing import Any

from ingest.run.memory import release_freed_memory

IDLE_POOL = 60.0  # seconds without a task after which the service's pool (workers, fork server) exits


def make_executor(workers: int | None = None, language: str = "en", idle: float | None = None) -> Executor:
    """A process pool for extraction and scoring, one worker per core. Workers fork from a
    server that has loaded the code and the word statistics of ``language`` once (ingest.run.preload),
    shared by all of them, not from the event-loop process. The pool starts with its first task,
    off the caller's thread; with ``idle``, it exists only while there is work (:class:`IdlePool`)."""
    return IdlePool(lambda: _process_pool(workers, language), idle)


def _process_pool(workers: int | None, language: str) -> ProcessPoolExecutor:
    import multiprocessing

    os.environ["INGEST_PRELOAD_LANGUAGE"] = language  # read by the fork server when it starts
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.run.preload"])
    return ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=ctx,
                               initializer=_watch_parent, initargs=(os.getpid(),))


def _ready() -> None:
    """A no-op task: submitting one per worker starts the fork server and every worker."""


class IdlePool(Executor):
    """A process pool started by the first task and, with ``idle``, stopped with its fork server
    when no task has run for ``idle`` seconds. The service polls for a minute and waits for half an
    hour: the extraction processes would otherwise hold ~200 MB (PSS) the whole time for nothing;
    starting them again costs ~2 s of CPU at the next poll.

    The pool starts in a thread of its own: ProcessPoolExecutor.submit starts the fork server and
    forks a worker on the caller's thread, and the server answers only once it has loaded
    ingest.run.preload, which held the event loop still for 1-4 s at every poll's first page.
    Tasks submitted meanwhile wait in a list and are passed on when the workers are up."""

    def __init__(self, make: Callable[[], ProcessPoolExecutor], idle: float | None) -> None:
        self._make, self.idle = make, idle
        self._lock = threading.Lock()
        self.pool: ProcessPoolExecutor | None = None
        self._busy = 0
        self._timer: threading.Timer | None = None
        self._closed = False
        self._starting = False
        self._starter: threading.Thread | None = None
        self._waiting: list[tuple[Future, Callable[..., Any], tuple, dict]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.pool is None:
                self.pool, self._starting = self._make(), True
                self._starter = threading.Thread(target=self._start, args=(self.pool,), name="pool-start", daemon=True)
                self._starter.start()
            self._busy += 1
            if self._starting:
                future: Future = Future()
                self._waiting.append((future, fn, args, kwargs))
            else:
                future = self.pool.submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _start(self, pool: ProcessPoolExecutor) -> None:
        """Start the fork server and the workers (here, where blocking harms no one), then pass on
        the tasks that waited."""
        failed: BaseException | None = None
        try:
            for _ in range(pool._max_workers):  # type: ignore[attr-defined]  # one per worker: each forks one
                pool.submit(_ready)
        except BaseException as exc:  # a fork server that cannot start: the waiting tasks fail with it
            failed = exc
        with self._lock:
            self._starting = False
            waiting, self._waiting = self._waiting, []
        for outer, fn, args, kwargs in waiting:  # outside the lock: a result runs _done, which takes it
            if not outer.set_running_or_notify_cancel():
                continue
            try:
                if failed is not None:
                    raise failed
                inner = pool.submit(fn, *args, **kwargs)
            except BaseException as exc:
                outer.set_exception(exc)
                continue
            inner.add_done_callback(functools.partial(_relay, outer))

    def _done(self, _: Future) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy == 0 and not self._closed and self.pool is not None and self.idle is not None:
                self._timer = threading.Timer(self.idle, self._expire)
                self._timer.daemon = True
                self._timer.start()

    def _expire(self) -> None:
        with self._lock:  # held throughout: a task submitted now must not meet a fork server being stopped
            if self._busy or self.pool is None or self._closed or self._starting:
                return
            self.pool.shutdown(wait=True)
            self.pool = None
            _stop_fork_server()
            _stop_resource_tracker()
        release_freed_memory()  # what the poll left in this process's heap, too

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            pool, starter = self.pool, self._starter
            waiting, self._waiting = (self._waiting, []) if cancel_futures else ([], self._waiting)
        for outer, *_ in waiting:
            outer.cancel()
        if wait and starter is not None:
            starter.join()  # the tasks still waiting for the workers reach the pool, to be run before it stops
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _relay(outer: Future, inner: Future) -> None:
    """Give a waiting task's future the result of the pool's."""
    if inner.cancelled():  # (the outer future is running: it can only fail now)
        outer.set_exception(CancelledError())
    elif (exc := inner.exception()) is not None:
        outer.set_exception(exc)
    else:
        outer.set_result(inner.result())


def _stop_fork_server() -> None:
    """Stop the fork server (it exits when its "alive" pipe closes); the next pool starts another.
    multiprocessing has no public call for it; without one the server just stays."""
    import multiprocessing.forkserver

    stop = getattr(multiprocessing.forkserver._forkserver, "_stop", None)
    if stop is not None:
        with contextlib.suppress(OSError, ChildProcessError):
            stop()


def _stop_resource_tracker() -> None:
    """Stop multiprocessing's resource tracker, a process of its own (~9 MB) that the fork server
    started and that would otherwise stay for the life of the service. It tracks the named
    semaphores of the pool's queues: once the pool is collected none is left, and the next pool's
    fork server starts another tracker. If one is still alive, the tracker is left running (stopping
    it would unlink that semaphore under its owner)."""
    import gc
    import multiprocessing.resource_tracker
    import multiprocessing.synchronize

    gc.collect()  # the stopped pool's queues (reference cycles through their feeder threads)
    if any(isinstance(obj, multiprocessing.synchronize.SemLock) for obj in gc.get_objects()):
        return
    stop = getattr(multiprocessing.resource_tracker._resource_tracker, "_stop", None)
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
