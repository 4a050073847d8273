"""DNS pinning: connect to the addresses the private-address guard checked, never to a second lookup's.

A name checked by :func:`ingest.sources.urls.resolve_safe` could resolve elsewhere a moment later (DNS
rebinding); the fetcher's connection pools use this network backend, which connects to the checked
addresses while TLS still verifies the name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses the private-address guard checked for a name, not to
    whatever a second DNS lookup returns (DNS rebinding). TLS still verifies the name."""

    def __init__(self, pins: dict[str, tuple[str, ...]]) -> None:
        from httpcore._backends.auto import AutoBackend

        self._pins = pins
        self._backend = AutoBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = self._pins.get(host.lower() if isinstance(host, str) else host)
        if not addresses:
            return await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        error: Exception | None = None
        for addr in addresses:
            try:
                return await self._backend.connect_tcp(addr, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error if error else httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return await self._backend.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
