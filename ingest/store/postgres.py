"""The PostgreSQL store: ``[store] url = "postgresql://…"``, for several workers on one or many machines.

The queries are the shared ones (ingest.store.base), sent through
:class:`~ingest.store.pg_connection.PgConnection`, which takes connections from a psycopg pool and
translates ``?`` placeholders. What differs from SQLite:

* article text lives in ``articles.text`` (no corpus files here: ``ingest
  corpus sync DIR`` writes the seeds-format folder from it);
* corpus numbers come from a sequence (several writers cannot collide);
* search is a weighted ``tsvector`` (title A, text B) with a GIN index;
* a new article's check-then-insert runs in one transaction holding advisory
  locks on its identity, text hash and LSH bands (:meth:`PgStore.exclusive`),
  so two workers cannot both keep the same story;
* work is shared through leases (ingest.store.leases): a host's feeds and
  page jobs belong to one worker at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ingest.blobs import unpack
from ingest.sources.urls import redact
from ingest.store.base import SqlStore, _query_words, _snippet
from ingest.store.contract import Record, StoreContract
from ingest.store.pg_connection import PgConnection
from ingest.store.query import HELP, Term, parse
from ingest.store.rows import CheckReport, FeedRow, SearchError, SearchHit, Source, StoreError, feed_row
from ingest.store.schema_postgres import MIGRATIONS, SCHEMA, SCHEMA_VERSION

MIGRATE_LOCK = 0x5EED_16E5  # advisory lock held while the schema is checked or upgraded
TRIM_LOCK = 0x5EED_0001  # advisory lock of the transaction trimming the model's window
FORGET_AFTER = 30 * 86400.0  # workers not seen, and elections held, this long ago are deleted
POOL_SIZE = 4  # connections per process: the store's thread, the web view's readers, a lease renewer


def lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id for ``key``."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _tsquery(query: str) -> str:
    """The search syntax (ingest.store.query) as a to_tsquery() expression. Raises SearchError on what
    it cannot read, as SQLite's search does."""
    out: list[str] = []
    operand_before = False
    for tok in parse(query):
        if isinstance(tok, Term):
            term = " <-> ".join(tok.words) + (":*" if tok.prefix else "")
            if tok.raw:  # PostgreSQL's parser keeps "s.a" (and "u.s", "jong-un") as one lexeme too
                term = f"{term} | '{tok.raw}'" + (":*" if tok.prefix else "")
            if operand_before:
                out.append("&")
            out.append(f"({term})" if len(tok.words) > 1 else term)
            operand_before = True
        elif tok == "(":
            if operand_before:
                out.append("&")
            out.append("(")
            operand_before = False
        elif tok == ")":
            out.append(")")
            operand_before = True
        else:
            out.append({"AND": "&", "OR": "|", "NOT": "& !"}[tok])
            operand_before = False
    if not out:
        raise SearchError(f"cannot read the query {query!r}: no words to look for. {HELP[0].upper()}{HELP[1:]}")
    return " ".join(out)


