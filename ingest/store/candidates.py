"""Backfill's candidates: the article URLs a site's history lists (sitemaps, feed pages, archives,
related-story links), recorded once each with where they were found, so a later run continues
where the last one stopped instead of discovering again (issue 36)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from ingest.sources.urls import normalize
from ingest.store.contract import Record
from ingest.store.core import MAX_PAGE_ATTEMPTS, SqlCore

SOURCES = ("sitemap", "feed", "archive", "link")  # where a candidate was found
SITE_COLUMNS = {"discovered", "discovery_requests", "stopped", "stopped_at", "recent", "sample_fetched",
                "sample_kept", "validators"}


class CandidateTables(SqlCore):
    def add_candidates(self, site: str, found: Iterable[tuple[str, str, str, datetime | None, str]],
                       now: float) -> int:
        """Record (link, source, found_in, date, title) candidates of ``site``; a URL already a candidate
        (normalised) is left as it is. Returns how many are new."""
        added = 0
        with self.transaction() as db:
            for link, source, found_in, date, title in found:
                if source not in SOURCES:
                    raise ValueError(f"not a candidate source: {source!r}")
                cur = db.execute(
                    "INSERT INTO candidates (site, url, link, source, found_in, date, title, found) "
                    "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (url) DO NOTHING",
                    (site, normalize(link), link, source, found_in, date.isoformat() if date else None,
                     title[:500], now))
                added += max(cur.rowcount, 0)
        return added

    def pending_by_url(self, urls: Sequence[str]) -> dict[str, Record]:
        """Normalised URL -> its candidate row, for those of ``urls`` still pending (see pending_candidates)."""
        out: dict[str, Record] = {}
        for i in range(0, len(urls), 500):
            part = list(urls[i:i + 500])
            marks = ",".join("?" * len(part))
            for r in self.db.execute(
                    f"SELECT c.* FROM candidates c WHERE c.url IN ({marks}) AND c.fetched IS NULL AND NOT EXISTS "
                    "(SELECT 1 FROM pages p WHERE p.url = c.url AND (p.outcome <> 'error' OR p.attempts >= ?))",
                    (*part, MAX_PAGE_ATTEMPTS)):
                out[r["url"]] = r
        return out

    def candidates_found_since(self, site: str, since: float) -> int:
        return self.db.execute("SELECT COUNT(*) FROM candidates WHERE site = ? AND found > ?",
                               (site, since)).fetchone()[0]

    def title_candidates(self, titles: Iterable[tuple[int, str]]) -> None:
        """Candidate id -> a title learned after it was found (a related-story link's text), where it had none."""
        with self.transaction() as db:
            db.executemany("UPDATE candidates SET title = ? WHERE id = ? AND title = ''",
                           [(t[:500], cid) for cid, t in titles])

    def set_prescores(self, scores: Iterable[tuple[int, float]]) -> None:
        """Candidate id -> its pre-score (ingest.judge.prescore)."""
        with self.transaction() as db:
            db.executemany("UPDATE candidates SET prescore = ? WHERE id = ?", [(s, cid) for cid, s in scores])

    def pending_candidates(self, site: str, limit: int | None = None) -> list[Record]:
        """The site's candidates not fetched yet and not known to the store as a page (polled, fetched or
        given up earlier: never fetched again), best pre-score first (unscored ones last, in the order
        they were found)."""
        return self.db.execute(
            "SELECT c.* FROM candidates c WHERE c.site = ? AND c.fetched IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM pages p WHERE p.url = c.url AND (p.outcome <> 'error' OR p.attempts >= ?)) "
            "ORDER BY c.prescore IS NULL, c.prescore DESC, c.id" + (" LIMIT ?" if limit is not None else ""),
            (site, MAX_PAGE_ATTEMPTS, *([limit] if limit is not None else []))).fetchall()

    def candidate_counts(self, site: str) -> dict[str, int]:
        """How many candidates the site has, by source, and how many are fetched."""
        out = dict.fromkeys(SOURCES, 0)
        for source, n in self.db.execute("SELECT source, COUNT(*) FROM candidates WHERE site = ? GROUP BY source",
                                         (site,)):
            out[source] = n
        out["fetched"] = self.db.execute("SELECT COUNT(*) FROM candidates WHERE site = ? AND fetched IS NOT NULL",
                                         (site,)).fetchone()[0]
        return out

    def mark_candidates_fetched(self, ids: Sequence[int], now: float) -> None:
        with self.transaction() as db:
            db.executemany("UPDATE candidates SET fetched = ? WHERE id = ?", [(now, cid) for cid in ids])

    def backfill_fetched_since(self, since: float) -> tuple[int, float | None]:
        """Candidates fetched at or after ``since`` on every site, and the earliest of those times (the
        service's daily budget: it is spent again one day after that)."""
        n, first = self.db.execute("SELECT COUNT(*), MIN(fetched) FROM candidates WHERE fetched >= ?",
                                   (since,)).fetchone()
        return int(n), first

    def backfill_outcomes(self, site: str) -> dict[str, int]:
        """The decisions on the site's pages the backfill fetched: kept, rejected, duplicate, empty, ..."""
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT p.outcome, COUNT(*) FROM candidates c JOIN pages p ON p.url = c.url "
            "WHERE c.site = ? AND c.fetched IS NOT NULL GROUP BY p.outcome", (site,))}

    def backfill_site(self, site: str) -> Record | None:
        return self.db.execute("SELECT * FROM backfill_sites WHERE site = ?", (site,)).fetchone()

    def backfill_sites(self) -> list[Record]:
        return self.db.execute("SELECT * FROM backfill_sites ORDER BY site").fetchall()

    def set_backfill_site(self, site: str, **fields: object) -> None:
        """Set some of a site's backfill columns (names checked: never SQL from data)."""
        bad = set(fields) - SITE_COLUMNS
        if bad:
            raise ValueError(f"not a backfill_sites column: {sorted(bad)}")
        with self.transaction() as db:
            db.execute("INSERT INTO backfill_sites (site) VALUES (?) ON CONFLICT (site) DO NOTHING", (site,))
            if fields:
                sets = ", ".join(f"{k} = ?" for k in fields)
                db.execute(f"UPDATE backfill_sites SET {sets} WHERE site = ?", (*fields.values(), site))

    def backfill_origins(self, article_ids: Sequence[int]) -> dict[int, Record]:
        """Article id -> where the backfill found it (site, source, found_in, date), for the articles that
        came from a backfill (their kept page was a candidate the backfill fetched)."""
        if not article_ids:
            return {}
        marks = ",".join("?" * len(article_ids))
        return {r["article_id"]: r for r in self.db.execute(
            "SELECT p.article_id, c.site, c.source, c.found_in, c.date, c.link, c.fetched FROM pages p "
            "JOIN candidates c ON c.url = p.url WHERE c.fetched IS NOT NULL AND p.outcome = 'kept' "
            f"AND p.article_id IN ({marks})",
            tuple(article_ids))}
