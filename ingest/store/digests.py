"""The store's digests and deliveries, health, and the reads of the web view and exports."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from ingest.store.archive_index import ArchiveIndex
from ingest.store.candidates import CandidateTables
from ingest.store.contract import Record
from ingest.store.feeds import FeedTables
from ingest.store.rows import Health
from ingest.store.verdicts import VerdictTables
from ingest.text.corpus import TMP_PREFIX


class DigestTables(FeedTables, VerdictTables, CandidateTables, ArchiveIndex):
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
            probe.unlink()
        except OSError as exc:
            return False, exc.strerror or str(exc)
        why = self._db_unwritable()
        if why:
            return False, why
        return True, ""

    def list_articles(self, *, before: tuple[str, int] | None = None, limit: int = 50, feed_id: int | None = None,
                      site: str | None = None, since: float | None = None, until: float | None = None,
                      min_score: float | None = None) -> list[Record]:
        """Corpus articles newest first by the day they were published (fetched when unknown; ties by
        id), ``before`` a (day, id) of the last one shown for stable pagination."""
        where, args = ["withdrawn IS NULL"], []
        if before is not None:
            where.append("(day < ? OR (day = ? AND id < ?))")
            args += [before[0], before[0], before[1]]
        for cond, value in (("site = ?", site or None), ("fetched >= ?", since),
                            ("fetched <= ?", until), ("score >= ?", min_score)):
            if value is not None:
                where.append(cond)
                args.append(value)
        if feed_id is not None:
            where.append("id IN (SELECT article_id FROM sources WHERE feed_id = ?)")
            args.append(feed_id)
        return self.db.execute(f"SELECT * FROM articles WHERE {' AND '.join(where)} ORDER BY day DESC, id DESC "
                               f"LIMIT ?", (*args, limit)).fetchall()

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
