"""The store: everything the tool remembers, behind one contract.

``Store`` is the SQLite backend (``ingest.store.sqlite``): ``ingest.db`` next to
the corpus folder, one writer. The contract's typed values live in
``ingest.store.rows``, the schema and its numbered migrations in
``ingest.store.schema_sqlite``; the corpus file format in ``ingest.corpus``.
"""

from ..blobs import pack, unpack
from ..corpus import TMP_PREFIX, corpus_text, read_corpus_file
from .base import MAX_DEFERRAL, MAX_PAGE_ATTEMPTS, ORPHANS, STREAM_WINDOW, WITHDRAWN, SqlStore
from .rows import (
    CheckReport,
    Decision,
    FeedRow,
    Health,
    NewArticle,
    PageDoc,
    SearchError,
    SearchHit,
    Source,
    StoreError,
)
from .schema_sqlite import MIGRATIONS, SCHEMA, SCHEMA_VERSION
from .sqlite import Store
from .thread import StoreThread

__all__ = [
    "MAX_DEFERRAL", "MAX_PAGE_ATTEMPTS", "MIGRATIONS", "ORPHANS", "SCHEMA", "SCHEMA_VERSION", "STREAM_WINDOW",
    "TMP_PREFIX", "WITHDRAWN", "CheckReport", "Decision", "FeedRow", "Health", "NewArticle", "PageDoc",
    "SearchError", "SearchHit", "Source", "SqlStore", "Store", "StoreError", "StoreThread", "corpus_text", "pack",
    "read_corpus_file", "unpack",
]
