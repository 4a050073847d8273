"""The core of the SQL both backends share: the connection, constants, and the backend hooks.

The queries themselves live by table family (feeds, pages, verdicts, digests) in
modules that build on ``SqlCore``; ``ingest.store.base.SqlStore`` joins them.

``SqlStore`` holds every query that reads or writes the same way on both
(``?`` placeholders; the PostgreSQL connection translates them). Each backend
adds what differs: opening, transactions, migrations, full-text search,
integrity checks, and where article text lives (SQLite: corpus files written
around the commit; PostgreSQL: a column, the folder written by ``ingest corpus
sync``). Nothing outside the store writes SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from ingest.store.contract import Record
from ingest.store.rows import SearchHit

WITHDRAWN = "withdrawn"  # folder (in the store) of articles the user marked irrelevant
DROPPED = "dropped"  # folder of articles the model took out on re-deciding (back when a later model keeps them)
STREAM_WINDOW = 3000  # pages whose term counts the relevance model learns from
TRIM_SLACK = 200  # the window is trimmed back to STREAM_WINDOW once it holds this many more
MAX_PAGE_ATTEMPTS = 3  # a page whose requests keep failing is given up after this many polls
MAX_DEFERRAL = 7 * 86400.0  # a page deferred (never sent) for this long is given up
PAGE_RETRY = 900.0  # a waiting page (queued, deferred) whose request failed is tried again after this


ORPHANS = "orphans"  # folder where `ingest check --repair` puts corpus files no row knows


_QUERY_WORD = re.compile(r"\w+\*?", re.UNICODE)
_TEXT_WORD = re.compile(r"\w+", re.UNICODE)


def _query_words(query: str) -> list[str]:
    """The words of an FTS5 query, lower-cased (operators left out; "x*" kept as a prefix)."""
    return [w.lower() for w in _QUERY_WORD.findall(query) if w not in ("AND", "OR", "NOT", "NEAR")]


def _fold(word: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c))


def _snippet(text: str, words: list[str], size: int = 32) -> str:
    """About ``size`` words of ``text`` around the densest run of query matches, the matches between
    \x02 and \x03 (as FTS5's snippet() marks them), "…" where text was cut."""
    exact = {_fold(w) for w in words if not w.endswith("*")}
    prefixes = tuple(_fold(w[:-1]) for w in words if w.endswith("*"))
    spans = [(m.start(), m.end(), _fold(m.group())) for m in _TEXT_WORD.finditer(text)]
    hits = [i for i, (_, _, w) in enumerate(spans) if w in exact or (prefixes and w.startswith(prefixes))]
    if not spans:
        return ""
    start = 0
    if hits:  # the window holding the most hits
        best = max(range(len(hits)), key=lambda k: sum(1 for h in hits[k:] if h < hits[k] + size))
        start = max(0, hits[best] - 4)
    end = min(len(spans), start + size)
    out, pos = [], spans[start][0]
    hit_set = set(hits)
    for i in range(start, end):
        s0, e0, _ = spans[i]
        out.append(text[pos:s0])
        out.append(f"\x02{text[s0:e0]}\x03" if i in hit_set else text[s0:e0])
        pos = e0
    snippet = " ".join("".join(out).split())
    return ("…" if start > 0 else "") + snippet + ("…" if end < len(spans) else "")


class SqlCore:
    """The shared part of a store every table family builds on: the connection, the corpus folder,
    and what each backend provides (transactions, locks, full-text indexing)."""

    backend = ""  # "sqlite" | "postgresql"

    def __init__(self, root: Path, db: Any) -> None:
        self.root = root
        self.corpus = root / "corpus"
        self.db = db  # sqlite3.Connection, or ingest.store.postgres.PgConnection: execute(sql with ?, params)
        self.recovered: dict[str, int] = {}  # what the writer's start-up recovery did

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # -- what each backend provides -------------------------------------

    def announce(self, command: str, web: str = "") -> None:
        """Say which command holds the store (and where it serves the web view), for the commands it
        turns away. Only a store with one writer has a holder (SQLite); many workers have none."""

    def schema_version(self) -> int:
        row = self.db.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def elect(self, job: str, slot: float, worker: str, now: float) -> bool:
        """Whether this process runs ``job`` for ``slot``: always, with one writer (SQLite)."""
        return True

    def transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def exclusive(self, keys: Iterable[str]) -> AbstractContextManager[None]:
        """Hold the check-then-insert of a new article against other writers deciding the same
        ``keys`` (identity, text hash, LSH bands). One writer (SQLite) needs nothing."""
        return nullcontext()

    def _index_article(self, db: Any, article_id: int, title: str, text: str) -> None:
        raise NotImplementedError

    def _unindex_article(self, db: Any, article_id: int) -> None:
        raise NotImplementedError

    def _index_page(self, db: Any, page_id: int, title: str, text: str) -> None:
        raise NotImplementedError

    def _unindex_pages_before(self, db: Any, before: float) -> None:
        raise NotImplementedError

    def _integrity(self) -> list[str]:
        raise NotImplementedError

    def search(self, query: str, *, limit: int = 20, offset: int = 0, rejected: bool = False,
               feed_id: int | None = None, site: str | None = None, since: float | None = None,
               until: float | None = None, min_score: float | None = None) -> list[SearchHit]:
        """Full-text search, best first; see the backends."""
        raise NotImplementedError

    def _db_unwritable(self) -> str | None:
        """Why the database cannot be written, or None."""
        return None

    def _rows_in(self, sql: str, params: tuple, values: Sequence) -> Iterator[Record]:
        """Rows of ``sql`` whose ``{q}`` placeholder is ``values``, queried in chunks
        (SQLite limits the number of parameters per statement)."""
        for i in range(0, len(values), 500):
            chunk = values[i:i + 500]
            yield from self.db.execute(sql.format(q=",".join("?" * len(chunk))), (*params, *chunk))