class PgStore(SqlStore):
    """Open with ``PgStore.open(url, folder)``; ``folder`` holds what stays local (digest files)."""

    backend = "postgresql"
    text_in_db = True

    def __init__(self, root: Path, db: PgConnection, url: str) -> None:
        super().__init__(root, db)
        self.url = url

    @classmethod
    def open(cls, url: str, root: Path, *, writer: bool = True, readonly: bool = False) -> PgStore:
        """Connect (a pool of POOL_SIZE), check the schema and upgrade it under an advisory lock
        (workers starting together wait for one another). ``readonly`` sessions cannot write."""
        import psycopg
        from psycopg_pool import ConnectionPool

        root = Path(root)
        kwargs: dict[str, Any] = {"autocommit": True}
        if readonly:
            kwargs["options"] = "-c default_transaction_read_only=on"
        try:
            psycopg.connect(url, connect_timeout=10).close()  # fails at once when nothing answers
            pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, kwargs=kwargs, open=False,
                                  name="seed-ingest")
            pool.open(wait=True, timeout=15)
        except Exception as exc:  # psycopg.Error, the pool's timeout, a malformed URL
            raise StoreError(f"[store] url {redact(url)}: cannot connect to PostgreSQL: "
                             f"{_first_line(exc)}") from None
        store = cls(root, PgConnection(pool), url)
        try:
            store._migrate(create=not readonly)
            if writer and not readonly:
                root.mkdir(parents=True, exist_ok=True)
                store.recovered = store.recover()
        except BaseException:
            store.close()
            raise
        return store

    def _migrate(self, create: bool = True) -> None:
        import psycopg

        try:
            with self.transaction() as db:
                if create:
                    db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATE_LOCK,))
                exists = db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
                version = 0
                if exists:
                    row = db.execute("SELECT version FROM schema_version").fetchone()
                    version = row[0] if row else 0
                if version > SCHEMA_VERSION:
                    raise StoreError(f"[store] url {redact(self.url)}: schema version {version}, newer than this "
                                     f"seed-ingest understands ({SCHEMA_VERSION}); upgrade seed-ingest")
                if version == SCHEMA_VERSION:
                    return
                if not create:
                    raise StoreError(f"[store] url {redact(self.url)}: schema version {version}, this "
                                     f"seed-ingest reads {SCHEMA_VERSION}; run `ingest migrate`")
                for v in range(version + 1, SCHEMA_VERSION + 1) if version else ():
                    for stmt in MIGRATIONS.get(v, []):
                        db.execute(stmt)
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute("DELETE FROM schema_version")
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
        except psycopg.Error as exc:
            raise StoreError(f"[store] url {redact(self.url)}: {_first_line(exc)}") from None

    def transaction(self) -> Any:
        return self.db.transaction()

    @contextmanager
    def exclusive(self, keys: Iterable[str]) -> Iterator[None]:
        """One transaction holding advisory locks on ``keys`` (sorted: two workers locking
        overlapping sets cannot deadlock); the check and the insert run inside it."""
        with self.transaction() as db:
            ids = sorted({lock_id(k) for k in keys})
            db.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(?::bigint[]) AS k ORDER BY k", (ids,))
            yield

    def _may_trim(self, db: Any) -> bool:
        """One writer trims the window at a time; the others skip (they would wait on the same rows)."""
        return bool(db.execute("SELECT pg_try_advisory_xact_lock(?)", (TRIM_LOCK,)).fetchone()[0])

    def _next_number(self) -> int:
        return int(self.db.execute("SELECT nextval('article_number')").fetchone()[0])

    # -- text lives in the database -------------------------------------

    def article_body(self, art: Record) -> tuple[str, str] | None:
        if "text" in art.keys():  # noqa: SIM118 (a row: `in` would look at its values)
            return art["title"], art["text"]
        row = self.db.execute("SELECT title, text FROM articles WHERE id=?", (art["id"],)).fetchone()
        return (row[0], row[1]) if row is not None else None

    def recover(self) -> dict[str, int]:
        """No corpus writes to finish here (text is in the database): only digest temp files."""
        from ingest.text import corpus

        return {"renamed": 0, "removed": corpus.remove_temp_files(self.root / "digests")}

    def _place(self, art: Record) -> None:
        """Withdrawn or not is the row alone; ``ingest corpus sync`` moves the folder's files."""

    def check(self, repair: bool = False) -> CheckReport:
        """PostgreSQL keeps its own integrity; what can be wrong here is an article without text
        or a row pointing at a missing article."""
        report = CheckReport()
        for r in self.db.execute("SELECT id FROM articles WHERE text = '' ORDER BY id"):
            report.missing.append(f"article a{r[0]} has no text")
        for r in self.db.execute("SELECT p.id, p.article_id FROM pages p LEFT JOIN articles a ON a.id = p.article_id "
                                 "WHERE p.article_id IS NOT NULL AND a.id IS NULL"):
            report.integrity.append(f"page {r[0]} points at article {r[1]}, which does not exist")
        return report

    def article_sources(self, article_id: int) -> list[Record]:
        return self.db.execute(
            "SELECT s.url, s.first_seen, f.url AS feed_url, f.config_url AS feed_config_url FROM sources s "
            "LEFT JOIN feeds f ON f.id = s.feed_id WHERE s.article_id=? ORDER BY s.first_seen, s.id",
            (article_id,)).fetchall()

    # -- sharing the work (ingest.run.workers) ------------------------------

    for_update = " FOR UPDATE"

    def due_deferred(self, now: float, limit: int = 10_000,
                     hosts: Collection[str] | None = None) -> list[tuple[str, str, list[Source]]]:
        if hosts is None:
            return super().due_deferred(now, limit)
        return [self._waiting_job(r) for r in self.db.execute(
            "SELECT url, pending FROM pages WHERE host = ANY(?) AND retry_at IS NOT NULL AND retry_at <= ? "
            "ORDER BY retry_at LIMIT ?", (list(hosts), now, limit))]

    def host_memory(self, now: float, hosts: Collection[str] | None = None
                    ) -> tuple[dict[str, float], dict[str, tuple[float, str, str | None]]]:
        if hosts is None:
            return super().host_memory(now)
        quiet = {r[0]: r[1] for r in self.db.execute(
            "SELECT name, quiet_until FROM hosts WHERE name = ANY(?) AND quiet_until > ?", (list(hosts), now))}
        robots = {r[0]: (r[1], r[2], r[3]) for r in self.db.execute(
            "SELECT origin, expires, state, body FROM robots WHERE host = ANY(?) AND expires > ?", (list(hosts), now))}
        return quiet, robots

    def register_worker(self, worker: str, now: float, lease: float) -> float:
        """Say this worker is here, before it claims anything: the others' fair share counts it
        from its start (a worker learning its model or loading its seeds is not missed). Returns
        when the earliest live worker (seen within ``lease``) started: workers starting together
        wait for each other from there (ingest.run.workers), one joining a running set does not."""
        with self.transaction() as db:
            _seen(db, worker, now)
            return db.execute("SELECT MIN(started) FROM workers WHERE seen > ?", (now - lease,)).fetchone()[0]

    def heartbeat(self, worker: str, now: float) -> None:
        """Say this worker is alive while it claims nothing (learning its model, busy with its passes):
        the others' fair share keeps counting it."""
        with self.transaction() as db:
            _seen(db, worker, now)

    def claim_hosts(self, worker: str, now: float, lease: float, limit: int,
                    orphans_only: bool = False) -> dict[str, float]:
        """Lease up to ``limit`` hosts that have work due (feeds to poll, page jobs): hosts a dead
        worker held first, then the longest waiting, skipping hosts another worker holds (``FOR
        UPDATE SKIP LOCKED``: workers claiming at the same moment take different hosts). A worker
        takes no more than its fair share: the hosts with work (held or not) divided by the workers
        registered within a lease, less what it holds already, so a worker that starts first does not
        take everything before the others have claimed once. ``orphans_only``: only hosts whose
        lease ran out with a holder (a busy worker still takes those at once). Returns host -> no
        request before (the spacing the host's previous holder left)."""
        with self.transaction() as db:
            _seen(db, worker, now)
            db.execute("DELETE FROM workers WHERE seen < ?", (now - FORGET_AFTER,))
            live = db.execute("SELECT COUNT(*) FROM workers WHERE seen > ?", (now - lease,)).fetchone()[0]
            held, mine = db.execute(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE worker = ?) FROM host_leases "
                "WHERE worker IS NOT NULL AND expires > ?", (worker, now)).fetchone()
            found = db.execute(
                "SELECT w.host, COUNT(*) OVER () FROM (SELECT host, next_poll AS t FROM feeds WHERE active=1 "
                "AND enabled=1 AND state <> 'disabled' AND next_poll <= ? AND (retry_after IS NULL OR "
                "retry_after <= ?) UNION ALL SELECT host, retry_at FROM pages WHERE retry_at IS NOT NULL AND "
                "retry_at <= ?) w LEFT JOIN host_leases l ON l.host = w.host "
                "WHERE w.host IS NOT NULL AND w.host <> '' AND (l.worker IS NULL OR l.expires <= ?) "
                + ("AND l.worker IS NOT NULL " if orphans_only else "") +
                "GROUP BY w.host ORDER BY MAX(CASE WHEN l.worker IS NULL THEN 0 ELSE 1 END) DESC, MIN(w.t) "
                "LIMIT ?", (now, now, now, now, limit * 4)).fetchall()
            if not found:
                return {}
            due = [r[0] for r in found]
            share = -(-(found[0][1] + held) // max(1, live)) - mine  # a fair share: the others take theirs
            limit = min(limit, share)
            if limit <= 0:
                return {}
            db.executemany("INSERT INTO host_leases (host) VALUES (?) ON CONFLICT DO NOTHING", [(h,) for h in due])
        with self.transaction() as db:
            rows = db.execute(
                "UPDATE host_leases l SET worker = ?, expires = ? FROM (SELECT host FROM host_leases "
                "WHERE host = ANY(?) AND (worker IS NULL OR expires <= ?) "
                "ORDER BY array_position(?::text[], host) LIMIT ? FOR UPDATE SKIP LOCKED) c "
                "WHERE l.host = c.host RETURNING l.host, l.next_start",
                (worker, now + lease, due, now, due, limit)).fetchall()
        return {r[0]: r[1] for r in rows}

    def renew_hosts(self, worker: str, hosts: Collection[str], now: float, lease: float) -> set[str]:
        """Extend this worker's leases; returns the hosts it still holds (a lease that ran out while
        the worker stalled may have gone to another)."""
        rows = self.db.execute("UPDATE host_leases SET expires = ? WHERE worker = ? AND host = ANY(?) "
                               "RETURNING host", (now + lease, worker, list(hosts))).fetchall()
        _seen(self.db, worker, now)
        return {r[0] for r in rows}

    def release_hosts(self, worker: str, next_start: dict[str, float]) -> None:
        """Give hosts back, each with the time before which its next holder must not send a request."""
        with self.transaction() as db:
            for host, when in sorted(next_start.items()):
                db.execute("UPDATE host_leases SET worker = NULL, expires = 0, next_start = GREATEST(next_start, ?) "
                           "WHERE host = ? AND worker = ?", (when, host, worker))

    def due_feeds_on(self, hosts: Collection[str], now: float, until: float | None = None) -> list[FeedRow]:
        """The pollable feeds on ``hosts`` due by ``until`` (default now; never before a Retry-After)."""
        return [feed_row(r) for r in self.db.execute(
            "SELECT * FROM feeds WHERE host = ANY(?) AND active=1 AND enabled=1 AND state <> 'disabled' "
            "AND next_poll <= ? AND (retry_after IS NULL OR retry_after <= ?) ORDER BY id",
            (list(hosts), now if until is None else max(now, until), now))]

    def workers(self, now: float, within: float) -> list[Record]:
        """Workers seen in the last ``within`` seconds, with the hosts each holds."""
        return self.db.execute(
            "SELECT w.name, w.started, w.seen, (SELECT COUNT(*) FROM host_leases l WHERE l.worker = w.name "
            "AND l.expires > ?) AS hosts FROM workers w WHERE w.seen > ? ORDER BY w.name",
            (now, now - within)).fetchall()

    def elect(self, job: str, slot: float, worker: str, now: float) -> bool:
        """Win ``job`` for ``slot`` (a digest's cron time): exactly one worker gets True."""
        won = self.db.execute("INSERT INTO elections (job, slot, worker, time) VALUES (?,?,?,?) "
                              "ON CONFLICT DO NOTHING RETURNING job", (job, slot, worker, now)).fetchone() is not None
        if won:
            self.db.execute("DELETE FROM elections WHERE job = ? AND slot < ?", (job, now - FORGET_AFTER))
        return won

    # -- full-text search (tsvector) ------------------------------------

    def _index_article(self, db: Any, article_id: int, title: str, text: str) -> None:
        """articles.search is generated from title and text."""

    def _unindex_article(self, db: Any, article_id: int) -> None:
        """articles.search follows the row."""

    def _index_page(self, db: Any, page_id: int, title: str, text: str) -> None:
        db.execute("UPDATE pages SET search = setweight(to_tsvector('simple', ?), 'A') || "
                   "setweight(to_tsvector('simple', ?), 'B') WHERE id=?", (title, text, page_id))

    def _unindex_pages_before(self, db: Any, before: float) -> None:
        db.execute("UPDATE pages SET search = NULL WHERE doc IS NOT NULL AND fetched < ?", (before,))

    def _integrity(self) -> list[str]:
        return []

    def search(self, query: str, *, limit: int = 20, offset: int = 0, rejected: bool = False,
               feed_id: int | None = None, site: str | None = None, since: float | None = None,
               until: float | None = None, min_score: float | None = None) -> list[SearchHit]:
        """Full-text search, best first (ts_rank, a title match weighing 5 times the text); the
        same query syntax as on SQLite, NEAR read as AND. Raises SearchError on a malformed query."""
        import psycopg

        tsq = _tsquery(query)
        conds: list[tuple[str, Any]] = []
        for cond, value in (("x.fetched >= ?", since), ("x.fetched <= ?", until), ("x.score >= ?", min_score)):
            if value is not None:
                conds.append((cond, value))
        art_where = ["a.withdrawn IS NULL", "a.search @@ to_tsquery('simple', ?)"]
        art_args: list[Any] = [tsq]
        for cond, value in conds:
            art_where.append(cond.replace("x.", "a."))
            art_args.append(value)
        if site:
            art_where.append("a.site = ?")
            art_args.append(site)
        if feed_id is not None:
            art_where.append("a.id IN (SELECT article_id FROM sources WHERE feed_id = ?)")
            art_args.append(feed_id)
        weights = "'{0, 0, 0.2, 1.0}'"  # D, C, B (text), A (title)
        sql = (f"SELECT 'article' AS kind, a.id, a.title, a.url, a.site, a.published, a.fetched, a.score, "
               f"a.text AS body, NULL::bytea AS doc, -ts_rank({weights}, a.search, to_tsquery('simple', ?)) AS rank "
               f"FROM articles a WHERE {' AND '.join(art_where)}")
        args: list[Any] = [tsq, *art_args]
        if rejected:
            page_where = ["p.outcome = 'rejected'", "p.search @@ to_tsquery('simple', ?)"]
            page_args: list[Any] = [tsq]
            for cond, value in conds:
                page_where.append(cond.replace("x.", "p."))
                page_args.append(value)
            if feed_id is not None:
                page_where.append("p.id IN (SELECT page_id FROM entries WHERE feed_id = ?)")
                page_args.append(feed_id)
            sql += (f" UNION ALL SELECT 'page', p.id, p.title, COALESCE(p.final_url, p.url), '', NULL, p.fetched, "
                    f"p.score, NULL, p.doc, -ts_rank({weights}, p.search, to_tsquery('simple', ?)) "
                    f"FROM pages p WHERE {' AND '.join(page_where)}")
            args += [tsq, *page_args]
        sql += " ORDER BY rank, id LIMIT ? OFFSET ?"
        try:
            rows = self.db.execute(sql, (*args, limit, offset)).fetchall()
        except psycopg.Error as exc:
            raise SearchError(f"cannot read the query {query!r}: {_first_line(exc)}") from None
        words = _query_words(query)
        hits = []
        for r in rows:
            body = r["body"] or ""
            if r["doc"] is not None:  # a rejected page: its text is in its compressed doc
                body = unpack(r["doc"]).get("text", "")
            hits.append(SearchHit(r["kind"], r["id"], r["title"] or "", r["url"], r["site"] or "", r["published"],
                                  r["fetched"], r["score"], _snippet(body, words), float(r["rank"])))
        return hits


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _implements_the_contract(store: PgStore) -> StoreContract:
    return store  # mypy: PgStore has every method of the contract, with compatible types


def _seen(db: Any, worker: str, now: float) -> None:
    """Record that ``worker`` is alive now (registered on first sight): the fair share counts it."""
    db.execute("INSERT INTO workers (name, started, seen) VALUES (?,?,?) ON CONFLICT (name) DO UPDATE "
               "SET seen = excluded.seen", (worker, now, now))
