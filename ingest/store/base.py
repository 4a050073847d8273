"""What both backends share: the store's SQL, written once in the subset SQLite and PostgreSQL agree on.

``SqlStore`` holds every query that reads or writes the same way on both
(``?`` placeholders; the PostgreSQL connection translates them). Each backend
adds what differs: opening, transactions, migrations, full-text search,
integrity checks, and where article text lives (SQLite: corpus files written
around the commit; PostgreSQL: a column, the folder written by ``ingest corpus
sync``). Nothing outside the store writes SQL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import corpus
from ..blobs import pack, unpack
from ..corpus import TMP_PREFIX, read_corpus_file
from ..urls import host_of
from .contract import Record
from .rows import (FEED_COLUMNS, CheckReport, Decision, FeedRow, Health, NewArticle, PageDoc, SearchHit, Source,
                   feed_row)

WITHDRAWN = "withdrawn"  # folder (in the store) of articles taken out of the corpus by a verdict or rescore
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


class SqlStore:
    """The shared part of a store; open one with ``ingest.store.open_store`` (or a backend's ``open``)."""

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
        report.integrity = self._integrity()
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
                    report.repaired.append(f"moved {f.relative_to(self.root)} (no row in the index) to {ORPHANS}/")
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

    def make_all_due(self, now: float) -> None:
        """Every pollable feed is due now (``ingest poll`` on a shared store)."""
        with self.transaction() as db:
            db.execute("UPDATE feeds SET next_poll = ? WHERE active = 1 AND enabled = 1 AND state <> 'disabled' "
                       "AND (next_poll IS NULL OR next_poll > ?)", (now, now))

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
        cols = ", ".join(f'"{k}"=?' for k in fields)  # quoted: "interval" is a keyword in PostgreSQL
        with self.transaction() as db:
            db.execute(f"UPDATE feeds SET {cols} WHERE id=?", (*fields.values(), feed_id))

    # -- entries and pages ----------------------------------------------

    def _rows_in(self, sql: str, params: tuple, values: Sequence) -> Iterator[Record]:
        """Rows of ``sql`` whose ``{q}`` placeholder is ``values``, queried in chunks
        (SQLite limits the number of parameters per statement)."""
        for i in range(0, len(values), 500):
            chunk = values[i:i + 500]
            yield from self.db.execute(sql.format(q=",".join("?" * len(chunk))), (*params, *chunk))

    def seen_entries(self, feed_id: int, keys: Sequence[str]) -> dict[str, str | None]:
        """The keys among ``keys`` this feed has recorded, with each one's stored ``updated`` date."""
        return {r[0]: r[1] for r in self._rows_in(
            "SELECT key, updated FROM entries WHERE feed_id=? AND key IN ({q})", (feed_id,), keys)}

    def page(self, url: str) -> Record | None:
        return self.db.execute("SELECT * FROM pages WHERE url=?", (url,)).fetchone()

    def pages_by_urls(self, urls: Sequence[str]) -> dict[str, Record]:
        return {r["url"]: r for r in self._rows_in("SELECT * FROM pages WHERE url IN ({q})", (), list(urls))}

    def near_candidates(self, keys: Sequence[int]) -> list[tuple[int, bytes]]:
        """Articles sharing an LSH band key, with their signatures."""
        q = ",".join("?" * len(keys))
        return [(r[0], r[1]) for r in self.db.execute(
            f"SELECT DISTINCT a.id, a.minhash FROM lsh JOIN articles a ON a.id = lsh.article_id "
            f"WHERE lsh.key IN ({q})", list(keys))]

    def article(self, article_id: int) -> Record:
        return self.db.execute("SELECT * FROM articles WHERE id=?", (article_id,)).fetchone()

    def article_body(self, art: Record) -> tuple[str, str] | None:
        """An article's (title, text) as stored: its corpus file (None when the file is gone)."""
        try:
            return read_corpus_file(self.article_file(art))
        except (OSError, UnicodeDecodeError):
            return None

    def article_text(self, article_id: int) -> str | None:
        """An article's text as stored (None when it is gone)."""
        art = self.article(article_id)
        body = self.article_body(art) if art is not None else None
        return body[1] if body is not None else None

    def article_by(self, *, canonical_url: str | None = None, text_hash: str | None = None) -> int | None:
        if canonical_url is not None:
            row = self.db.execute("SELECT id FROM articles WHERE canonical_url=?", (canonical_url,)).fetchone()
        else:
            row = self.db.execute("SELECT id FROM articles WHERE text_hash=? ORDER BY id LIMIT 1",
                                  (text_hash,)).fetchone()
        return row[0] if row else None

    def record_entries(self, sources: Sequence[Source], page_id: int | None, now: float,
                       article_id: int | None = None, db: Any = None) -> None:
        """Remember entries as seen (and, for an article, as its sources)."""

        def write(db: Any) -> None:
            for s in sources:
                db.execute(
                    "INSERT INTO entries (feed_id, key, link, title, published, updated, first_seen, page_id) "
                    "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(feed_id, key) DO UPDATE SET updated=excluded.updated",
                    (s.feed_id, s.key, s.link, s.title, s.published, s.updated, now, page_id))
                if article_id is not None:
                    db.execute("INSERT INTO sources (article_id, url, feed_id, first_seen) "
                               "VALUES (?,?,?,?) ON CONFLICT DO NOTHING", (article_id, s.link, s.feed_id, now))

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
                self._index_page(db, page_id, doc.title, doc.text)
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
        until = max(until, now + 1.0)  # never "due already": the service arms a poll for it
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

    def due_deferred(self, now: float, limit: int = 10_000,
                     hosts: Collection[str] | None = None) -> list[tuple[str, str, list[Source]]]:
        """Deferred and queued pages whose time has come: (key, link as given, sources); with
        ``hosts``, only the pages on those hosts (the ones a worker holds)."""
        out = []
        for r in self.db.execute("SELECT url, pending FROM pages WHERE retry_at IS NOT NULL AND retry_at <= ? "
                                 "ORDER BY retry_at LIMIT ?", (now, limit)):
            if hosts is None or host_of(r["url"]) in hosts:
                out.append(self._waiting_job(r))
        return out

    def next_page_due(self, exclude: Collection[str] = ()) -> float | None:
        """When the earliest waiting page (deferred or queued) not in ``exclude`` may be fetched: the
        service arms its next poll for it, so a page its host deferred for a moment is not left until
        the next feed poll."""
        skip = set(exclude)
        for r in self.db.execute("SELECT url, retry_at FROM pages WHERE retry_at IS NOT NULL ORDER BY retry_at "
                                 "LIMIT ?", (len(skip) + 1,)):
            if r["url"] not in skip:
                return float(r["retry_at"])
        return None

    @staticmethod
    def _waiting_job(row: Record) -> tuple[str, str, list[Source]]:
        """A waiting page row (url, pending) as (key, link as given, sources)."""
        pending = unpack(row["pending"]) if row["pending"] else {"link": row["url"], "sources": []}
        return row["url"], pending["link"], [Source(**s) for s in pending["sources"]]

    for_update = ""  # appended to a SELECT whose rows the transaction will change (PostgreSQL: FOR UPDATE)

    def queue_pages(self, pages: Sequence[tuple[str, str, Sequence[Source]]], now: float) -> int:
        """Page jobs: pages (key, link as given, sources) for whichever worker holds their host. A page
        already decided records the sources as seen; one already waiting gains them; one that failed
        (not given up) is queued again. Returns how many jobs are new."""
        new = 0
        with self.transaction() as db:
            for key, link, sources in pages:
                job = pack({"link": link, "sources": [asdict(s) for s in sources]})
                row = db.execute("SELECT id, outcome, article_id, attempts, pending FROM pages WHERE url=?"
                                 + self.for_update, (key,)).fetchone()
                if row is None:
                    made = db.execute("INSERT INTO pages (url, fetched, outcome, attempts, retry_at, pending) "
                                      "VALUES (?,?,'queued',0,?,?) ON CONFLICT (url) DO NOTHING RETURNING id",
                                      (key, now, now, job)).fetchone()
                    if made is not None:
                        new += 1
                        continue
                    row = db.execute("SELECT id, outcome, article_id, attempts, pending FROM pages WHERE url=?"
                                     + self.for_update, (key,)).fetchone()  # another worker queued it just now
                if row["pending"] is not None:  # waiting (queued, deferred, failed and due again): add sources
                    known = unpack(row["pending"])
                    merged = list({(s.feed_id, s.key): s for s in [*(Source(**x) for x in known["sources"]),
                                                                    *sources]}.values())
                    db.execute("UPDATE pages SET pending=? WHERE id=?",
                               (pack({"link": known["link"], "sources": [asdict(s) for s in merged]}), row["id"]))
                elif row["outcome"] == "error" and row["attempts"] < MAX_PAGE_ATTEMPTS:
                    db.execute("UPDATE pages SET outcome='queued', retry_at=?, pending=? WHERE id=?",
                               (now, job, row["id"]))
                    new += 1
                else:
                    self.record_entries(sources, row["id"], now, row["article_id"], db=db)
        return new

    def _upsert_page(self, db: Any, url: str, final_url: str | None, now: float, outcome: str, reason: str,
                     score: float | None, article_id: int | None) -> tuple[int, int]:
        """Insert or update the page row; returns (id, attempts so far). Sources that were waiting
        on the page (a queued or deferred page) are recorded with it; on a failure that will be
        tried again they stay waiting, and the page is due again after PAGE_RETRY."""
        old = db.execute("SELECT pending FROM pages WHERE url=?" + self.for_update, (url,)).fetchone()
        row = db.execute(
            "INSERT INTO pages (url, final_url, fetched, outcome, reason, score, article_id) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(url) DO UPDATE SET final_url=excluded.final_url, fetched=excluded.fetched, "
            "outcome=excluded.outcome, reason=excluded.reason, score=excluded.score, "
            "article_id=excluded.article_id, attempts=pages.attempts+1, retry_at=NULL, deferred_since=NULL, "
            "pending=NULL RETURNING id, attempts",
            (url, final_url, now, outcome, reason, score, article_id)).fetchone()
        page_id, attempts = int(row[0]), int(row[1])
        if old is not None and old["pending"] is not None:
            waiting = unpack(old["pending"])
            if outcome == "error" and attempts < MAX_PAGE_ATTEMPTS:
                db.execute("UPDATE pages SET pending=?, retry_at=? WHERE id=?",
                           (old["pending"], now + PAGE_RETRY, page_id))
            else:
                self.record_entries([Source(**x) for x in waiting["sources"]], page_id, now, article_id, db=db)
        return page_id, attempts

    def _add_stream(self, db: Any, page_id: int, counts: dict[str, int]) -> None:
        """Put a page's term counts in the model's window. The oldest beyond STREAM_WINDOW leave it in
        batches, not one per page: only once the window has grown TRIM_SLACK past its size, and (with
        several writers) only by the one that gets the trim lock, so concurrent decisions never queue
        on the same old rows. The pages you judged stay (your verdicts keep teaching the model)."""
        db.execute("INSERT INTO stream (page_id, counts) VALUES (?,?) ON CONFLICT (page_id) DO UPDATE "
                   "SET counts = excluded.counts", (page_id, pack(counts)))
        over = db.execute("SELECT page_id FROM stream ORDER BY page_id DESC LIMIT 1 OFFSET ?",
                          (STREAM_WINDOW + TRIM_SLACK,)).fetchone()
        if over is not None and self._may_trim(db):
            db.execute("DELETE FROM stream WHERE page_id <= (SELECT page_id FROM stream ORDER BY page_id DESC "
                       "LIMIT 1 OFFSET ?) AND page_id NOT IN (SELECT page_id FROM verdicts)", (STREAM_WINDOW,))

    def _may_trim(self, db: Any) -> bool:
        """Whether this transaction trims the window now (one writer: always)."""
        return True

    text_in_db = False  # PostgreSQL keeps article text in a column; SQLite in the corpus files

    def _next_number(self) -> int:
        """The running number of the next corpus file."""
        return int(self.db.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM articles").fetchone()[0])

    @contextmanager
    def _corpus_write(self, name: str, title: str, text: str) -> Iterator[None]:
        """Around the commit of an article's rows: its corpus file is written under a temp name and
        fsynced before, renamed into place after, removed when the commit fails (recover() finishes
        a rename a crash interrupted). Nothing on PostgreSQL: the text is a column of the row."""
        tmp = None if self.text_in_db else corpus.write_temp(self.corpus, name, title, text)
        try:
            yield
        except BaseException:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise
        if tmp is not None:
            os.replace(tmp, self.corpus / name)

    def add_article(self, art: NewArticle, url: str, sources: Sequence[Source], now: float,
                    final_url: str | None, counts: dict[str, int] | None = None) -> tuple[int, str]:
        """Store a new article: text + rows, atomically. Returns (id, path)."""
        number = self._next_number()
        name = corpus.file_name(number, art.canonical_url)
        text_col, text_arg = (", text", [art.text]) if self.text_in_db else ("", [])
        with self._corpus_write(name, art.title, art.text), self.transaction() as db:
            cur = db.execute(
                "INSERT INTO articles (number, url, canonical_url, title, author, site, language, published, "
                f"fetched, text_hash, score, threshold, terms, path, minhash{text_col}) "
                f"VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?{',?' * len(text_arg)}) RETURNING id",
                (number, url, art.canonical_url, art.title, art.author, art.site, art.language, art.published,
                 now, art.text_hash, art.score, art.threshold, json.dumps(list(art.terms)), f"corpus/{name}",
                 art.minhash, *text_arg))
            article_id = int(cur.fetchone()[0])
            self._index_near(db, article_id, art.minhash)
            self._index_article(db, article_id, art.title, art.text)
            page_id, _ = self._upsert_page(db, url, final_url, now, "kept", "", art.score, article_id)
            db.execute("UPDATE pages SET threshold=?, terms=?, title=?, doc=NULL WHERE id=?",
                       (art.threshold, json.dumps(list(art.terms)), art.title, page_id))
            self.record_entries(sources, page_id, now, article_id, db=db)
            if counts:
                self._add_stream(db, page_id, counts)
        return article_id, f"corpus/{name}"

    def update_article(self, article_id: int, title: str, text: str, text_hash: str, minhash: bytes | None,
                       url: str, sources: Sequence[Source], now: float) -> str:
        """The article changed in place: rewrite its text and row (same path), count the revision."""
        path = self.article(article_id)["path"]
        text_set, text_arg = (", text=?", [text]) if self.text_in_db else ("", [])
        with self._corpus_write(path.split("/", 1)[1], title, text), self.transaction() as db:
            db.execute(f"UPDATE articles SET title=?, text_hash=?, minhash=?, updated=?, "
                       f"revisions=revisions+1{text_set} WHERE id=?",
                       (title, text_hash, minhash, now, *text_arg, article_id))
            db.execute("DELETE FROM lsh WHERE article_id=?", (article_id,))
            self._index_near(db, article_id, minhash)
            self._unindex_article(db, article_id)
            self._index_article(db, article_id, title, text)
            page_id, _ = self._upsert_page(db, url, url, now, "kept", "updated in place", None, article_id)
            self.record_entries(sources, page_id, now, article_id, db=db)
        return path

    @staticmethod
    def _index_near(db: Any, article_id: int, minhash: bytes | None) -> None:
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
                db.execute("INSERT INTO stream (page_id, counts) VALUES (?,?) ON CONFLICT DO NOTHING",
                           (page_id, pack(counts)))

    def in_stream(self, page_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM stream WHERE page_id=?", (page_id,)).fetchone() is not None

    def learning_counts(self) -> tuple[int, int, int, int]:
        """(pages in the model's window, relevant verdicts, irrelevant verdicts, verdicts not applied yet)."""
        window = self.db.execute("SELECT COUNT(*) FROM stream").fetchone()[0]
        row = self.db.execute("SELECT COALESCE(SUM(CASE WHEN verdict = 'relevant' THEN 1 ELSE 0 END), 0), "
                              "COALESCE(SUM(CASE WHEN verdict = 'irrelevant' THEN 1 ELSE 0 END), 0), "
                              "COALESCE(SUM(CASE WHEN applied IS NULL THEN 1 ELSE 0 END), 0) "
                              "FROM verdicts").fetchone()
        return window, row[0], row[1], row[2]

    def pending_verdicts(self) -> list[Record]:
        return self.db.execute("SELECT * FROM verdicts WHERE applied IS NULL ORDER BY id").fetchall()

    def verdict_applied(self, verdict_id: int, now: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE verdicts SET applied=? WHERE id=?", (now, verdict_id))

    def pages_by_ids(self, ids: Sequence[int]) -> dict[int, Record]:
        return {r["id"]: r for r in self._rows_in("SELECT * FROM pages WHERE id IN ({q})", (), ids)}

    def page_by_id(self, page_id: int) -> Record | None:
        return self.db.execute("SELECT * FROM pages WHERE id=?", (page_id,)).fetchone()

    def page_doc(self, row: Record) -> PageDoc | None:
        """The page's text and metadata: its corpus file for a kept article, else the kept rejected text."""
        if row["article_id"] is not None and row["outcome"] == "kept":
            art = self.article(row["article_id"])
            body = self.article_body(art)
            if body is None:
                return None
            title, text = body
            return PageDoc(url=art["url"], canonical_url=art["canonical_url"], title=title, text=text,
                           author=art["author"], site=art["site"], language=art["language"],
                           published=art["published"], text_hash=art["text_hash"])
        if row["doc"] is None:
            return None
        return PageDoc(**unpack(row["doc"]))

    def pages_since(self, since: float) -> list[Record]:
        """Kept and rejected pages fetched since ``since`` (the ones rescore can re-decide)."""
        return self.db.execute("SELECT * FROM pages WHERE fetched >= ? AND outcome IN ('kept', 'rejected') "
                               "ORDER BY id", (since,)).fetchall()

    def page_sources(self, page_id: int) -> list[Source]:
        return [Source(r["feed_id"], r["key"], r["link"], r["title"], r["published"], r["updated"])
                for r in self.db.execute("SELECT * FROM entries WHERE page_id=?", (page_id,))]

    def expire_rejected_texts(self, before: float) -> int:
        """Drop the kept texts of rejected pages fetched before ``before`` (score and terms stay)."""
        with self.transaction() as db:
            self._unindex_pages_before(db, before)
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

    def _place(self, art: Record) -> None:
        """Move an article's file to where its row says it belongs."""
        name = art["path"].split("/", 1)[1]
        want = self.article_file(art)
        other = (self.corpus / name) if art["withdrawn"] is not None else (self.root / WITHDRAWN / name)
        if other.exists():
            want.parent.mkdir(exist_ok=True)
            os.replace(other, want)

    # -- hosts ----------------------------------------------------------

    def host_memory(self, now: float, hosts: Collection[str] | None = None
                    ) -> tuple[dict[str, float], dict[str, tuple[float, str, str | None]]]:
        """(host -> quiet until, origin -> (expires, state, robots.txt)): what has not expired; with
        ``hosts``, only theirs (a worker's leased hosts)."""
        quiet = {r[0]: r[1] for r in self.db.execute("SELECT name, quiet_until FROM hosts WHERE quiet_until > ?",
                                                     (now,))}
        robots = {r[0]: (r[1], r[2], r[3]) for r in self.db.execute(
            "SELECT origin, expires, state, body FROM robots WHERE expires > ?", (now,))}
        if hosts is not None:
            quiet = {h: t for h, t in quiet.items() if h in hosts}
            robots = {o: r for o, r in robots.items() if host_of(o) in hosts}
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
            row = db.execute("INSERT INTO runs (kind, started) VALUES (?,?) RETURNING id", (kind, now)).fetchone()
            return int(row[0])

    def finish_run(self, run_id: int, now: float, stats: dict) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished=?, stats=? WHERE id=?", (now, json.dumps(stats), run_id))

    # -- digests --------------------------------------------------------

    def articles_between(self, since: float, until: float) -> list[Record]:
        """Articles kept, or changed in place, in (since, until]."""
        return self.db.execute(
            "SELECT * FROM articles WHERE fetched > ? AND fetched <= ? AND withdrawn IS NULL UNION "
            "SELECT * FROM articles WHERE updated > ? AND updated <= ? AND withdrawn IS NULL",
            (since, until, since, until)).fetchall()

    def last_digest_until(self) -> float | None:
        return self.db.execute("SELECT MAX(until) FROM digests").fetchone()[0]

    def record_digest(self, since: float, until: float, items: int, path: str | None) -> int:
        with self.transaction() as db:
            return int(db.execute("INSERT INTO digests (created, since, until, items, path) VALUES (?,?,?,?,?) "
                                  "RETURNING id", (until, since, until, items, path)).fetchone()[0])

    def undelivered_digests(self, target: str, since: float) -> list[int]:
        """Digests created after ``since`` whose delivery to ``target`` was tried and failed."""
        return [r[0] for r in self.db.execute(
            "SELECT d.id FROM digests d JOIN deliveries x ON x.digest_id = d.id AND x.target = ? "
            "WHERE x.sent IS NULL AND d.created >= ? ORDER BY d.id", (target, since))]

    def digests_by_ids(self, ids: Sequence[int]) -> list[Record]:
        return sorted(self._rows_in("SELECT * FROM digests WHERE id IN ({q})", (), list(ids)), key=lambda r: r["id"])

    def record_delivery(self, digest_id: int, target: str, now: float, error: str | None) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO deliveries (digest_id, target, sent, attempts, error) VALUES (?,?,?,1,?) "
                       "ON CONFLICT (digest_id, target) DO UPDATE SET sent = excluded.sent, "
                       "attempts = deliveries.attempts + 1, error = excluded.error",
                       (digest_id, target, None if error else now, error))

    def last_digest_id(self) -> int | None:
        return self.db.execute("SELECT MAX(id) FROM digests").fetchone()[0]

    def rolling_since(self, n: int) -> float | None:
        """A time just before the n-th newest article was fetched (None: no articles)."""
        row = self.db.execute("SELECT MIN(fetched) FROM (SELECT fetched FROM articles WHERE withdrawn IS NULL "
                              "ORDER BY fetched DESC LIMIT ?) AS newest", (n,)).fetchone()
        return row[0] - 1e-6 if row[0] is not None else None

    # -- search ---------------------------------------------------------

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
        why = self._db_unwritable()
        if why:
            return False, why
        return True, ""

    def list_articles(self, *, before: int | None = None, limit: int = 50, feed_id: int | None = None,
                      site: str | None = None, since: float | None = None, until: float | None = None,
                      min_score: float | None = None) -> list[Record]:
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

    def article_copies(self, article_id: int) -> list[Record]:
        """The other pages found to be this article's story (duplicates), newest first."""
        return self.db.execute("SELECT * FROM pages WHERE article_id = ? AND outcome = 'duplicate' "
                               "ORDER BY fetched DESC", (article_id,)).fetchall()

    def article_by_url(self, url: str, key: str) -> int | None:
        """The article first fetched from ``url``, or stored under the identity ``key``."""
        row = self.db.execute("SELECT id FROM articles WHERE url=? OR canonical_url=?", (url, key)).fetchone()
        return row[0] if row else None

    def article_page(self, article_id: int) -> Record | None:
        """The page row that made this article (its verdict target)."""
        return self.db.execute("SELECT * FROM pages WHERE article_id = ? ORDER BY outcome = 'kept' DESC, id "
                               "LIMIT 1", (article_id,)).fetchone()

    def near_misses(self, limit: int = 50) -> list[Record]:
        """Rejected pages whose text is kept, scored at least half their threshold, newest first:
        where recall is recovered."""
        return self.db.execute(
            "SELECT * FROM pages WHERE outcome = 'rejected' AND doc IS NOT NULL AND threshold IS NOT NULL "
            "AND score >= threshold / 2 AND id NOT IN (SELECT page_id FROM verdicts) "
            "ORDER BY fetched DESC, id DESC LIMIT ?", (limit,)).fetchall()

    def sites(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT site FROM articles WHERE site != '' AND withdrawn "
                                              "IS NULL ORDER BY site")]

    def digest_rows(self) -> list[Record]:
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

    def articles(self) -> Iterator[Record]:
        """The articles in the corpus folder (not the withdrawn ones), in file order."""
        yield from self.db.execute("SELECT * FROM articles WHERE withdrawn IS NULL ORDER BY number")

    def corpus_files(self, batch: int = 500) -> Iterator[tuple[str, str, str, float]]:
        """Every article in the corpus as (file name, title, text, last changed), in number order,
        read a batch at a time (``ingest corpus sync`` on 100,000 articles holds one batch)."""
        after = -1
        while True:
            rows = self.db.execute("SELECT * FROM articles WHERE withdrawn IS NULL AND number > ? ORDER BY number "
                                   "LIMIT ?", (after, batch)).fetchall()
            for r in rows:
                body = self.article_body(r)
                if body is not None:
                    yield r["path"].split("/", 1)[1], body[0], body[1], r["updated"] or r["fetched"]
            if len(rows) < batch:
                return
            after = rows[-1]["number"]

    def withdrawn_files(self) -> list[str]:
        """File names of the articles taken out of the corpus."""
        return [r[0].split("/", 1)[1] for r in self.db.execute(
            "SELECT path FROM articles WHERE withdrawn IS NOT NULL ORDER BY number")]

    def feed_counts(self) -> dict[int, tuple[int, int]]:
        """feed id -> (entries seen, articles kept)."""
        seen = dict(self.db.execute("SELECT feed_id, COUNT(*) FROM entries GROUP BY feed_id").fetchall())
        kept = dict(self.db.execute(
            "SELECT feed_id, COUNT(DISTINCT article_id) FROM sources s JOIN articles a ON a.id = s.article_id "
            "WHERE a.withdrawn IS NULL GROUP BY feed_id").fetchall())
        return {fid: (seen.get(fid, 0), kept.get(fid, 0)) for fid in seen.keys() | kept.keys()}

    def article_sources(self, article_id: int) -> list[Record]:
        return self.db.execute(
            "SELECT s.url, s.first_seen, f.url AS feed_url, f.config_url AS feed_config_url FROM sources s "
            "LEFT JOIN feeds f ON f.id = s.feed_id WHERE s.article_id=? ORDER BY s.first_seen, s.rowid",
            (article_id,)).fetchall()




