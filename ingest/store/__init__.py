"""The store: everything the tool remembers, behind one contract.

``open_store(config)`` opens the backend the config names: ``Store``
(``ingest.store.sqlite``: ``ingest.db`` next to the corpus folder, one writer;
the default) or ``PgStore`` (``ingest.store.postgres``: ``[store] url``, any
number of workers). The SQL both share is in ``ingest.store.base``. The contract's typed values live in
``ingest.store.rows``, the schema and its numbered migrations in
``ingest.store.schema_sqlite``; the corpus file format in ``ingest.text.corpus``.
"""

from ingest.blobs import pack, unpack
from ingest.config import Config
from ingest.store.base import MAX_DEFERRAL, MAX_PAGE_ATTEMPTS, ORPHANS, STREAM_WINDOW, WITHDRAWN, SqlStore
from ingest.store.rows import (
    CheckReport,
    Decision,
    FeedRow,
    Health,
    NewArticle,
    PageDoc,
    SearchError,
    SearchHit,
    Source,
    StoreBusy,
    StoreError,
)
from ingest.store.schema_sqlite import MIGRATIONS, SCHEMA, SCHEMA_VERSION
from ingest.store.sqlite import Store
from ingest.store.thread import StoreThread
from ingest.text.corpus import TMP_PREFIX, corpus_text, read_corpus_file

__all__ = [
    "MAX_DEFERRAL", "MAX_PAGE_ATTEMPTS", "MIGRATIONS", "ORPHANS", "SCHEMA", "SCHEMA_VERSION", "STREAM_WINDOW",
    "TMP_PREFIX", "WITHDRAWN", "CheckReport", "Decision", "FeedRow", "Health", "NewArticle", "PageDoc",
    "SearchError", "SearchHit", "Source", "SqlStore", "Store", "StoreBusy", "StoreError", "StoreThread", "corpus_text",
    "pack",
    "open_store", "read_corpus_file", "unpack",
]


def open_store(config: Config, *, writer: bool = True, readonly: bool = False) -> SqlStore:
    """The store the config names: PostgreSQL when [store] url is set, else SQLite in [paths] store."""
    if config.store.url:
        from ingest.store.postgres import PgStore

        return PgStore.open(config.store.url, config.paths.store, writer=writer, readonly=readonly)
    return Store.open(config.paths.store, writer=writer, readonly=readonly)
