"""The store's entries, pages and articles: what was seen, fetched, kept, and the corpus files."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.blobs import pack, unpack
from ingest.sources.urls import host_of
from ingest.store.contract import Record
from ingest.store.core import (
    DROPPED,
    MAX_DEFERRAL,
    MAX_PAGE_ATTEMPTS,
    PAGE_RETRY,
    STREAM_WINDOW,
    TRIM_SLACK,
    WITHDRAWN,
    SqlCore,
)
from ingest.store.rows import Decision, NewArticle, PageDoc, Source
from ingest.text import corpus
from ingest.text.corpus import read_corpus_file


def article_day(published: str | None, fetched: float) -> str:
    """The day an article is listed under: its published date when known, else the day it was fetched (UTC)."""
    if published and re.match(r"\d{4}-\d{2}-\d{2}", published):
        return published[:10]
    return datetime.fromtimestamp(fetched, UTC).strftime("%Y-%m-%d")


class PageTables(SqlCore):
    # -- entries and pages ----------------------------------------------

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
    def _corpus_write(self, name: str, title: str, text: str, folder: Path | None = None) -> Iterator[None]:
        """Around the commit of an article's rows: its corpus file is written under a temp name and
        fsynced before, renamed into place after, removed when the commit fails (recover() finishes
        a rename a crash interrupted). Nothing on PostgreSQL: the text is a column of the row.
        ``folder``: where the file is now (default corpus/; withdrawn/ or dropped/ for one taken out)."""
        folder = folder or self.corpus
        tmp = None if self.text_in_db else corpus.write_temp(folder, name, title, text)
        try:
            yield
        except BaseException:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise
        if tmp is not None:
            tmp.replace(folder / name)

    def add_article(self, art: NewArticle, url: str, sources: Sequence[Source], now: float,
                    final_url: str | None, counts: dict[str, int] | None = None) -> tuple[int, str]:
        """Store a new article: text + rows, atomically. Returns (id, path)."""
        number = self._next_number()
        name = corpus.file_name(number, art.canonical_url)
        text_col, text_arg = (", text", [art.text]) if self.text_in_db else ("", [])
        with self._corpus_write(name, art.title, art.text), self.transaction() as db:
            cur = db.execute(
                "INSERT INTO articles (number, url, canonical_url, title, author, site, language, published, "
                f"fetched, text_hash, score, threshold, terms, path, minhash, day{text_col}) "
                f"VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?{',?' * len(text_arg)}) RETURNING id",
                (number, url, art.canonical_url, art.title, art.author, art.site, art.language, art.published,
                 now, art.text_hash, art.score, art.threshold, json.dumps(list(art.terms)), f"corpus/{name}",
                 art.minhash, article_day(art.published, now), *text_arg))
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
        art = self.article(article_id)
        path = art["path"]
        text_set, text_arg = (", text=?", [text]) if self.text_in_db else ("", [])
        # written where the file is now: an article taken out keeps its text in withdrawn/ or dropped/
        with self._corpus_write(path.split("/", 1)[1], title, text, self.article_file(art).parent), \
                self.transaction() as db:
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
            from ingest.text.fingerprint import band_keys

            db.executemany("INSERT INTO lsh (key, article_id) VALUES (?,?)",
                           ((k, article_id) for k in band_keys(minhash)))

    def article_file(self, art: Record) -> Path:
        """Where an article's file is now: the corpus folder; withdrawn/ once the user took it out;
        dropped/ once a re-decision of the model did (what the user did and what the model did apart)."""
        name = art["path"].split("/", 1)[1]
        if art["withdrawn"] is None:
            return self.corpus / name
        return self.root / (DROPPED if art["withdrawn_by"] == "rescore" else WITHDRAWN) / name

    def misplaced_file(self, art: Record) -> Path | None:
        """The article's file where its row does not say it is (a move a crash interrupted), if any."""
        name = art["path"].split("/", 1)[1]
        want = self.article_file(art)
        for other in (self.corpus / name, self.root / WITHDRAWN / name, self.root / DROPPED / name):
            if other != want and other.exists():
                return other
        return None

    def _place(self, art: Record) -> None:
        """Move an article's file to where its row says it belongs."""
        other = self.misplaced_file(art)
        if other is not None:
            want = self.article_file(art)
            want.parent.mkdir(exist_ok=True)
            other.replace(want)
