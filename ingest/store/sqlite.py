"""The SQLite store: ``ingest.db`` (WAL) and the corpus folder (the default backend).

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
import re
import sqlite3
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import filelock

from ..blobs import pack, unpack
from .. import corpus
from ..corpus import TMP_PREFIX, read_corpus_file
from .contract import Record, StoreContract
from .rows import (FEED_COLUMNS, CheckReport, Decision, FeedRow, Health, NewArticle, PageDoc, SearchError, SearchHit, Source,
                   StoreError, feed_row)
from .schema_sqlite import MIGRATIONS, SCHEMA, SCHEMA_VERSION

WITHDRAWN = "withdrawn"  # folder (in the store) of articles taken out of the corpus by a verdict or rescore
STREAM_WINDOW = 3000  # pages whose term counts the relevance model learns from
MAX_PAGE_ATTEMPTS = 3  # a page whose requests keep failing is given up after this many polls
MAX_DEFERRAL = 7 * 86400.0  # a page deferred (never sent) for this long is given up


ORPHANS = "orphans"  # folder where `ingest check --repair` puts corpus files no row knows


def _rowid(cur: sqlite3.Cursor) -> int:
    """The id an INSERT just made (sqlite3 types lastrowid as optional)."""
    assert cur.lastrowid is not None
    return cur.lastrowid



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


class Store:
    """Open with ``Store.open(folder)``; use as a context manager to close."""

    def __init__(self, root: Path, db: sqlite3.Connection, lock: filelock.BaseFileLock | None = None) -> None:
        self.root = root
        self.corpus = root / "corpus"
        self.db = db
        self._lock = lock
        self.recovered: dict[str, int] = {}  # what the writer's start-up recovery did

    @classmethod
    def open(cls, root: Path, *, writer: bool = True, readonly: bool = False) -> Store:
        """Open the store. A writer takes the store's lock (one writer per store;
        the OS releases it on any exit, kill -9 included) and repairs what a
        crash left; other processes (mark, seeds add) take neither and write
        only small rows the writer then acts on; ``readonly`` opens the
        database read-only (status, export, digest --since: they work on a
        store they cannot write, e.g. a copy or a mounted backup)."""
        root = Path(root)
        db_path = root / "ingest.db"
        if readonly:
            if not db_path.exists() or db_path.stat().st_size == 0:  # nothing stored yet: an empty store
                cls._refuse_lost_index(root, db_path)
                db = sqlite3.connect(":memory:", isolation_level=None)
                db.row_factory = sqlite3.Row
                empty = cls(root, db, None)
                empty._migrate()
                return empty
            return cls._open_readonly(root, db_path)
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
            cls._refuse_lost_index(root, db_path)
            # opened here, used by the store's thread (ingest.store.thread) while a loop runs: one at a time
            db = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            store = cls(root, db, lock)
            store._migrate()
            if writer:
                store.recovered = store.recover()
        except (sqlite3.DatabaseError, StoreError) as exc:
            if lock:
                lock.release()
            if isinstance(exc, StoreError):
                raise
            if "disk" in str(exc) or "full" in str(exc):  # a full disk or a file-size limit while opening
                raise StoreError(f"{db_path}: cannot write the store: {exc}. Nothing was changed; free space "
                                 f"and run again.") from None
            raise StoreError(f"{db_path}: {exc}") from None
        except OSError as exc:
            if lock:
                lock.release()
            raise StoreError(f"{root}: cannot use the store folder: {exc.strerror or exc}") from None
        return store

    @staticmethod
    def _refuse_lost_index(root: Path, db_path: Path) -> None:
        """A missing or empty ingest.db next to corpus files is a lost index, not a new store:
        starting a new one would orphan those files and reuse their numbers."""
        try:
            empty = not db_path.exists() or db_path.stat().st_size == 0
        except OSError:
            return
        if not empty:
            return
        files = [p for d in (root / "corpus", root / WITHDRAWN) if d.is_dir() for p in d.glob("*.txt")
                 if not p.name.startswith(TMP_PREFIX)]
        if files:
            state = "is missing" if not db_path.exists() else "is empty (0 bytes)"
            raise StoreError(
                f"{db_path} {state}, but the store holds {len(files)} corpus file(s) it indexed "
                f"(e.g. {files[0].relative_to(root)}). Refusing to start a new index that would orphan them "
                f"and reuse their numbers. Restore ingest.db from a backup (with its -wal file, if any), "
                f"or move the corpus files elsewhere to start a new store.")

    @classmethod
    def _open_readonly(cls, root: Path, db_path: Path) -> Store:
        uri = "file:" + urllib.parse.quote(str(db_path.resolve())) + "?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.OperationalError:
            # a WAL database in a folder we cannot write (no -shm to create): read it as immutable
            db = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        store = cls(root, db, None)
        try:
            row = db.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreError(f"{db_path}: {exc}") from None
        version = row[0] if row else 0
        if version != SCHEMA_VERSION:
            db.close()
            if os.access(root, os.W_OK) and os.access(db_path, os.W_OK):
                return cls.open(root, writer=False)  # upgrades the schema first
            raise StoreError(f"{db_path}: schema version {version}, this seed-ingest reads {SCHEMA_VERSION}; "
                             f"run a writing command (ingest poll) once on a writable copy")
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
            for v in range(version + 1, SCHEMA_VERSION + 1) if version else ():
                for stmt in MIGRATIONS.get(v, []):
                    add = re.match(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", stmt)
                    if add and add.group(2) in {r[1] for r in db.execute(f"PRAGMA table_info({add.group(1)})")}:
                        continue  # already there (a migration interrupted before its version was written)
                    db.execute(stmt)
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            if version and version < 4:
                self._backfill_search(db)
            if version and version < 3:  # LSH banding changed (ingest.dedup.BANDS): re-index the signatures
                db.execute("DELETE FROM lsh")
                for aid, minhash in db.execute("SELECT id, minhash FROM articles WHERE minhash IS NOT NULL"
                                               ).fetchall():
                    self._index_near(db, aid, minhash)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))

    def _backfill_search(self, db: sqlite3.Connection) -> None:
        """Fill the full-text tables of a store made before they existed (once, at migration)."""
        db.execute("DELETE FROM articles_fts")
        db.execute("DELETE FROM pages_fts")
        for art in db.execute("SELECT * FROM articles").fetchall():
            try:
                title, text = read_corpus_file(self.article_file(art))
            except (OSError, UnicodeDecodeError):
                title, text = art["title"], ""
            db.execute("INSERT INTO articles_fts (rowid, title, text) VALUES (?,?,?)", (art["id"], title, text))
        for row in db.execute("SELECT id, doc FROM pages WHERE doc IS NOT NULL").fetchall():
            doc = unpack(row["doc"])
            db.execute("INSERT INTO pages_fts (rowid, title, text) VALUES (?,?,?)",
                       (row["id"], doc.get("title", ""), doc.get("text", "")))

    # -- crash recovery -------------------------------------------------

    def recover(self) -> dict[str, int]:
        """Finish or undo corpus writes that a crash interrupted."""
        def committed_hash(name: str) -> str | None:
            # a temp file is the committed version when its row holds its text's hash
            # (a new article, or an update committed just before the crash)
            row = self.db.execute("SELECT text_hash FROM articles WHERE path=?", (f"corpus/{name}",)).fetchone()
            return row[0] if row is not None else None

        renamed, removed = corpus.finish_writes(self.corpus, committed_hash)
        done = {"renamed": renamed, "removed": removed}
        # a verdict's move between corpus/ and withdrawn/ interrupted: put the file where the row says
        # (withdrawn rows are few: the ones the user or rescore took out)
        moving = {r["path"]: r for r in self.db.execute("SELECT * FROM articles WHERE withdrawn IS NOT NULL")}
        for f in (self.root / WITHDRAWN).glob("*.txt"):
            if f"corpus/{f.name}" not in moving:
                row = self.db.execute("SELECT * FROM articles WHERE path=?", (f"corpus/{f.name}",)).fetchone()
                if row is not None:
                    self._place(row)
                    done["renamed"] += 1
        for row in moving.values():
            if (self.root / row["path"]).exists():
                self._place(row)
                done["renamed"] += 1
        done["removed"] += corpus.remove_temp_files(self.root / "digests")  # a digest killed while writing
        return done

    def check(self, repair: bool = False) -> CheckReport:
        """Compare the index with the folder: database integrity, every row's file, every file's
        row, temp files left by a crash. ``repair`` does only what loses nothing: finishes or
        undoes interrupted writes (:meth:`recover`) and moves files no row knows into orphans/."""
        report = CheckReport()
        report.integrity = [r[0] for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        temps = [p for d in (self.corpus, self.root / "digests") if d.is_dir() for p in d.glob(TMP_PREFIX + "*")]
        report.temp_files = [str(p.relative_to(self.root)) for p in temps]
        if repair and temps:
            done = self.recover()
            report.repaired.append(f"interrupted writes: {done['renamed']} finished, {done['removed']} temp "
                                   f"file(s) removed (their rows never committed)")
        known: set[str] = set()
        for art in self.db.execute("SELECT id, path, url, withdrawn FROM articles ORDER BY number"):
            name = art["path"].split("/", 1)[1]
            known.add(name)
            where = self.article_file(art)
            if where.exists():
                continue
            other = (self.corpus / name) if art["withdrawn"] is not None else (self.root / WITHDRAWN / name)
            if other.exists():
                if repair:
                    self._place(art)
                    report.repaired.append(f"moved {name} to {where.parent.name}/ as its row says")
                else:
                    report.misplaced.append(str(other.relative_to(self.root)))
                continue
            report.missing.append(f"{where.relative_to(self.root)} (article a{art['id']})")
        for d in (self.corpus, self.root / WITHDRAWN):
            for f in sorted(d.glob("*.txt")) if d.is_dir() else ():
                if f.name in known or f.name.startswith(TMP_PREFIX):
                    continue
                if repair:
                    (self.root / ORPHANS).mkdir(exist_ok=True)
                    os.replace(f, self.root / ORPHANS / f.name)
                    report.repaired.append(f"moved {f.relative_to(self.root)} (no row in ingest.db) to {ORPHANS}/")
                else:
                    report.orphans.append(str(f.relative_to(self.root)))
        if repair:
            report.temp_files = []
        return report

    # -- feeds ----------------------------------------------------------

    def sync_feeds(self, feeds: Iterable[tuple[str, str] | tuple[str, str, bool]]) -> None:
        """Make the feeds table match the config: (url, name[, enabled]). Add new feeds, mark removed
        ones inactive (their history stays), keep the state of unchanged ones; a feed with
        enabled = false is paused (not polled, state kept)."""
        wanted = {item[0]: (item[1], bool(item[2]) if len(item) > 2 else True) for item in feeds}
        with self.transaction() as db:
            known = {r[0] for r in db.execute("SELECT config_url FROM feeds")}
            for url, (name, enabled) in wanted.items():
                if url in known:
                    db.execute("UPDATE feeds SET name=?, active=1, enabled=? WHERE config_url=?",
                               (name, int(enabled), url))
                else:
                    db.execute("INSERT INTO feeds (config_url, url, name, enabled) VALUES (?,?,?,?)",
                               (url, url, name, int(enabled)))
            for url in known - wanted.keys():
                db.execute("UPDATE feeds SET active=0 WHERE config_url=?", (url,))

    def feeds(self, active_only: bool = True) -> list[FeedRow]:
        sql = "SELECT * FROM feeds" + (" WHERE active=1" if active_only else "") + " ORDER BY id"
        return [feed_row(r) for r in self.db.execute(sql)]

    def pollable_feeds(self, now: float) -> list[FeedRow]:
        """Active feeds that may be fetched now: not disabled, no Retry-After pending."""
        return [f for f in self.feeds() if f.state != "disabled" and f.enabled
                and not (f.retry_after and f.retry_after > now)]

    def due_feeds(self, now: float) -> list[FeedRow]:
        """Pollable feeds whose next poll time has come (never-polled feeds have one set by the service)."""
        return [f for f in self.pollable_feeds(now) if f.next_poll is not None and f.next_poll <= now]

    def next_due(self, exclude: Iterable[int] = ()) -> float | None:
        """The earliest next poll time of the active feeds not in ``exclude``."""
        skip = set(exclude)
        times = [max(f.next_poll, f.retry_after or 0) for f in self.feeds()
                 if f.state != "disabled" and f.enabled and f.next_poll is not None and f.id not in skip]
        return min(times, default=None)

    def update_feed(self, feed_id: int, **fields: object) -> None:
        """Set some of a feed's columns; the names are checked against FEED_COLUMNS (never SQL from data)."""
        unknown = set(fields) - FEED_COLUMNS
        if unknown:
            raise ValueError(f"not feed columns: {', '.join(sorted(unknown))}")
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

    def pages_by_urls(self, urls: Sequence[str]) -> dict[str, sqlite3.Row]:
        return {r["url"]: r for r in self._rows_in("SELECT * FROM pages WHERE url IN ({q})", (), list(urls))}

    def near_candidates(self, keys: Sequence[int]) -> list[tuple[int, bytes]]:
        """Articles sharing an LSH band key, with their signatures."""
        q = ",".join("?" * len(keys))
        return [(r[0], r[1]) for r in self.db.execute(
            f"SELECT DISTINCT a.id, a.minhash FROM lsh JOIN articles a ON a.id = lsh.article_id "
            f"WHERE lsh.key IN ({q})", list(keys))]

    def article(self, article_id: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM articles WHERE id=?", (article_id,)).fetchone()

    def article_text(self, article_id: int) -> str | None:
        """An article's text as its corpus file holds it (None when the file is gone)."""
        art = self.article(article_id)
        if art is None:
            return None
        try:
            return read_corpus_file(self.article_file(art))[1]
        except (OSError, UnicodeDecodeError):
            return None

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
                    counts: dict[str, int] | None = None, decision: Decision | None = None,
                    doc: PageDoc | None = None) -> int:
        """One page that will not become a new article (rejected, duplicate, empty, error).

        An error leaves its entries unseen, so the page is tried again while
        the feed lists it, up to MAX_PAGE_ATTEMPTS times. A rejected page
        keeps its term counts in the model's window and its text (``doc``)
        until the keep_rejected period ends."""
        with self.transaction() as db:
            page_id, attempts = self._upsert_page(db, url, final_url, now, outcome, reason, score, article_id)
            if outcome != "error" or attempts >= MAX_PAGE_ATTEMPTS:
                self.record_entries(sources, page_id, now, article_id, db=db)
            if doc is not None:  # searchable while its text is kept
                db.execute("DELETE FROM pages_fts WHERE rowid=?", (page_id,))
                db.execute("INSERT INTO pages_fts (rowid, title, text) VALUES (?,?,?)", (page_id, doc.title, doc.text))
            if decision is not None or doc is not None:
                db.execute("UPDATE pages SET threshold=?, terms=?, title=?, doc=? WHERE id=?",
                           (decision.threshold if decision else None,
                            json.dumps(list(decision.terms)) if decision else None,
                            doc.title if doc else None, pack(asdict(doc)) if doc else None, page_id))
            if counts:
                self._add_stream(db, page_id, counts)
        return page_id

    def defer_page(self, url: str, link: str, sources: Sequence[Source], now: float, until: float,
                   reason: str) -> bool:
        """A page not fetched because its host said not now: queue it for ``until`` without counting
        an attempt. Its entries stay unseen; the page row keeps the link and sources, so it is
        fetched when allowed even if its feeds no longer list it. After MAX_DEFERRAL of deferrals
        it is given up (an error, entries recorded). Returns False when given up."""
        with self.transaction() as db:
            row = db.execute("SELECT id, deferred_since, pending FROM pages WHERE url=?", (url,)).fetchone()
            since = (row["deferred_since"] if row is not None else None) or now
            known = [Source(**s) for s in unpack(row["pending"])["sources"]] if row is not None and \
                row["pending"] else []
            merged = list({(s.feed_id, s.key): s for s in [*known, *sources]}.values())
            if now - since >= MAX_DEFERRAL:
                page_id, _ = self._upsert_page(db, url, None, now, "error",
                                               f"given up after {MAX_DEFERRAL / 86400:.0f} days deferred: {reason}",
                                               None, None)
                db.execute("UPDATE pages SET attempts=? WHERE id=?", (MAX_PAGE_ATTEMPTS, page_id))
                self.record_entries(merged, page_id, now, db=db)
                return False
            pending = pack({"link": link, "sources": [asdict(s) for s in merged]})
            if row is None:
                db.execute("INSERT INTO pages (url, fetched, outcome, reason, attempts, retry_at, deferred_since, "
                           "pending) VALUES (?,?,?,?,0,?,?,?)", (url, now, "deferred", reason, until, since, pending))
            else:
                db.execute("UPDATE pages SET outcome='deferred', reason=?, retry_at=?, deferred_since=?, pending=? "
                           "WHERE id=?", (reason, until, since, pending, row["id"]))
        return True

    def due_deferred(self, now: float, limit: int = 10_000) -> list[tuple[str, str, list[Source]]]:
        """Deferred pages whose time has come: (key, link as given, sources)."""
        out = []
        for r in self.db.execute("SELECT url, pending FROM pages WHERE retry_at IS NOT NULL AND retry_at <= ? "
                                 "ORDER BY retry_at LIMIT ?", (now, limit)):
            pending = unpack(r["pending"]) if r["pending"] else {"link": r["url"], "sources": []}
            out.append((r["url"], pending["link"], [Source(**s) for s in pending["sources"]]))
        return out

    @staticmethod
    def _upsert_page(db, url, final_url, now, outcome, reason, score, article_id) -> tuple[int, int]:
        """Insert or update the page row; returns (id, attempts so far)."""
        row = db.execute(
            "INSERT INTO pages (url, final_url, fetched, outcome, reason, score, article_id) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(url) DO UPDATE SET final_url=excluded.final_url, fetched=excluded.fetched, "
            "outcome=excluded.outcome, reason=excluded.reason, score=excluded.score, "
            "article_id=excluded.article_id, attempts=attempts+1, retry_at=NULL, deferred_since=NULL, "
            "pending=NULL RETURNING id, attempts",
            (url, final_url, now, outcome, reason, score, article_id)).fetchone()
        return row[0], row[1]

    @staticmethod
    def _add_stream(db: sqlite3.Connection, page_id: int, counts: dict[str, int]) -> None:
        """Put a page's term counts in the model's window; the oldest beyond STREAM_WINDOW leave it,
        except the pages you judged (your verdicts keep teaching the model)."""
        db.execute("INSERT OR REPLACE INTO stream (page_id, counts) VALUES (?,?)", (page_id, pack(counts)))
        db.execute("DELETE FROM stream WHERE page_id <= (SELECT page_id FROM stream ORDER BY page_id DESC "
                   "LIMIT 1 OFFSET ?) AND page_id NOT IN (SELECT page_id FROM verdicts)", (STREAM_WINDOW,))

    def add_article(self, art: NewArticle, url: str, sources: Sequence[Source], now: float,
                    final_url: str | None, counts: dict[str, int] | None = None) -> tuple[int, str]:
        """Store a new article: corpus file + rows, atomically. Returns (id, path)."""
        number = (self.db.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM articles").fetchone()[0])
        name = corpus.file_name(number, art.canonical_url)
        tmp = corpus.write_temp(self.corpus, name, art.title, art.text)
        try:
            with self.transaction() as db:
                cur = db.execute(
                    "INSERT INTO articles (number, url, canonical_url, title, author, site, language, published, "
                    "fetched, text_hash, score, threshold, terms, path, minhash) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (number, url, art.canonical_url, art.title, art.author, art.site, art.language, art.published,
                     now, art.text_hash, art.score, art.threshold, json.dumps(list(art.terms)), f"corpus/{name}",
                     art.minhash))
                article_id = _rowid(cur)
                self._index_near(db, article_id, art.minhash)
                db.execute("INSERT INTO articles_fts (rowid, title, text) VALUES (?,?,?)",
                           (article_id, art.title, art.text))
                page_id, _ = self._upsert_page(db, url, final_url, now, "kept", "", art.score, article_id)
                db.execute("UPDATE pages SET threshold=?, terms=?, title=?, doc=NULL WHERE id=?",
                           (art.threshold, json.dumps(list(art.terms)), art.title, page_id))
                self.record_entries(sources, page_id, now, article_id, db=db)
                if counts:
                    self._add_stream(db, page_id, counts)
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
        tmp = corpus.write_temp(self.corpus, name, title, text)
        try:
            with self.transaction() as db:
                db.execute("UPDATE articles SET title=?, text_hash=?, minhash=?, updated=?, revisions=revisions+1 "
                           "WHERE id=?", (title, text_hash, minhash, now, article_id))
                db.execute("DELETE FROM lsh WHERE article_id=?", (article_id,))
                self._index_near(db, article_id, minhash)
                db.execute("DELETE FROM articles_fts WHERE rowid=?", (article_id,))
                db.execute("INSERT INTO articles_fts (rowid, title, text) VALUES (?,?,?)", (article_id, title, text))
                page_id, _ = self._upsert_page(db, url, url, now, "kept", "updated in place", None, article_id)
                self.record_entries(sources, page_id, now, article_id, db=db)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.corpus / name)
        return path

    @staticmethod
    def _index_near(db: sqlite3.Connection, article_id: int, minhash: bytes | None) -> None:
        if minhash is not None:
            from ..dedup import band_keys

            db.executemany("INSERT INTO lsh (key, article_id) VALUES (?,?)",
                           ((k, article_id) for k in band_keys(minhash)))

    # -- relevance: the model's window, rejected texts, verdicts ------------

    def stream(self) -> list[tuple[int, bytes]]:
        """The model's window: (page id, packed term counts), oldest first."""
        return [(r[0], r[1]) for r in self.db.execute("SELECT page_id, counts FROM stream ORDER BY page_id")]

    def verdicts(self) -> dict[int, bool]:
        """page id -> the user's verdict (True: relevant)."""
        return {r[0]: r[1] == "relevant" for r in self.db.execute("SELECT page_id, verdict FROM verdicts")}

    def set_verdict(self, page_id: int, url: str, relevant: bool, now: float,
                    counts: dict[str, int] | None = None) -> None:
        """Record a verdict (the newest one for a page wins); the corpus follows in apply_verdicts.
        ``counts`` put a page that has left the model's window back into it."""
        with self.transaction() as db:
            db.execute("INSERT INTO verdicts (page_id, url, verdict, time) VALUES (?,?,?,?) "
                       "ON CONFLICT(page_id) DO UPDATE SET verdict=excluded.verdict, time=excluded.time, "
                       "applied=NULL", (page_id, url, "relevant" if relevant else "irrelevant", now))
            if counts:
                db.execute("INSERT OR IGNORE INTO stream (page_id, counts) VALUES (?,?)", (page_id, pack(counts)))

    def in_stream(self, page_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM stream WHERE page_id=?", (page_id,)).fetchone() is not None

    def learning_counts(self) -> tuple[int, int, int, int]:
        """(pages in the model's window, relevant verdicts, irrelevant verdicts, verdicts not applied yet)."""
        window = self.db.execute("SELECT COUNT(*) FROM stream").fetchone()[0]
        row = self.db.execute("SELECT COALESCE(SUM(verdict = 'relevant'), 0), "
                              "COALESCE(SUM(verdict = 'irrelevant'), 0), COALESCE(SUM(applied IS NULL), 0) "
                              "FROM verdicts").fetchone()
        return window, row[0], row[1], row[2]

    def pending_verdicts(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM verdicts WHERE applied IS NULL ORDER BY id").fetchall()

    def verdict_applied(self, verdict_id: int, now: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE verdicts SET applied=? WHERE id=?", (now, verdict_id))

    def pages_by_ids(self, ids: Sequence[int]) -> dict[int, sqlite3.Row]:
        return {r["id"]: r for r in self._rows_in("SELECT * FROM pages WHERE id IN ({q})", (), ids)}

    def page_by_id(self, page_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM pages WHERE id=?", (page_id,)).fetchone()

    def page_doc(self, row: Record) -> PageDoc | None:
        """The page's text and metadata: its corpus file for a kept article, else the kept rejected text."""
        if row["article_id"] is not None and row["outcome"] == "kept":
            art = self.article(row["article_id"])
            try:
                title, text = read_corpus_file(self.article_file(art))
            except OSError:
                return None
            return PageDoc(url=art["url"], canonical_url=art["canonical_url"], title=title, text=text,
                           author=art["author"], site=art["site"], language=art["language"],
                           published=art["published"], text_hash=art["text_hash"])
        if row["doc"] is None:
            return None
        return PageDoc(**unpack(row["doc"]))

    def pages_since(self, since: float) -> list[sqlite3.Row]:
        """Kept and rejected pages fetched since ``since`` (the ones rescore can re-decide)."""
        return self.db.execute("SELECT * FROM pages WHERE fetched >= ? AND outcome IN ('kept', 'rejected') "
                               "ORDER BY id", (since,)).fetchall()

    def page_sources(self, page_id: int) -> list[Source]:
        return [Source(r["feed_id"], r["key"], r["link"], r["title"], r["published"], r["updated"])
                for r in self.db.execute("SELECT * FROM entries WHERE page_id=?", (page_id,))]

    def expire_rejected_texts(self, before: float) -> int:
        """Drop the kept texts of rejected pages fetched before ``before`` (score and terms stay)."""
        with self.transaction() as db:
            db.execute("DELETE FROM pages_fts WHERE rowid IN (SELECT id FROM pages WHERE doc IS NOT NULL "
                       "AND fetched < ?)", (before,))
            return db.execute("UPDATE pages SET doc=NULL WHERE doc IS NOT NULL AND fetched < ?", (before,)).rowcount

    def article_file(self, art: Record) -> Path:
        """Where an article's file is now: the corpus folder, or withdrawn/ once it left the corpus."""
        name = art["path"].split("/", 1)[1]
        return (self.root / WITHDRAWN / name) if art["withdrawn"] is not None else (self.corpus / name)

    def withdraw_article(self, article_id: int, by: str, now: float) -> None:
        """Take an article out of the corpus folder: the row says so first, then the file moves to
        withdrawn/ (recover finishes a move a crash interrupted). Nothing is deleted."""
        with self.transaction() as db:
            db.execute("UPDATE articles SET withdrawn=?, withdrawn_by=? WHERE id=? AND withdrawn IS NULL",
                       (now, by, article_id))
        self._place(self.article(article_id))

    def restore_article(self, article_id: int) -> None:
        """Bring a withdrawn article back to the corpus folder, under the same file name."""
        with self.transaction() as db:
            db.execute("UPDATE articles SET withdrawn=NULL, withdrawn_by=NULL WHERE id=?", (article_id,))
        self._place(self.article(article_id))

    def _place(self, art: sqlite3.Row) -> None:
        """Move an article's file to where its row says it belongs."""
        name = art["path"].split("/", 1)[1]
        want = self.article_file(art)
        other = (self.corpus / name) if art["withdrawn"] is not None else (self.root / WITHDRAWN / name)
        if other.exists():
            want.parent.mkdir(exist_ok=True)
            os.replace(other, want)

    # -- hosts ----------------------------------------------------------

    def host_memory(self, now: float) -> tuple[dict[str, float], dict[str, tuple[float, str, str | None]]]:
        """(host -> quiet until, origin -> (expires, state, robots.txt)): what has not expired."""
        quiet = {r[0]: r[1] for r in self.db.execute("SELECT name, quiet_until FROM hosts WHERE quiet_until > ?",
                                                     (now,))}
        robots = {r[0]: (r[1], r[2], r[3]) for r in self.db.execute(
            "SELECT origin, expires, state, body FROM robots WHERE expires > ?", (now,))}
        return quiet, robots

    def save_host_memory(self, quiet: dict[str, float], robots: dict[str, tuple[float, str, str | None]],
                         now: float) -> None:
        with self.transaction() as db:
            db.executemany("INSERT INTO hosts (name, quiet_until) VALUES (?,?) ON CONFLICT (name) DO UPDATE "
                           "SET quiet_until = excluded.quiet_until", quiet.items())
            db.executemany("INSERT INTO robots (origin, expires, state, body) VALUES (?,?,?,?) ON CONFLICT (origin) "
                           "DO UPDATE SET expires = excluded.expires, state = excluded.state, body = excluded.body",
                           [(o, e, st, b) for o, (e, st, b) in robots.items()])
            db.execute("DELETE FROM hosts WHERE quiet_until <= ?", (now,))
            db.execute("DELETE FROM robots WHERE expires <= ?", (now,))

    # -- runs -----------------------------------------------------------

    def start_run(self, kind: str, now: float) -> int:
        with self.transaction() as db:
            return _rowid(db.execute("INSERT INTO runs (kind, started) VALUES (?,?)", (kind, now)))

    def finish_run(self, run_id: int, now: float, stats: dict) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished=?, stats=? WHERE id=?", (now, json.dumps(stats), run_id))

    # -- digests --------------------------------------------------------

    def articles_between(self, since: float, until: float) -> list[sqlite3.Row]:
        """Articles kept, or changed in place, in (since, until]."""
        return self.db.execute(
            "SELECT * FROM articles WHERE fetched > ? AND fetched <= ? AND withdrawn IS NULL UNION "
            "SELECT * FROM articles WHERE updated > ? AND updated <= ? AND withdrawn IS NULL",
            (since, until, since, until)).fetchall()

    def last_digest_until(self) -> float | None:
        return self.db.execute("SELECT MAX(until) FROM digests").fetchone()[0]

    def record_digest(self, since: float, until: float, items: int, path: str | None) -> int:
        with self.transaction() as db:
            return _rowid(db.execute("INSERT INTO digests (created, since, until, items, path) VALUES (?,?,?,?,?)",
                                     (until, since, until, items, path)))

    def undelivered_digests(self, target: str, since: float) -> list[int]:
        """Digests created after ``since`` whose delivery to ``target`` was tried and failed."""
        return [r[0] for r in self.db.execute(
            "SELECT d.id FROM digests d JOIN deliveries x ON x.digest_id = d.id AND x.target = ? "
            "WHERE x.sent IS NULL AND d.created >= ? ORDER BY d.id", (target, since))]

    def digests_by_ids(self, ids: Sequence[int]) -> list[sqlite3.Row]:
        return sorted(self._rows_in("SELECT * FROM digests WHERE id IN ({q})", (), list(ids)), key=lambda r: r["id"])

    def record_delivery(self, digest_id: int, target: str, now: float, error: str | None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO deliveries (digest_id, target, sent, attempts, error) VALUES (?,?,?,1,?) "
                       "ON CONFLICT (digest_id, target) DO UPDATE SET sent = excluded.sent, "
                       "attempts = attempts + 1, error = excluded.error",
                       (digest_id, target, None if error else now, error))

    def last_digest_id(self) -> int | None:
        return self.db.execute("SELECT MAX(id) FROM digests").fetchone()[0]

    def rolling_since(self, n: int) -> float | None:
        """A time just before the n-th newest article was fetched (None: no articles)."""
        row = self.db.execute("SELECT MIN(fetched) FROM (SELECT fetched FROM articles WHERE withdrawn IS NULL "
                              "ORDER BY fetched DESC LIMIT ?)", (n,)).fetchone()
        return row[0] - 1e-6 if row[0] is not None else None

    # -- search ---------------------------------------------------------

    def search(self, query: str, *, limit: int = 20, offset: int = 0, rejected: bool = False,
               feed_id: int | None = None, site: str | None = None, since: float | None = None,
               until: float | None = None, min_score: float | None = None) -> list[SearchHit]:
        """Full-text search (FTS5 syntax: words, "phrases", prefix*, AND/OR/NOT, NEAR), best first
        (bm25, the title weighing 5 times the text); kept articles, and with ``rejected`` the
        rejected pages whose text is still kept. Raises SearchError on a malformed query."""
        where: list[str] = []
        args: list = []
        params: list
        if since is not None:
            where.append("x.fetched >= ?")
            args.append(since)
        if until is not None:
            where.append("x.fetched <= ?")
            args.append(until)
        if min_score is not None:
            where.append("x.score >= ?")
            args.append(min_score)
        if site:
            where.append("x.site = ?")
            args.append(site)
        art_where = " AND ".join(["a.withdrawn IS NULL"] + [w.replace("x.", "a.") for w in where])
        if feed_id is not None:
            art_where += " AND a.id IN (SELECT article_id FROM sources WHERE feed_id = ?)"
        # ranks first (cheap), then snippets and rows for the page of results only: FTS5's snippet()
        # on every match of a common prefix query was most of the time on 100,000 articles
        if not where and feed_id is None:  # no filter: FTS5 ranks by itself, no join per match
            sql = ("SELECT 'article' AS kind, rowid AS id, rank FROM articles_fts WHERE articles_fts MATCH ? "
                   "AND rowid NOT IN (SELECT id FROM articles WHERE withdrawn IS NOT NULL)")
            params = [query]
            if rejected:
                sql += (" UNION ALL SELECT 'page', rowid, rank FROM pages_fts WHERE pages_fts MATCH ? AND rowid IN "
                        "(SELECT id FROM pages WHERE doc IS NOT NULL AND outcome = 'rejected')")
                params.append(query)
            return self._search_page(query, sql + " ORDER BY rank LIMIT ? OFFSET ?", params, limit, offset)
        sql = (f"SELECT 'article' AS kind, a.id AS id, bm25(articles_fts, 5.0, 1.0) AS rank "
               f"FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid "
               f"WHERE articles_fts MATCH ? AND {art_where}")
        params = [query, *args] + ([feed_id] if feed_id is not None else [])
        if rejected:
            page_where = " AND ".join(["p.outcome = 'rejected'"] + [w.replace("x.", "p.") for w in where
                                                                    if not w.startswith("x.site")])
            if feed_id is not None:
                page_where += " AND p.id IN (SELECT page_id FROM entries WHERE feed_id = ?)"
            sql += (f" UNION ALL SELECT 'page', p.id, bm25(pages_fts, 5.0, 1.0) "
                    f"FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid WHERE pages_fts MATCH ? AND {page_where}")
            params += [query, *[a for w, a in zip(where, args, strict=True) if not w.startswith("x.site")]]
            params += [feed_id] if feed_id is not None else []
        return self._search_page(query, sql + " ORDER BY rank LIMIT ? OFFSET ?", params, limit, offset)

    def _search_page(self, query: str, sql: str, params: list, limit: int, offset: int) -> list[SearchHit]:
        """Run a ranking query, then fetch rows and snippets for its page of results."""
        try:
            ranked = self.db.execute(sql, (*params, limit, offset)).fetchall()
            # rows and texts by rowid, snippets made here: FTS5's snippet() re-reads the position lists
            # of every term a prefix expands to, per row (150 ms for a page of "bank*" on 100,000)
            found: dict[tuple[str, int], tuple[sqlite3.Row, str]] = {}
            for kind, meta, texts in (
                    ("article", "SELECT id, title, url, site, published, fetched, score FROM articles "
                                "WHERE id IN ({q})", "SELECT rowid, text FROM articles_fts WHERE rowid IN ({q})"),
                    ("page", "SELECT id, title, COALESCE(final_url, url) AS url, '' AS site, NULL AS published, "
                             "fetched, score FROM pages WHERE id IN ({q})",
                     "SELECT rowid, text FROM pages_fts WHERE rowid IN ({q})")):
                ids = [rid for k, rid, _ in ranked if k == kind]
                if not ids:
                    continue
                marks = ",".join("?" * len(ids))
                body = dict(self.db.execute(texts.format(q=marks), ids).fetchall())
                for r in self.db.execute(meta.format(q=marks), ids):
                    found[(kind, r["id"])] = (r, body.get(r["id"], ""))
            words = _query_words(query)
            rows = [(kind, rid, rank, found[(kind, rid)][0], _snippet(found[(kind, rid)][1], words))
                    for kind, rid, rank in ranked if (kind, rid) in found]
        except sqlite3.OperationalError as exc:
            if any(w in str(exc) for w in ("fts5", "syntax", "no such column", "unterminated", "unknown special")):
                raise SearchError(f"cannot read the query {query!r}: {exc}. Words, \"a phrase\", prefix*, "
                                  f"AND, OR, NOT (as in: gold NOT coal) and parentheses are understood") from None
            raise
        return [SearchHit(kind, rid, r["title"] or "", r["url"], r["site"] or "", r["published"], r["fetched"],
                          r["score"], snippet, rank) for kind, rid, rank, r, snippet in rows]

    # -- health ---------------------------------------------------------

    def health(self, now: float, default_interval: float) -> Health:
        """Is ingestion alive? Unhealthy when no poll has succeeded within twice the longest
        interval in use (counted from the first run when none ever has), or the store folder
        cannot be written."""
        feeds = self.feeds()
        states: dict[str, int] = {}
        for f in feeds:
            states[f.state] = states.get(f.state, 0) + 1
        last = max((f.last_success for f in feeds if f.last_success), default=None)
        first_run = self.db.execute("SELECT MIN(started) FROM runs").fetchone()[0]
        longest = max([f.interval or default_interval for f in feeds if f.state != "disabled"] or
                      [default_interval])
        since = last or first_run or now
        writable, why = self._writable()
        problems = []
        if feeds and now - since > 2 * longest:
            problems.append(f"no poll has succeeded for {now - since:.0f}s (limit {2 * longest:.0f}s: twice the "
                            f"longest interval in use)")
        if not writable:
            problems.append(f"store not writable: {why}")
        return Health(ok=not problems, last_success=last, last_success_age=(now - last) if last else None,
                      feeds=states, store_writable=writable, problems=tuple(problems))

    def _writable(self) -> tuple[bool, str]:
        probe = self.root / f"{TMP_PREFIX}health-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            return False, exc.strerror or str(exc)
        if not os.access(self.root / "ingest.db", os.W_OK):
            return False, "ingest.db is read-only"
        return True, ""

    def list_articles(self, *, before: int | None = None, limit: int = 50, feed_id: int | None = None,
                      site: str | None = None, since: float | None = None, until: float | None = None,
                      min_score: float | None = None) -> list[sqlite3.Row]:
        """Corpus articles newest first (by id), ``before`` an id for stable pagination."""
        where, args = ["withdrawn IS NULL"], []
        for cond, value in (("id < ?", before), ("site = ?", site or None), ("fetched >= ?", since),
                            ("fetched <= ?", until), ("score >= ?", min_score)):
            if value is not None:
                where.append(cond)
                args.append(value)
        if feed_id is not None:
            where.append("id IN (SELECT article_id FROM sources WHERE feed_id = ?)")
            args.append(feed_id)
        return self.db.execute(f"SELECT * FROM articles WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                               (*args, limit)).fetchall()

    def article_copies(self, article_id: int) -> list[sqlite3.Row]:
        """The other pages found to be this article's story (duplicates), newest first."""
        return self.db.execute("SELECT * FROM pages WHERE article_id = ? AND outcome = 'duplicate' "
                               "ORDER BY fetched DESC", (article_id,)).fetchall()

    def article_by_url(self, url: str, key: str) -> int | None:
        """The article first fetched from ``url``, or stored under the identity ``key``."""
        row = self.db.execute("SELECT id FROM articles WHERE url=? OR canonical_url=?", (url, key)).fetchone()
        return row[0] if row else None

    def article_page(self, article_id: int) -> sqlite3.Row | None:
        """The page row that made this article (its verdict target)."""
        return self.db.execute("SELECT * FROM pages WHERE article_id = ? ORDER BY outcome = 'kept' DESC, id "
                               "LIMIT 1", (article_id,)).fetchone()

    def near_misses(self, limit: int = 50) -> list[sqlite3.Row]:
        """Rejected pages whose text is kept, scored at least half their threshold, newest first:
        where recall is recovered."""
        return self.db.execute(
            "SELECT * FROM pages WHERE outcome = 'rejected' AND doc IS NOT NULL AND threshold IS NOT NULL "
            "AND score >= threshold / 2 AND id NOT IN (SELECT page_id FROM verdicts) "
            "ORDER BY fetched DESC, id DESC LIMIT ?", (limit,)).fetchall()

    def sites(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT site FROM articles WHERE site != '' AND withdrawn "
                                              "IS NULL ORDER BY site")]

    def digest_rows(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM digests ORDER BY id DESC").fetchall()

    def state_key(self) -> tuple:
        """Cheap to read, and different whenever the corpus, the feeds' counts or the verdicts may
        have changed (new or withdrawn articles, a finished poll, a verdict): a cache key."""
        return (self.db.execute("SELECT MAX(id) FROM articles").fetchone()[0],
                self.db.execute("SELECT MAX(updated) FROM articles WHERE updated IS NOT NULL").fetchone()[0],
                self.db.execute("SELECT COUNT(*), MAX(withdrawn) FROM articles WHERE withdrawn IS NOT NULL"
                                ).fetchone()[:],
                self.db.execute("SELECT MAX(id), MAX(finished) FROM runs").fetchone()[:],
                self.db.execute("SELECT COUNT(*), MAX(time) FROM verdicts").fetchone()[:])

    def review_state(self) -> tuple:
        """Changes whenever what `review` would pick can change (the window, the verdicts)."""
        return (self.db.execute("SELECT MAX(page_id), COUNT(*) FROM stream").fetchone()[:],
                self.db.execute("SELECT MAX(id), COUNT(*), MAX(time) FROM verdicts").fetchone()[:])

    def metrics_snapshot(self) -> dict:
        """What /metrics reads from the store at scrape time."""
        feeds = dict(self.db.execute("SELECT state, COUNT(*) FROM feeds WHERE active=1 GROUP BY state").fetchall())
        articles = self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] - self.db.execute(
            "SELECT COUNT(*) FROM articles WHERE withdrawn IS NOT NULL").fetchone()[0]
        return {"feeds": feeds, "articles": articles, "last_digest": self.last_digest_until()}

    # -- reading --------------------------------------------------------

    def articles(self) -> Iterator[sqlite3.Row]:
        """The articles in the corpus folder (not the withdrawn ones), in file order."""
        yield from self.db.execute("SELECT * FROM articles WHERE withdrawn IS NULL ORDER BY number")

    def feed_counts(self) -> dict[int, tuple[int, int]]:
        """feed id -> (entries seen, articles kept)."""
        seen = dict(self.db.execute("SELECT feed_id, COUNT(*) FROM entries GROUP BY feed_id").fetchall())
        kept = dict(self.db.execute(
            "SELECT feed_id, COUNT(DISTINCT article_id) FROM sources s JOIN articles a ON a.id = s.article_id "
            "WHERE a.withdrawn IS NULL GROUP BY feed_id").fetchall())
        return {fid: (seen.get(fid, 0), kept.get(fid, 0)) for fid in seen.keys() | kept.keys()}

    def article_sources(self, article_id: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT s.url, s.first_seen, f.url AS feed_url, f.config_url AS feed_config_url FROM sources s "
            "LEFT JOIN feeds f ON f.id = s.feed_id WHERE s.article_id=? ORDER BY s.first_seen, s.rowid",
            (article_id,)).fetchall()



def _implements_the_contract(store: Store) -> StoreContract:
    return store  # mypy: Store has every method of the contract, with compatible types
