"""The SQLite store: ``ingest.db`` (WAL) and the corpus folder (the default backend).

Nothing else touches either. One writer (the process holding the store lock)
commits one article per transaction. The corpus file is written to a hidden
temp name and fsynced *before* the row commits, and renamed to its final name
after; on open, :meth:`Store.recover` finishes renames of committed rows and
deletes temp files whose row never committed. So a kill at any moment leaves
DB and files consistent, and a re-run neither loses nor duplicates articles.
The SQL both backends share is in ``ingest.store.base``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filelock

from ingest.blobs import unpack
from ingest.store import holder
from ingest.store.base import DROPPED, WITHDRAWN, SqlStore, _query_words, _snippet
from ingest.store.contract import StoreContract
from ingest.store.query import HELP, fts5
from ingest.store.rows import SearchError, SearchHit, StoreBusy, StoreError
from ingest.store.schema_sqlite import MIGRATIONS, SCHEMA, SCHEMA_VERSION
from ingest.text.corpus import TMP_PREFIX, read_corpus_file


class Store(SqlStore):
    """Open with ``Store.open(folder)``; use as a context manager to close."""

    backend = "sqlite"

    def __init__(self, root: Path, db: sqlite3.Connection, lock: filelock.BaseFileLock | None = None) -> None:
        super().__init__(root, db)
        self._lock = lock

    def announce(self, command: str, web: str = "") -> None:
        holder.announce(self.root, command, web)

    def close(self) -> None:
        self.close_archive()
        self.db.close()
        if self._lock is not None:
            self._lock.release()

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
                    who = holder.read(root)
                    raise StoreBusy(f"{root}: another ingest process is using this store "
                                    f"({who.describe() if who else 'lock ' + str(root / '.lock')}); stop it first, "
                                    f"or use another [paths] store", who) from None
                holder.record(root, holder.Holder(os.getpid(), since=time.time()))
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
        files = [p for d in (root / "corpus", root / WITHDRAWN, root / DROPPED) if d.is_dir() for p in d.glob("*.txt")
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
        with contextlib.suppress(sqlite3.OperationalError):  # a new database has no schema_version
            row = self.db.execute("SELECT version FROM schema_version").fetchone()
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
                    columns = {r[1] for r in db.execute(f"PRAGMA table_info({add.group(1)})")} if add else set()
                    if add and (not columns or add.group(2) in columns):
                        # already there (a migration interrupted before its version was written), or the
                        # table is not there yet: SCHEMA below creates it whole
                        continue
                    db.execute(stmt)
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            if version and version < 4:
                self._backfill_search(db)
            if version and version < 3:  # LSH banding changed (ingest.judge.dedup.BANDS): re-index the signatures
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

    def search(self, query: str, *, limit: int = 20, offset: int = 0, rejected: bool = False,
               feed_id: int | None = None, site: str | None = None, since: float | None = None,
               until: float | None = None, min_score: float | None = None) -> list[SearchHit]:
        """Full-text search (FTS5 syntax: words, "phrases", prefix*, AND/OR/NOT, NEAR), best first
        (bm25, the title weighing 5 times the text); kept articles, and with ``rejected`` the
        rejected pages whose text is still kept. Raises SearchError on a malformed query."""
        match = fts5(query)  # the query as the user means it (ingest.store.query), every term quoted
        if not match:
            raise SearchError(f"cannot read the query {query!r}: no words to look for. {HELP[0].upper()}{HELP[1:]}")
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
            params = [match]
            if rejected:
                sql += (" UNION ALL SELECT 'page', rowid, rank FROM pages_fts WHERE pages_fts MATCH ? AND rowid IN "
                        "(SELECT id FROM pages WHERE doc IS NOT NULL AND outcome = 'rejected')")
                params.append(match)
            return self._search_page(query, sql + " ORDER BY rank LIMIT ? OFFSET ?", params, limit, offset)
        sql = (f"SELECT 'article' AS kind, a.id AS id, bm25(articles_fts, 5.0, 1.0) AS rank "
               f"FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid "
               f"WHERE articles_fts MATCH ? AND {art_where}")
        params = [match, *args] + ([feed_id] if feed_id is not None else [])
        if rejected:
            page_where = " AND ".join(["p.outcome = 'rejected'"] + [w.replace("x.", "p.") for w in where
                                                                    if not w.startswith("x.site")])
            if feed_id is not None:
                page_where += " AND p.id IN (SELECT page_id FROM entries WHERE feed_id = ?)"
            sql += (f" UNION ALL SELECT 'page', p.id, bm25(pages_fts, 5.0, 1.0) "
                    f"FROM pages_fts JOIN pages p ON p.id = pages_fts.rowid WHERE pages_fts MATCH ? AND {page_where}")
            params += [match, *[a for w, a in zip(where, args, strict=True) if not w.startswith("x.site")]]
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
                # parse() lets through only what FTS5 reads; should it not, the user still gets a sentence
                raise SearchError(f"cannot read the query {query!r}. {HELP[0].upper()}{HELP[1:]}") from None
            raise
        return [SearchHit(kind, rid, r["title"] or "", r["url"], r["site"] or "", r["published"], r["fetched"],
                          r["score"], snippet, rank) for kind, rid, rank, r, snippet in rows]

    # -- full-text index (FTS5) -----------------------------------------

    def _index_article(self, db: Any, article_id: int, title: str, text: str) -> None:
        db.execute("INSERT INTO articles_fts (rowid, title, text) VALUES (?,?,?)", (article_id, title, text))

    def _unindex_article(self, db: Any, article_id: int) -> None:
        db.execute("DELETE FROM articles_fts WHERE rowid=?", (article_id,))

    def _index_page(self, db: Any, page_id: int, title: str, text: str) -> None:
        db.execute("DELETE FROM pages_fts WHERE rowid=?", (page_id,))
        db.execute("INSERT INTO pages_fts (rowid, title, text) VALUES (?,?,?)", (page_id, title, text))

    def _unindex_pages_before(self, db: Any, before: float) -> None:
        db.execute("DELETE FROM pages_fts WHERE rowid IN (SELECT id FROM pages WHERE doc IS NOT NULL "
                   "AND fetched < ?)", (before,))

    def _integrity(self) -> list[str]:
        return [r[0] for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"]

    def _db_unwritable(self) -> str | None:
        return None if os.access(self.root / "ingest.db", os.W_OK) else "ingest.db is read-only"


def _implements_the_contract(store: Store) -> StoreContract:
    return store  # mypy: Store has every method of the contract, with compatible types
