"""The store: ``ingest.db`` (SQLite, WAL) and the corpus folder.

Nothing else touches either. One writer (the process holding the store lock)
commits one article per transaction. The corpus file is written to a hidden
temp name and fsynced *before* the row commits, and renamed to its final name
after; on open, :meth:`Store.recover` finishes renames of committed rows and
deletes temp files whose row never committed. So a kill at any moment leaves
DB and files consistent, and a re-run neither loses nor duplicates articles.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import filelock

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS feeds (
    id INTEGER PRIMARY KEY,
    config_url TEXT NOT NULL UNIQUE,      -- as written in config.toml
    url TEXT NOT NULL,                    -- where it is fetched now (after 301/308)
    name TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1,    -- 0 once removed from the config
    state TEXT NOT NULL DEFAULT 'new',    -- new | ok | error | failing | disabled
    state_reason TEXT NOT NULL DEFAULT '',
    etag TEXT, last_modified TEXT, content_hash TEXT,
    last_poll REAL, last_success REAL, last_error TEXT, last_error_at REAL,
    consecutive_errors INTEGER NOT NULL DEFAULT 0,
    errors_since REAL,                    -- start of the current run of failures
    next_poll REAL, interval REAL, retry_after REAL
);
CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,       -- the running NNN of the corpus file
    url TEXT NOT NULL,                    -- first URL it was fetched from
    canonical_url TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL, author TEXT NOT NULL DEFAULT '', site TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    published TEXT,                        -- ISO date/time when known
    fetched REAL NOT NULL,
    text_hash TEXT NOT NULL,
    score REAL NOT NULL, threshold REAL NOT NULL, terms TEXT NOT NULL DEFAULT '[]',
    path TEXT NOT NULL UNIQUE,            -- corpus file, relative to the store
    minhash BLOB,                         -- near-duplicate signature (ingest.dedup), NULL for short texts
    updated REAL,                         -- when the text last changed in place
    revisions INTEGER NOT NULL DEFAULT 0  -- how many times it changed
);
CREATE TABLE IF NOT EXISTS lsh (          -- near-duplicate index: LSH band keys of each article
    key INTEGER NOT NULL, article_id INTEGER NOT NULL REFERENCES articles(id)
);
CREATE INDEX IF NOT EXISTS lsh_key ON lsh(key);
CREATE INDEX IF NOT EXISTS articles_text_hash ON articles(text_hash);
CREATE INDEX IF NOT EXISTS articles_fetched ON articles(fetched);
CREATE TABLE IF NOT EXISTS pages (        -- every page fetched, kept or not: never fetched twice
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,             -- normalised entry link
    final_url TEXT, fetched REAL NOT NULL,
    outcome TEXT NOT NULL,                -- kept | rejected | duplicate | empty | blocked | error
    reason TEXT NOT NULL DEFAULT '',
    score REAL, attempts INTEGER NOT NULL DEFAULT 1,
    article_id INTEGER REFERENCES articles(id)
);
CREATE INDEX IF NOT EXISTS pages_scored ON pages(id) WHERE score IS NOT NULL;
CREATE TABLE IF NOT EXISTS entries (      -- feed entries seen
    feed_id INTEGER NOT NULL REFERENCES feeds(id),
    key TEXT NOT NULL,                    -- guid/id, else normalised link
    link TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', published TEXT,
    updated TEXT,                         -- the entry's updated date when last processed
    first_seen REAL NOT NULL,
    page_id INTEGER REFERENCES pages(id),
    PRIMARY KEY (feed_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (      -- provenance: every feed/URL an article came from
    article_id INTEGER NOT NULL REFERENCES articles(id),
    url TEXT NOT NULL,
    feed_id INTEGER REFERENCES feeds(id),
    first_seen REAL NOT NULL,
    UNIQUE (article_id, url, feed_id)
);
CREATE INDEX IF NOT EXISTS sources_url ON sources(url);
CREATE TABLE IF NOT EXISTS term_df (      -- document frequencies of rejected (off-topic) pages, for idf
    term TEXT PRIMARY KEY, df INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS digests (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, since REAL NOT NULL, until REAL NOT NULL,
    items INTEGER NOT NULL, path TEXT
);
CREATE INDEX IF NOT EXISTS articles_updated ON articles(updated) WHERE updated IS NOT NULL;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, started REAL NOT NULL, finished REAL,
    stats TEXT NOT NULL DEFAULT '{}'
);
"""

