"""Polling one feed: a conditional GET with its validators, the body hash for feeds without them,
parsing (any format, in a worker process), a sitemap index's children; and, pure, which entries
are new and what the feed's row learns (its schedule) from the poll.

A feed's validators are saved only after its entries are recorded (ingest.run.poll), so a crash
can only cause a re-fetch, never a missed entry.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.config import ScheduleSettings
from ingest.run.schedule import FeedOutcome, FeedState, hint_from, plan, with_floor
from ingest.sources.exchange import Exchange
from ingest.sources.feeds import Entry, FeedKind, ParsedFeed, parse_feed
from ingest.sources.fetch import Fetcher, FetchResult, RequestOptions
from ingest.sources.urls import display
from ingest.store import FeedRow

if TYPE_CHECKING:
    from ingest.run.metrics import Metrics  # the service's, made with its web view

log = logging.getLogger("ingest")

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
               "application/xml;q=0.8, */*;q=0.5")
MAX_REFRESH = 5  # more entries than this (and than half the feed) "updated" at once are not believed
MAX_SITEMAP_DEPTH = 2  # an index of indexes of sitemaps, no deeper
MAX_SITEMAP_FETCHES = 10  # child sitemaps fetched per feed and poll (most recently modified first)


class FeedStatus(enum.Enum):
    DEFERRED = "deferred"  # not requested: its host asked for quiet (not an error)
    FAILED = "failed"
    NOT_MODIFIED = "not_modified"  # 304, or the same body as last time
    CHANGED = "changed"  # parsed: its entries are in ``parsed``


@dataclass
class FeedUpdate:
    """What a poll learned about a feed, saved (with its next poll time) once its entries are recorded."""

    feed: FeedRow
    outcome: FeedOutcome
    fields: dict  # validators, title ... stored along with the schedule's fields
    when: float
    deferred_until: float | None = None  # not fetched: its host asked for quiet (not an error)


@dataclass
class FeedRead:
    status: FeedStatus
    update: FeedUpdate
    parsed: ParsedFeed | None = None  # CHANGED: the feed's entries
    validators: dict = field(default_factory=dict)  # CHANGED: to save once the entries are recorded
    error: str | None = None  # FAILED: why


class FeedReader:
    """Reads feeds through the poll's fetcher, parsing in the poll's worker processes."""

    def __init__(self, fetcher: Fetcher, executor: Executor, clock: Callable[[], float],
                 metrics: Metrics | None = None,
                 archive: Callable[[tuple[Exchange, ...]], Awaitable[object]] | None = None) -> None:
        self.fetcher, self.executor, self.clock, self.metrics = fetcher, executor, clock, metrics
        self.archive = archive  # [archive] feeds: each feed document read, into the WARC archive

    def _failed(self, feed: FeedRow, res: FetchResult, reason: str, now: float) -> FeedRead:
        log.warning("feed=%s event=feed_error status=%s reason=%r", feed.url, res.status, reason)
        quiet = self.fetcher.host_quiet_until(feed.url)
        outcome = FeedOutcome(ok=False, status=res.status, error=reason, retry_after=quiet if quiet > now else None)
        return FeedRead(FeedStatus.FAILED, FeedUpdate(feed, outcome, {}, now), error=reason)

    async def read(self, feed: FeedRow, options: RequestOptions) -> FeedRead:
        res = await self.fetcher.fetch(feed.url, etag=feed.etag, last_modified=feed.last_modified,
                                       trusted=True, accept=FEED_ACCEPT, options=options,
                                       record=self.archive is not None)
        if self.archive is not None and res.ok:  # a 304 leaves nothing new to keep
            await self.archive(res.exchanges)
        now = self.clock()
        if self.metrics is not None and res.deferred_until is None:
            self.metrics.fetch_seconds.observe(res.elapsed)
            self.metrics.feed_requests.labels("304" if res.not_modified else "error" if res.error else "200").inc()
        if res.deferred_until is not None:
            log.info("feed=%s event=feed_deferred reason=%r", feed.url, res.error)
            return FeedRead(FeedStatus.DEFERRED, FeedUpdate(feed, FeedOutcome(ok=False), {}, now, res.deferred_until))
        if res.error:
            return self._failed(feed, res, res.error, now)
        hint = hint_from(res.headers, None, None, now)
        if res.not_modified:
            log.info("feed=%s event=feed_not_modified", feed.url)
            return FeedRead(FeedStatus.NOT_MODIFIED, FeedUpdate(
                feed, FeedOutcome(ok=True, status=304, hint_seconds=hint, moved_to=res.permanent_redirect), {}, now))
        body_hash = hashlib.sha256(res.body).hexdigest()
        validators = {"etag": res.headers.get("etag"), "last_modified": res.headers.get("last-modified"),
                      "content_hash": body_hash}
        if body_hash == feed.content_hash:  # validators broken or absent, body unchanged
            log.info("feed=%s event=feed_unchanged", feed.url)
            return FeedRead(FeedStatus.NOT_MODIFIED, FeedUpdate(
                feed, FeedOutcome(ok=True, status=res.status, hint_seconds=hint, moved_to=res.permanent_redirect),
                validators, now))
        # feedparser is CPU work too (seconds for a feed of 20,000 entries): not on the event loop
        try:
            parsed = await asyncio.get_running_loop().run_in_executor(
                self.executor, parse_feed, res.body, res.final_url, res.headers.get("content-type"))
        except Exception as exc:  # a crashed worker: count it against this feed only
            return self._failed(feed, res, f"feed parser crashed: {exc!r}", now)
        if parsed.kind is FeedKind.SITEMAP_INDEX:
            # its children change without it changing: read it (and them) every poll, no validators
            parsed = await self._expand_sitemaps(feed, parsed, options)
            validators = {}
        if parsed.error:
            return self._failed(feed, res, parsed.error, now)
        if parsed.warning:
            log.info("feed=%s event=feed_salvaged reason=%r", feed.url, parsed.warning)
        outcome = FeedOutcome(ok=True, status=res.status, changed=True,
                              entry_dates=tuple(e.published for e in parsed.entries if e.published),
                              hint_seconds=hint_from(res.headers, parsed.ttl, parsed.update_seconds, now),
                              moved_to=res.permanent_redirect)
        return FeedRead(FeedStatus.CHANGED, FeedUpdate(feed, outcome, {"title": parsed.title}, now), parsed,
                        validators)

    async def _expand_sitemaps(self, feed: FeedRow, index: ParsedFeed, options: RequestOptions) -> ParsedFeed:
        """The entries of a sitemap index's child sitemaps (breadth first, most recently modified
        first, at most MAX_SITEMAP_DEPTH levels and MAX_SITEMAP_FETCHES documents). Children are
        untrusted URLs: the private-address guard applies to them."""
        loop = asyncio.get_running_loop()
        entries: list[Entry] = []
        title, errors, fetched = index.title, [], 0
        level, seen = list(index.sitemaps), {feed.url}
        for _depth in range(MAX_SITEMAP_DEPTH):
            deeper: list[str] = []
            for url in level:
                if fetched >= MAX_SITEMAP_FETCHES or url in seen:
                    continue
                seen.add(url)
                fetched += 1
                res = await self.fetcher.fetch(url, accept="application/xml, text/xml;q=0.9, */*;q=0.5",
                                               options=options)
                if res.error:
                    errors.append(f"{display(url)}: {res.error}")
                    continue
                child = await loop.run_in_executor(self.executor, parse_feed, res.body, res.final_url,
                                                   res.headers.get("content-type"))
                if child.error:
                    errors.append(f"{display(url)}: {child.error}")
                entries.extend(child.entries)
                deeper.extend(child.sitemaps)
                title = title or child.title
            level = deeper
        if not entries and errors:
            return ParsedFeed("", (), error="sitemap index: no child sitemap could be read: " + "; ".join(errors[:3]))
        warning = f"sitemap index: {len(errors)} child sitemap(s) unreadable: {'; '.join(errors[:3])}" \
            if errors else None
        return ParsedFeed(title, tuple(entries), warning=warning, kind=FeedKind.SITEMAP_INDEX)


def select_entries(feed_url: str, entries: Sequence[Entry],
                   seen: dict[str, str | None]) -> tuple[list[Entry], list[Entry]]:
    """(entries never seen, newest first; seen entries whose "updated" date moved on), given the
    feed's ``seen`` entry keys with the updated date recorded for each."""
    unique: dict[str, Entry] = {}
    for e in entries:
        unique.setdefault(e.key, e)  # duplicate guids inside one feed: the first wins
    new = [e for k, e in unique.items() if k not in seen]
    # newest first, so a capped poll takes the most recent entries
    new.sort(key=lambda e: e.published.timestamp() if e.published else float("-inf"), reverse=True)
    refreshed = [e for k, e in unique.items()
                 if e.updated and e.link and e.updated.isoformat() > (seen.get(k) or "\uffff")]
    if len(refreshed) > max(MAX_REFRESH, len(unique) // 2):
        # most entries "updated" at once: a feed that stamps the time of each request,
        # not edited articles; refetching them all every poll would be impolite
        log.info("feed=%s event=updated_dates_ignored entries=%d", feed_url, len(refreshed))
        refreshed = []
    return new, refreshed


def feed_fields(upd: FeedUpdate, schedule: ScheduleSettings, own_interval: float | None, page_failed: bool,
                rng: random.Random) -> dict:
    """The feed row's new fields after a poll: what it learned (validators, title), its state and
    next poll time (ingest.run.schedule). A feed one of whose pages failed loses its validators,
    so the next poll reads it whole again and retries the page."""
    feed, outcome, extra = upd.feed, upd.outcome, dict(upd.fields)
    if upd.deferred_until is not None:  # no request was sent: the schedule and error count stand
        return {"next_poll": upd.deferred_until, "retry_after": upd.deferred_until}
    if page_failed:
        for key in ("etag", "last_modified", "content_hash"):
            extra.pop(key, None)
    state = FeedState(feed.interval, feed.consecutive_errors, feed.errors_since)
    fields = plan(state, outcome, with_floor(schedule, own_interval), upd.when, rng)
    fields["last_poll"] = upd.when
    if not outcome.ok:
        fields.update(last_error=outcome.error, last_error_at=upd.when, errors_since=feed.errors_since or upd.when)
    else:
        fields["errors_since"] = None
    return {**extra, **fields}
