"""The store's relevance tables: the model's window, rejected texts, verdicts, withdrawals."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.blobs import pack, unpack
from ingest.store.contract import Record
from ingest.store.pages import PageTables
from ingest.store.rows import PageDoc, Source


class VerdictTables(PageTables):
    # -- relevance: the model's window, rejected texts, verdicts ------------

    def stream(self) -> list[tuple[int, bytes]]:
        """The model's window: (page id, packed term counts), oldest first."""
        return [(r[0], r[1]) for r in self.db.execute("SELECT page_id, counts FROM stream ORDER BY page_id")]

    def verdicts(self) -> dict[int, bool]:
        """page id -> the user's verdict (True: relevant)."""
        return {r[0]: r[1] == "relevant" for r in self.db.execute("SELECT page_id, verdict FROM verdicts")}

    def set_verdict(self, page_id: int, url: str, relevant: bool, now: float,
                    counts: dict[str, int] | None = None, decided: str | None = None) -> None:
        """Record a verdict (the newest one for a page wins); the corpus follows in apply_verdicts.
        ``counts`` put a page that has left the model's window back into it. ``decided`` is the
        model's decision on the page ("kept", "rejected") the verdict judges; a later verdict on
        the same page keeps the first one (by then the corpus followed the user, not the model)."""
        with self.transaction() as db:
            db.execute("INSERT INTO verdicts (page_id, url, verdict, time, decided) VALUES (?,?,?,?,?) "
                       "ON CONFLICT(page_id) DO UPDATE SET verdict=excluded.verdict, time=excluded.time, "
                       "applied=NULL, decided=COALESCE(verdicts.decided, excluded.decided)",
                       (page_id, url, "relevant" if relevant else "irrelevant", now, decided))
            if counts:
                db.execute("INSERT INTO stream (page_id, counts) VALUES (?,?) ON CONFLICT DO NOTHING",
                           (page_id, pack(counts)))

    def in_stream(self, page_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM stream WHERE page_id=?", (page_id,)).fetchone() is not None

    def window_state(self, after: int) -> tuple[int, int, int, float]:
        """(window pages with an id above ``after``, the highest id in the window, how many verdicts,
        when the newest was given): enough to tell whether a learned model is out of date."""
        new, last = self.db.execute("SELECT COUNT(*), COALESCE(MAX(page_id), 0) FROM stream WHERE page_id > ?",
                                    (after,)).fetchone()[:2]
        n, newest = self.db.execute("SELECT COUNT(*), COALESCE(MAX(time), 0) FROM verdicts").fetchone()[:2]
        return int(new), max(int(last), after), int(n), float(newest)

    def verdict_outcomes(self) -> list[tuple[bool, str]]:
        """(relevant?, the model's decision it judged) for each verdict that recorded the decision."""
        return [(r[0] == "relevant", r[1]) for r in
                self.db.execute("SELECT verdict, decided FROM verdicts WHERE decided IS NOT NULL")]

    def put_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?,?) ON CONFLICT (key) DO UPDATE SET "
                       "value=excluded.value", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

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

    def feeds_of_pages(self, ids: Sequence[int]) -> dict[int, list[int]]:
        """Page id -> the ids of the feeds that listed it."""
        out: dict[int, list[int]] = {}
        for r in self._rows_in("SELECT DISTINCT page_id, feed_id FROM entries WHERE page_id IN ({q})", (), ids):
            out.setdefault(r["page_id"], []).append(r["feed_id"])
        return out

    def expire_rejected_texts(self, before: float) -> int:
        """Drop the kept texts of rejected pages fetched before ``before`` (score and terms stay)."""
        with self.transaction() as db:
            self._unindex_pages_before(db, before)
            return db.execute("UPDATE pages SET doc=NULL WHERE doc IS NOT NULL AND fetched < ?", (before,)).rowcount

    def withdraw_article(self, article_id: int, by: str, now: float) -> None:
        """Take an article out of the corpus folder: the row says so first, then the file moves to
        withdrawn/ (by the user) or dropped/ (by a re-decision; recover finishes a move a crash
        interrupted). Nothing is deleted. The user's verdict on an article the model dropped moves it
        to withdrawn/: theirs is the last word."""
        with self.transaction() as db:
            db.execute("UPDATE articles SET withdrawn=COALESCE(withdrawn, ?), withdrawn_by=? WHERE id=? AND "
                       "(withdrawn IS NULL OR (? = 'user' AND withdrawn_by = 'rescore'))",
                       (now, by, article_id, by))
        self._place(self.article(article_id))

    def restore_article(self, article_id: int) -> None:
        """Bring a withdrawn article back to the corpus folder, under the same file name."""
        with self.transaction() as db:
            db.execute("UPDATE articles SET withdrawn=NULL, withdrawn_by=NULL WHERE id=?", (article_id,))
        self._place(self.article(article_id))