TMP_PREFIX = ".tmp-"
HISTORY_SCORES = 5000  # background scores the threshold calibration looks at
MAX_PAGE_ATTEMPTS = 3  # a page that keeps failing is given up after this many polls


class StoreError(Exception):
    """The store cannot be used (unwritable folder, corrupt or newer database)."""


@dataclass(frozen=True)
class FeedRow:
    id: int
    config_url: str
    url: str
    name: str
    title: str
    active: bool
    state: str
    state_reason: str
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    last_poll: float | None
    last_success: float | None
    last_error: str | None
    last_error_at: float | None
    consecutive_errors: int
    errors_since: float | None
    next_poll: float | None
    interval: float | None
    retry_after: float | None


@dataclass(frozen=True)
class NewArticle:
    url: str
    canonical_url: str
    title: str
    author: str
    site: str
    language: str
    published: str | None
    text: str
    text_hash: str
    score: float
    threshold: float
    terms: tuple[str, ...]
    minhash: bytes | None = None


@dataclass(frozen=True)
class Source:
    """One feed entry that led to a page."""

    feed_id: int
    key: str
    link: str
    title: str
    published: str | None
    updated: str | None = None


def corpus_text(title: str, text: str) -> str:
    """The seeds' format: title line, blank line, text."""
    return f"{title}\n\n{text.strip()}\n"


def read_corpus_file(path: Path) -> tuple[str, str]:
    raw = path.read_text(encoding="utf-8")
    title, _, text = raw.partition("\n\n")
    return title.strip(), text.strip()


