"""What discovery needs of a fetcher, as a type: ingest.sources.fetch.Fetcher, or a wrapper that
archives what it reads (ingest.run.backfill)."""

from __future__ import annotations

from typing import Protocol

from ingest.sources.fetch import FetchResult


class Fetches(Protocol):
    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                    trusted: bool = False, accept: str | None = None) -> FetchResult: ...
