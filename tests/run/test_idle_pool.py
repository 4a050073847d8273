"""The service's process pool exists only while there is work (issue 24: an idle service held
~200 MB of extraction processes between polls)."""

from __future__ import annotations

import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import time
from pathlib import Path

import pytest

from ingest.run.executor import _stop_fork_server, make_executor

pytestmark = pytest.mark.slow  # subprocesses and whole polls: left out by -m "not slow"


def _pid() -> int:
    return os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a child that exited and was not yet reaped is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(cond, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_pool_and_its_fork_server_exit_when_idle_and_come_back_for_work():
    pool = make_executor(2, idle=0.5)
    try:
        workers = {pool.submit(_pid).result(timeout=120) for _ in range(8)}
        server = multiprocessing.forkserver._forkserver._forkserver_pid
        tracker = multiprocessing.resource_tracker._resource_tracker._pid
        assert server and tracker and workers and os.getpid() not in workers
        wait_for(lambda: pool.pool is None)  # idle: stopped
        # the resource tracker (a process of ~9 MB) goes too: nothing is left for it to track
        wait_for(lambda: not any(_alive(p) for p in workers | {server, tracker}))
        again = pool.submit(_pid).result(timeout=120)  # work again: a new pool
        assert again not in workers and _alive(again)
        assert multiprocessing.forkserver._forkserver._forkserver_pid not in (None, server)
    finally:
        pool.shutdown()


def test_a_busy_pool_is_not_stopped_under_a_running_task():
    pool = make_executor(2, idle=0.2)
    try:
        slow = pool.submit(time.sleep, 5.0)  # a long extraction: the pool is busy, whatever the idle time
        first = pool.submit(_pid).result(timeout=120)
        running = pool.pool
        time.sleep(1.0)
        assert not slow.done() and pool.pool is running and _alive(first)
        slow.result(timeout=120)
    finally:
        pool.shutdown()


def _fail() -> None:
    raise ValueError("in the worker")


def test_the_first_task_does_not_hold_the_callers_thread_while_the_workers_load():
    """Starting the fork server loads ingest.run.preload (1-4 s); ProcessPoolExecutor did that on
    the thread that submitted the first task: the event loop, at every poll's first page. The pool
    now starts in a thread of its own and passes on what was submitted meanwhile, results and errors."""
    for idle in (None, 30.0):  # `ingest poll`'s pool and the service's
        pool = make_executor(2, idle=idle)
        try:
            started = time.monotonic()
            first = pool.submit(_pid)
            submitted = time.monotonic() - started
            failing = pool.submit(_fail)
            assert not first.done()  # the workers are still loading: the call returned before them
            worker = first.result(timeout=120)
            loaded = time.monotonic() - started
            assert worker != os.getpid() and _alive(worker)
            assert submitted < loaded / 4, (submitted, loaded)
            try:
                failing.result(timeout=120)
            except ValueError as exc:
                assert str(exc) == "in the worker"
            else:
                raise AssertionError("the task's error was lost")
            assert pool.submit(_pid).result(timeout=120) != os.getpid()  # once up, straight to the pool
        finally:
            pool.shutdown()
            _stop_fork_server()  # the next case starts its own


def test_a_task_submitted_while_the_workers_load_still_runs_when_the_pool_is_shut_down():
    """shutdown(wait=True) runs what was submitted, as ProcessPoolExecutor's does, even a task that
    was still waiting for the workers to start."""
    pool = make_executor(2)
    try:
        waiting = pool.submit(_pid)
    finally:
        pool.shutdown(wait=True)
    assert waiting.result(timeout=0) != os.getpid()
