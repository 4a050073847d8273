"""What the web view needs from its host (the service or ``ingest serve``): one small dataclass shared by
ingest.out.web and ingest.out.web_teaching."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ingest.config import Config
from ingest.run.metrics import Metrics
from ingest.store import SqlStore

__all__ = ["WebContext"]


@dataclass
class WebContext:
    """What the web view needs from its host (the service or ``ingest serve``)."""

    store: SqlStore  # read on the event loop (the service gives a read-only connection of its own)
    config: Callable[[], Config]  # the current config (SIGHUP may replace it)
    seeds: Callable[[], list[str]]
    metrics: Metrics
    clock: Callable[[], float] = time.time
    # runs fn(writer store) in the store's thread (the one writer); None: fn(store) here
    writer: Callable[[Callable[[SqlStore], Any]], Awaitable[Any]] | None = None
    listen_host: str = ""  # the address served ("" = [web] listen's): a Host header naming it is accepted
    # the service re-decides the other pages after a verdict (ingest.service.teaching); None (`ingest serve`):
    # the Apply button does it
    on_verdict: Callable[[], None] | None = None
    # the service polls these feeds (all with None) now; None (`ingest serve`): nothing here polls
    poll_now: Callable[[list[int] | None], Awaitable[int]] | None = None

    async def write(self, fn: Callable[[SqlStore], Any]) -> Any:
        return await self.writer(fn) if self.writer is not None else fn(self.store)
