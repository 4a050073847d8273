"""The store's own thread: while an event loop runs, every store call goes through it.

SQLite commits (and the corpus file fsyncs before them) block; on the event
loop they would hold up every request in flight, and overlapping polls would
time out behind one another's writes. ``await db(fn, *args)`` runs ``fn`` in
one dedicated thread, so there is still exactly one writer, calls run one at
a time in the order they were made, and the loop never waits on the disk.
Readers that only look (the web view) use their own read-only connection.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class StoreThread:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")

    async def __call__(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Wait for the calls already made, then end the thread."""
        self._pool.shutdown(wait=True)
