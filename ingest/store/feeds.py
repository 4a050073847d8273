"""The store's feeds, hosts (Retry-After windows, robots.txt) and runs."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable

from ingest.sources.urls import host_of
from ingest.store.core import SqlCore
from ingest.store.rows import FEED_COLUMNS, FeedRow, feed_row

HISTORY = 100  # changes of state and interval kept per feed


class FeedTables(SqlCore):
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

    def feed_entries(self, feed_id: int, limit: int = 50) -> list:
        """The feed's newest entries with what became of each: the page's outcome, score, threshold and
        reason, and the article it is (kept) or is a copy of (duplicate)."""
        return self.db.execute(
            "SELECT e.title, e.link, e.published, e.first_seen, p.id AS page_id, p.outcome, p.score, p.threshold, "
            "p.reason, p.article_id FROM entries e LEFT JOIN pages p ON p.id = e.page_id WHERE e.feed_id = ? "
            "ORDER BY e.first_seen DESC, e.key LIMIT ?", (feed_id, limit)).fetchall()

    def poll_feeds_now(self, now: float, feed_ids: Collection[int] | None = None) -> int:
        """Make these feeds (all pollable ones with None) due now, whatever their schedule; returns how many."""
        where, args = "active = 1 AND enabled = 1 AND state <> 'disabled'", [now]
        if feed_ids is not None:
            ids = list(feed_ids)
            if not ids:
                return 0
            where += f" AND id IN ({','.join('?' * len(ids))})"
            args += ids
        with self.transaction() as db:
            return int(db.execute(f"UPDATE feeds SET next_poll = ? WHERE {where}", args).rowcount)

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
            before = db.execute('SELECT state, "interval", state_reason FROM feeds WHERE id=?', (feed_id,)).fetchone()
            db.execute(f"UPDATE feeds SET {cols} WHERE id=?", (*fields.values(), feed_id))
            if before is None or not ({"state", "interval"} & fields.keys()):
                return
            state = fields.get("state", before[0])
            interval = fields.get("interval", before[1])
            if (state, interval) != (before[0], before[1]):  # a change of state or interval: the feed's history
                at = next((fields[k] for k in ("last_poll", "last_error_at", "last_success") if fields.get(k)),
                          None) or time.time()
                reason = str(fields.get("state_reason", before[2] or ""))[:300]
                db.execute('INSERT INTO feed_history (feed_id, at, state, "interval", reason) VALUES (?,?,?,?,?)',
                           (feed_id, at, state, interval, reason))
                db.execute("DELETE FROM feed_history WHERE feed_id = ? AND at < (SELECT at FROM feed_history "
                           "WHERE feed_id = ? ORDER BY at DESC LIMIT 1 OFFSET ?)", (feed_id, feed_id, HISTORY - 1))

    def feed_history(self, feed_id: int, limit: int = 20) -> list:
        """The feed's latest changes of state and interval, newest first."""
        return self.db.execute('SELECT at, state, "interval", reason FROM feed_history WHERE feed_id = ? '
                               "ORDER BY at DESC LIMIT ?", (feed_id, limit)).fetchall()

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
