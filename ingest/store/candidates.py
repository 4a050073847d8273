"""Backfill's candidates: the article URLs a site's history lists (sitemaps, feed pages, archives,
related-story links), recorded once each with where they were found, so a later run continues
where the last one stopped instead of discovering again (issue 36)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from ingest.sources.urls import normalize
from ingest.store.contract import Record
from ingest.store.core import SqlCore

SOURCES = ("sitemap", "feed", "archive", "link")  # where a candidate was found


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

    def set_prescores(self, scores: Iterable[tuple[int, float]]) -> None:
        """Candidate id -> its pre-score (ingest.judge.prescore)."""
        with self.transaction() as db:
            db.executemany("UPDATE candidates SET prescore = ? WHERE id = ?", [(s, cid) for cid, s in scores])

    def pending_candidates(self, site: str, limit: int = 100) -> list[Record]:
        """The site's candidates not fetched yet, best pre-score first (unscored ones last, in the order
        they were found)."""
        return self.db.execute(
            "SELECT * FROM candidates WHERE site = ? AND fetched IS NULL ORDER BY prescore IS NULL, prescore DESC, "
            "id LIMIT ?", (site, limit)).fetchall()

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