class Store:
    """Open with ``Store.open(folder)``; use as a context manager to close."""

    def __init__(self, root: Path, db: sqlite3.Connection, lock: filelock.BaseFileLock | None = None) -> None:
        self.root = root
        self.corpus = root / "corpus"
        self.db = db
        self._lock = lock

    @classmethod
    def open(cls, root: Path, *, writer: bool = True) -> Store:
        """Open the store. A writer takes the store's lock (one writer per store;
        the OS releases it on any exit, kill -9 included) and repairs what a
        crash left; readers (status, export, score) take neither."""
        lock = None
        try:
            (root / "corpus").mkdir(parents=True, exist_ok=True)
            if writer:
                lock = filelock.FileLock(root / ".lock", blocking=False)
                try:
                    lock.acquire()
                except filelock.Timeout:
                    raise StoreError(f"{root}: another ingest process is using this store "
                                     f"(lock {root / '.lock'}); stop it first, or use another [paths] store") from None
            db = sqlite3.connect(root / "ingest.db", timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            store = cls(root, db, lock)
            store._migrate()
            if writer:
                store.recover()
        except sqlite3.DatabaseError as exc:
            if lock:
                lock.release()
            raise StoreError(f"{root / 'ingest.db'}: {exc}") from None
        except OSError as exc:
            if lock:
                lock.release()
            raise StoreError(f"{root}: cannot use the store folder: {exc.strerror or exc}") from None
        return store

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            self._lock.release()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        row = None
        try:
            row = self.db.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.OperationalError:
            pass  # a new database
        version = row[0] if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.root / 'ingest.db'} has schema version {version}, newer than this "
                             f"seed-ingest understands ({SCHEMA_VERSION}); upgrade seed-ingest")
        if version == SCHEMA_VERSION:
            return
        with self.transaction() as db:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))

    # -- crash recovery -------------------------------------------------

    def recover(self) -> dict[str, int]:
        """Finish or undo corpus writes that a crash interrupted."""
        from .dedup import text_hash

        done = {"renamed": 0, "removed": 0}
        # only temp files need looking at (never a scan of the whole corpus: start-up stays
        # fast with 100,000 articles)
        for tmp in self.corpus.glob(TMP_PREFIX + "*"):
            final = tmp.name[len(TMP_PREFIX):]
            row = self.db.execute("SELECT text_hash FROM articles WHERE path=?", (f"corpus/{final}",)).fetchone()
            # a temp file is the committed version when its row holds its text's hash
            # (a new article, or an update committed just before the crash)
            if row is not None and text_hash(read_corpus_file(tmp)[1]) == row[0]:
                os.replace(tmp, self.corpus / final)
                done["renamed"] += 1
            else:
                tmp.unlink(missing_ok=True)
                done["removed"] += 1
        for tmp in (self.root / "digests").glob(TMP_PREFIX + "*"):  # a digest killed while writing
            tmp.unlink(missing_ok=True)
            done["removed"] += 1
        return done

    # -- feeds ----------------------------------------------------------

    def sync_feeds(self, feeds: Iterable[tuple[str, str]]) -> None:
        """Make the feeds table match the config: add new feeds, mark removed ones
        inactive (their history stays), keep the state of unchanged ones."""
        wanted = dict(feeds)
        with self.transaction() as db:
            known = {r[0] for r in db.execute("SELECT config_url FROM feeds")}
            for url, name in wanted.items():
                if url in known:
                    db.execute("UPDATE feeds SET name=?, active=1 WHERE config_url=?", (name, url))
                else:
                    db.execute("INSERT INTO feeds (config_url, url, name) VALUES (?,?,?)", (url, url, name))
            for url in known - wanted.keys():
                db.execute("UPDATE feeds SET active=0 WHERE config_url=?", (url,))

    def feeds(self, active_only: bool = True) -> list[FeedRow]:
        sql = "SELECT * FROM feeds" + (" WHERE active=1" if active_only else "") + " ORDER BY id"
        return [FeedRow(**{k: r[k] for k in r.keys()}) for r in self.db.execute(sql)]

    def pollable_feeds(self, now: float) -> list[FeedRow]:
        """Active feeds that may be fetched now: not disabled, no Retry-After pending."""
        return [f for f in self.feeds() if f.state != "disabled" and not (f.retry_after and f.retry_after > now)]

    def due_feeds(self, now: float) -> list[FeedRow]:
        """Pollable feeds whose next poll time has come (never-polled feeds have one set by the service)."""
        return [f for f in self.pollable_feeds(now) if f.next_poll is not None and f.next_poll <= now]

    def next_due(self, exclude: Iterable[int] = ()) -> float | None:
        """The earliest next poll time of the active feeds not in ``exclude``."""
        skip = set(exclude)
        times = [max(f.next_poll, f.retry_after or 0) for f in self.feeds()
                 if f.state != "disabled" and f.next_poll is not None and f.id not in skip]
        return min(times, default=None)

    def update_feed(self, feed_id: int, **fields) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE feeds SET {cols} WHERE id=?", (*fields.values(), feed_id))

    # -- entries and pages ----------------------------------------------

    def _rows_in(self, sql: str, params: tuple, values: Sequence) -> Iterator[sqlite3.Row]:
        """Rows of ``sql`` whose ``{q}`` placeholder is ``values``, queried in chunks
        (SQLite limits the number of parameters per statement)."""
        for i in range(0, len(values), 500):
            chunk = values[i:i + 500]
            yield from self.db.execute(sql.format(q=",".join("?" * len(chunk))), (*params, *chunk))

    def seen_entries(self, feed_id: int, keys: Sequence[str]) -> dict[str, str | None]:
        """The keys among ``keys`` this feed has recorded, with each one's stored ``updated`` date."""
        return {r[0]: r[1] for r in self._rows_in(
            "SELECT key, updated FROM entries WHERE feed_id=? AND key IN ({q})", (feed_id,), keys)}

    def page(self, url: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM pages WHERE url=?", (url,)).fetchone()

    def near_candidates(self, keys: Sequence[int]) -> list[tuple[int, bytes]]:
        """Articles sharing an LSH band key, with their signatures."""
        q = ",".join("?" * len(keys))
        return [(r[0], r[1]) for r in self.db.execute(
            f"SELECT DISTINCT a.id, a.minhash FROM lsh JOIN articles a ON a.id = lsh.article_id "
            f"WHERE lsh.key IN ({q})", list(keys))]

    def article(self, article_id: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM articles WHERE id=?", (article_id,)).fetchone()

    def article_by(self, *, canonical_url: str | None = None, text_hash: str | None = None) -> int | None:
        if canonical_url is not None:
            row = self.db.execute("SELECT id FROM articles WHERE canonical_url=?", (canonical_url,)).fetchone()
        else:
            row = self.db.execute("SELECT id FROM articles WHERE text_hash=? ORDER BY id LIMIT 1",
                                  (text_hash,)).fetchone()
        return row[0] if row else None

    def record_entries(self, sources: Sequence[Source], page_id: int | None, now: float,
                       article_id: int | None = None, db: sqlite3.Connection | None = None) -> None:
        """Remember entries as seen (and, for an article, as its sources)."""

        def write(db: sqlite3.Connection) -> None:
            for s in sources:
                db.execute(
                    "INSERT INTO entries (feed_id, key, link, title, published, updated, first_seen, page_id) "
                    "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(feed_id, key) DO UPDATE SET updated=excluded.updated",
                    (s.feed_id, s.key, s.link, s.title, s.published, s.updated, now, page_id))
                if article_id is not None:
                    db.execute("INSERT OR IGNORE INTO sources (article_id, url, feed_id, first_seen) "
                               "VALUES (?,?,?,?)", (article_id, s.link, s.feed_id, now))

        if db is not None:
            write(db)
        else:
            with self.transaction() as tx:
                write(tx)

    def record_page(self, url: str, sources: Sequence[Source], now: float, *, outcome: str, reason: str = "",
                    final_url: str | None = None, score: float | None = None, article_id: int | None = None,
                    counts: dict[str, int] | None = None) -> int:
        """One page that will not become a new article (rejected, duplicate, empty, error).

        An error leaves its entries unseen, so the page is tried again while
        the feed lists it, up to MAX_PAGE_ATTEMPTS times."""
        with self.transaction() as db:
            page_id, attempts = self._upsert_page(db, url, final_url, now, outcome, reason, score, article_id)
            if outcome != "error" or attempts >= MAX_PAGE_ATTEMPTS:
                self.record_entries(sources, page_id, now, article_id, db=db)
            if counts:
                self._count_terms(db, counts)
        return page_id

    @staticmethod
    def _upsert_page(db, url, final_url, now, outcome, reason, score, article_id) -> tuple[int, int]:
        """Insert or update the page row; returns (id, attempts so far)."""
        row = db.execute(
            "INSERT INTO pages (url, final_url, fetched, outcome, reason, score, article_id) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(url) DO UPDATE SET final_url=excluded.final_url, fetched=excluded.fetched, "
            "outcome=excluded.outcome, reason=excluded.reason, score=excluded.score, "
            "article_id=excluded.article_id, attempts=attempts+1 RETURNING id, attempts",
            (url, final_url, now, outcome, reason, score, article_id)).fetchone()
        return row[0], row[1]

    @staticmethod
    def _count_terms(db: sqlite3.Connection, counts: dict[str, int]) -> None:
        db.executemany("INSERT INTO term_df (term, df) VALUES (?, 1) "
                       "ON CONFLICT(term) DO UPDATE SET df = df + 1", ((t,) for t in counts))
        db.execute("INSERT INTO meta (key, value) VALUES ('n_docs', '1') "
                   "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    def add_article(self, art: NewArticle, url: str, sources: Sequence[Source], now: float,
                    final_url: str | None) -> tuple[int, str]:
        """Store a new article: corpus file + rows, atomically. Returns (id, path)."""
        from .urls import url_hash

        number = (self.db.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM articles").fetchone()[0])
        name = f"{number:03d}_{url_hash(art.canonical_url)}.txt"
        tmp = self._write_temp(name, art.title, art.text)
        try:
            with self.transaction() as db:
                cur = db.execute(
                    "INSERT INTO articles (number, url, canonical_url, title, author, site, language, published, "
                    "fetched, text_hash, score, threshold, terms, path, minhash) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (number, url, art.canonical_url, art.title, art.author, art.site, art.language, art.published,
                     now, art.text_hash, art.score, art.threshold, json.dumps(list(art.terms)), f"corpus/{name}",
                     art.minhash))
                article_id = cur.lastrowid
                self._index_near(db, article_id, art.minhash)
                page_id, _ = self._upsert_page(db, url, final_url, now, "kept", "", art.score, article_id)
                self.record_entries(sources, page_id, now, article_id, db=db)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.corpus / name)
        return article_id, f"corpus/{name}"

    def update_article(self, article_id: int, title: str, text: str, text_hash: str, minhash: bytes | None,
                       url: str, sources: Sequence[Source], now: float) -> str:
        """The article changed in place: rewrite its file and row (same path), count the revision."""
        path = self.article(article_id)["path"]
        name = path.split("/", 1)[1]
        tmp = self._write_temp(name, title, text)
        try:
            with self.transaction() as db:
                db.execute("UPDATE articles SET title=?, text_hash=?, minhash=?, updated=?, revisions=revisions+1 "
                           "WHERE id=?", (title, text_hash, minhash, now, article_id))
                db.execute("DELETE FROM lsh WHERE article_id=?", (article_id,))
                self._index_near(db, article_id, minhash)
                page_id, _ = self._upsert_page(db, url, url, now, "kept", "updated in place", None, article_id)
                self.record_entries(sources, page_id, now, article_id, db=db)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.corpus / name)
        return path

    def _write_temp(self, name: str, title: str, text: str) -> Path:
        tmp = self.corpus / (TMP_PREFIX + name)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(corpus_text(title, text))
            fh.flush()
            os.fsync(fh.fileno())
        return tmp

    @staticmethod
    def _index_near(db: sqlite3.Connection, article_id: int, minhash: bytes | None) -> None:
        if minhash is not None:
            from .dedup import band_keys

            db.executemany("INSERT INTO lsh (key, article_id) VALUES (?,?)",
                           ((k, article_id) for k in band_keys(minhash)))

    # -- relevance statistics -------------------------------------------

    def term_stats(self, terms: Iterable[str]) -> tuple[int, dict[str, int]]:
        """(documents counted, df of the given terms)."""
        row = self.db.execute("SELECT value FROM meta WHERE key='n_docs'").fetchone()
        n = int(row[0]) if row else 0
        terms = list(set(terms))
        df = {r[0]: r[1] for r in self._rows_in("SELECT term, df FROM term_df WHERE term IN ({q})", (), terms)}
        return n, df

    def history_scores(self, limit: int = HISTORY_SCORES) -> list[float]:
        return [r[0] for r in self.db.execute(
            "SELECT score FROM pages WHERE score IS NOT NULL ORDER BY id DESC LIMIT ?", (limit,))]

    # -- runs -----------------------------------------------------------

    def start_run(self, kind: str, now: float) -> int:
        with self.transaction() as db:
            return db.execute("INSERT INTO runs (kind, started) VALUES (?,?)", (kind, now)).lastrowid

    def finish_run(self, run_id: int, now: float, stats: dict) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished=?, stats=? WHERE id=?", (now, json.dumps(stats), run_id))

    # -- digests --------------------------------------------------------

    def articles_between(self, since: float, until: float) -> list[sqlite3.Row]:
        """Articles kept, or changed in place, in (since, until]."""
        return self.db.execute(
            "SELECT * FROM articles WHERE fetched > ? AND fetched <= ? UNION "
            "SELECT * FROM articles WHERE updated > ? AND updated <= ?", (since, until, since, until)).fetchall()

    def last_digest_until(self) -> float | None:
        return self.db.execute("SELECT MAX(until) FROM digests").fetchone()[0]

    def record_digest(self, since: float, until: float, items: int, path: str | None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO digests (created, since, until, items, path) VALUES (?,?,?,?,?)",
                       (until, since, until, items, path))

    def rolling_since(self, n: int) -> float | None:
        """A time just before the n-th newest article was fetched (None: no articles)."""
        row = self.db.execute("SELECT MIN(fetched) FROM (SELECT fetched FROM articles ORDER BY fetched DESC "
                              "LIMIT ?)", (n,)).fetchone()
        return row[0] - 1e-6 if row[0] is not None else None

    # -- reading --------------------------------------------------------

    def articles(self) -> Iterator[sqlite3.Row]:
        yield from self.db.execute("SELECT * FROM articles ORDER BY number")

    def feed_counts(self) -> dict[int, tuple[int, int]]:
        """feed id -> (entries seen, articles kept)."""
        seen = dict(self.db.execute("SELECT feed_id, COUNT(*) FROM entries GROUP BY feed_id").fetchall())
        kept = dict(self.db.execute(
            "SELECT feed_id, COUNT(DISTINCT article_id) FROM sources GROUP BY feed_id").fetchall())
        return {fid: (seen.get(fid, 0), kept.get(fid, 0)) for fid in seen.keys() | kept.keys()}

    def article_sources(self, article_id: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT s.url, s.first_seen, f.url AS feed_url, f.config_url AS feed_config_url FROM sources s "
            "LEFT JOIN feeds f ON f.id = s.feed_id WHERE s.article_id=? ORDER BY s.first_seen, s.rowid",
            (article_id,)).fetchall()

