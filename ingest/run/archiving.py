"""Feed and discovery documents into the WARC archive (ingest.store.archive), from the event loop: the
records are built in a thread (digests and gzip: CPU that would stall the loop or the store's thread),
then appended in the store's thread."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ingest.sources.exchange import Exchange
from ingest.sources.fetch import Fetcher, FetchResult
from ingest.store import SqlStore, StoreThread
from ingest.store.archive import build_records


async def archive_exchanges(db: StoreThread, store: SqlStore, max_size: int, exchanges: Sequence[Exchange],
                            kind: str = "feeds") -> None:
    built = await asyncio.to_thread(build_records, exchanges)
    if built is not None:
        await db(lambda: store.archive_writer(max_size).append(built, kind))


class ArchivingFetcher:
    """The fetcher, with each document it reads (answered 2xx) written to the archive's feeds files
    (ingest.sources.fetches.Fetches: what discovery takes)."""

    def __init__(self, fetcher: Fetcher, db: StoreThread, store: SqlStore, max_size: int) -> None:
        self.fetcher, self.db, self.store, self.max_size = fetcher, db, store, max_size

    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                    trusted: bool = False, accept: str | None = None) -> FetchResult:
        res = await self.fetcher.fetch(url, etag=etag, last_modified=last_modified, trusted=trusted, accept=accept,
                                       record=True)
        if res.ok and res.exchanges:
            await archive_exchanges(self.db, self.store, self.max_size, res.exchanges)
        return res
