"""How many connections the fetcher may keep open: a first poll of 1,000 hosts at the default
politeness touches every host about once a second, so fewer pools than hosts means a new TCP
(and TLS) connection for nearly every request, the poll's largest CPU cost (measured: 116 s of
CPU for 10,000 feeds with 256 pools, 77 s with one per host). And each host's state: its
politeness (slots, spacing) and its own pool."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import AsyncIterator

import httpx

MOST_POOLS = 1200  # per-host connection pools kept open at once, at most
DRAIN_BYTES = 65536  # an unwanted body longer than this is not read: its connection is closed
RESERVED_FILES = 256  # descriptors left for the store, logs, the worker pipes, the web view
KEEPALIVE = 30.0  # seconds an idle connection is kept (httpx keepalive_expiry)


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one (what systemd advises a program that needs
    many to do itself; the soft default is often 1024) and return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def open_pools(per_host: int) -> int:
    """Per-host pools that fit in the open-files limit, each holding up to ``per_host`` sockets."""
    return max(16, min(MOST_POOLS, (raise_open_files_limit() - RESERVED_FILES) // max(1, per_host)))


async def drain(body: AsyncIterator[bytes], most: int = DRAIN_BYTES) -> None:
    """Read an unwanted body (a 304's, an error page) to its end: httpx closes a connection whose
    response was not read through, so every 304 of a re-poll cost a new connection (measured: 10,000
    connections for 10,000 feeds on 1,000 hosts)."""
    read = 0
    async for chunk in body:
        read += len(chunk)
        if read > most:
            return


class Host:
    """Per-host politeness state, and the host's own small connection pool."""

    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.next_start = 0.0  # monotonic time before which no request may start
        self.last_sent = -1e9  # monotonic time the last request was sent
        self.lock = asyncio.Lock()
        self.clients: dict[str, httpx.AsyncClient] = {}  # by proxy ("" = direct)
        self.active = 0  # requests in flight
        self.contacted = False  # a request has been sent
        self.heard = asyncio.Event()  # the first request came back (an answer or a failure)
