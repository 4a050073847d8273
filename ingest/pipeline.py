"""One poll: feeds -> new entries -> pages -> text -> relevance -> store.

Data flows one way. Feeds stream in (MAX_FEEDS_IN_FLIGHT at a time); as
each feed's new entries are known, their pages are fetched (each link once,
whatever the number of feeds listing it) and handed to the worker processes
(ingest.worker) for extraction. As pages finish, a consumer gathers them in
chunks of CHUNK_PAGES: a chunk is scored against the seeds (the model
learning from the store's window plus the chunk), decided (ingest.decide)
and committed, each page in its own transaction, in the store's thread.
At most two chunks of pages are fetched but not yet committed: fetching
waits for decisions, so memory does not grow with the size of the poll.

A feed's validators (ETag, Last-Modified, body hash) are saved only after
its entries are recorded, so a crash can only cause a re-fetch, never a
missed entry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field

from .config import Config, FeedSettings
from .decide import Deferred, Outcome, Refresh, Skipped, effective_threshold, leaders, refresh, relevance
from .feedback import window_stream
from .feeds import Entry, FeedKind, ParsedFeed, parse_feed
from .fetch import NO_OPTIONS, ROBOTS_UNREACHABLE, Fetcher, FetchResult, HostMemory, RequestOptions
from .identity import identify
from .metrics import Metrics
from .notify import Alert
from .progress import ProgressHook
from .relevance import Score, Scored, Threshold, term_counts
from .schedule import FeedOutcome, FeedState, hint_from, plan, with_floor
from .store import MAX_PAGE_ATTEMPTS, Decision, FeedRow, NewArticle, PageDoc, Source, SqlStore, StoreThread
from .urls import display, host_of, normalize, redact_text, site_label
from .worker import Analysed, analyse, score_window

log = logging.getLogger("ingest")

MAX_REFRESH = 5  # more entries than this (and than half the feed) "updated" at once are not believed
HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "")
FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
               "application/xml;q=0.8, */*;q=0.5")
CHUNK_PAGES = 512  # pages decided and committed together
MAX_FEEDS_IN_FLIGHT = 256  # feeds being fetched and parsed at once (the rest wait their turn, as rows)
FEED_BACKLOG = 10  # pages a feed not yet read counts for in Poll.backlog
MAX_SITEMAP_DEPTH = 2  # an index of indexes of sitemaps, no deeper
MAX_SITEMAP_FETCHES = 10  # child sitemaps fetched per feed and poll (most recently modified first)


@dataclass
class PollSummary:
    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    entries_new: int = 0
    pages_fetched: int = 0
    page_errors: int = 0
    empty: int = 0
    blocked: int = 0  # robots.txt said no
    deferred: int = 0  # not fetched yet: the host asked for quiet (Retry-After) or robots.txt was unreadable
    kept: int = 0
    updated: int = 0  # articles whose text changed in place
    rejected: int = 0
    duplicates: int = 0
    threshold: float | None = None
    seconds: float = 0.0
    interrupted: str | None = None  # the signal that cut the poll short
    failures: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def add(self, other: PollSummary) -> None:
        """Count ``other`` (another pass of the same poll) in: every counter summed, failures joined."""
        for f in dataclasses.fields(self):
            if f.type == "int":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.threshold = other.threshold if other.threshold is not None else self.threshold
        self.interrupted = self.interrupted or other.interrupted
        self.failures += other.failures


def _by_host_round_robin(feeds: Sequence[FeedRow]) -> list[FeedRow]:
    """The feeds, one host after another (h1, h2, h3, h1, h2 ...): the feeds in flight at once spread
    over as many hosts as possible, so per-host limits do not throttle a window of one site's feeds."""
    from itertools import zip_longest

    groups: dict[str, list[FeedRow]] = {}
    for f in feeds:
        groups.setdefault(host_of(f.url), []).append(f)
    return [f for row in zip_longest(*groups.values()) for f in row if f is not None]


def request_options(feed: FeedSettings | None) -> RequestOptions:
    """A [[feeds]] table's request settings; its headers and cookie go to the feed's own host only."""
    if feed is None:
        return NO_OPTIONS
    headers = feed.headers + ((("Cookie", feed.cookie),) if feed.cookie else ())
    return RequestOptions(feed.user_agent, headers, host_of(feed.url), feed.proxy)


@dataclass
class _PageJob:
    key: str  # identity (normalised link): the pages row
    link: str  # as the feed gave it: what is fetched
    sources: list[Source]
    feed_ids: set[int]
    options: RequestOptions = NO_OPTIONS  # of the first feed that listed it
    task: asyncio.Future | None = None
    refresh: bool = False  # a known entry whose "updated" date moved: the article may have changed
    fetched: bool = False  # the request is done (extraction may still run)
    holds_room: bool = False  # holds one of the poll's places (two chunks' worth)
    decided: bool = False  # committed: its row exists; a feed listing it later records itself as a source


@dataclass
class _FeedUpdate:
    feed: FeedRow
    outcome: FeedOutcome
    fields: dict  # validators, title ... stored along with the schedule's fields
    when: float
    deferred_until: float | None = None  # not fetched: its host asked for quiet (not an error)


def _published(entry: Entry) -> str | None:
    return entry.published.isoformat() if entry.published else None


class Poll:
    """One pass over the given feeds (all active ones by default)."""

    def __init__(self, config: Config, store: SqlStore, seeds: Sequence[str], fetcher: Fetcher, executor: Executor,
                 *, clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 warned: set[str] | None = None, metrics: Metrics | None = None,
                 progress: ProgressHook | None = None, db: StoreThread | None = None,
                 hosts: frozenset[str] | None = None, chunk: int | None = None,
                 claimed: set[str] | None = None) -> None:
        self.metrics = metrics
        # waiting pages (deferred, queued) taken by a poll and not yet decided; the service's
        # overlapping polls share the set so each such page is fetched by one of them
        self.claimed = claimed if claimed is not None else set()
        self._claims: set[str] = set()
        self.progress = progress
        # a worker's poll (ingest.workers): the hosts it holds; a page elsewhere becomes a page job for
        # the worker holding its host. None: every host is ours (one process, SQLite)
        self.hosts = hosts
        self.config, self.store, self.seeds = config, store, list(seeds)
        # every store call of the poll runs in the store's thread (the loop never waits on the disk);
        # a poll given none makes its own and closes it at the end
        self._own_db = db is None
        self.db = db if db is not None else StoreThread()
        self.fetcher, self.executor, self.clock = fetcher, executor, clock
        self.rng = rng or random.Random()
        self.summary = PollSummary()
        self.jobs: dict[str, _PageJob] = {}
        self.updates: list[_FeedUpdate] = []
        self.retry_feeds: set[int] = set()  # feeds with a page to try again
        self.alerts: list[Alert] = []  # kept articles above [notify] instant_above
        self._feed_tasks: list[asyncio.Future] = []
        self._finished: asyncio.Queue[_PageJob | None] = asyncio.Queue()  # jobs done (None: a feed is done)
        self._feeds_left = 0  # feeds not finished (running or waiting to start)
        self._feeds_done = 0
        self._waiting_feeds: Iterator[FeedRow] = iter(())
        self._aborted = False
        self._pages_left = 0  # page jobs not yet taken by the consumer
        # a page takes a place before its request, gives it back once committed: fetching waits for the
        # decisions instead of piling bodies up in memory (at most 2 chunks held)
        self.chunk = chunk or CHUNK_PAGES  # pages decided and committed together
        self._room = asyncio.Semaphore(2 * self.chunk)
        self.threshold: Threshold | None = None
        self.warned = warned if warned is not None else set()  # warnings already logged (the service's polls share it)
        self.settings: dict[int, FeedSettings | None] = {}  # each feed's [[feeds]] table, by feed id (set in run)

    def backlog(self) -> int:
        """Work in the pipeline not yet at the decisions: pages being fetched or extracted, and the
        feeds still to read (each likely to bring pages). A worker starts another pass when low."""
        return self._pages_left + FEED_BACKLOG * self._feeds_left

    def _options(self, feed_id: int | None) -> RequestOptions:
        return request_options(self.settings.get(feed_id)) if feed_id is not None else NO_OPTIONS

    async def run(self, feeds: Sequence[FeedRow] | None = None) -> PollSummary:
        """Poll ``feeds`` (the pollable ones by default). Pages are decided and committed in chunks
        of CHUNK_PAGES as they finish, not all at the end: memory stays bounded by the chunk,
        whatever the number of feeds."""
        try:
            return await self._run(feeds)
        finally:
            self.claimed -= self._claims
            if self._own_db:
                self.db.close()

    async def _run(self, feeds: Sequence[FeedRow] | None) -> PollSummary:
        started = time.monotonic()
        if feeds is None:
            feeds = await self.db(self.store.pollable_feeds, self.clock())
        rows = await self.db(self.store.feeds, active_only=False)
        self.settings = {f.id: self.config.feed(f.config_url) for f in rows}
        self._feeds_left = len(feeds)
        deferred = await self.db(self.store.due_deferred, self.clock(), hosts=self.hosts)
        for key, link, sources in deferred:  # their host said "later": now is later
            if key not in self.jobs and key not in self.claimed:
                self.claimed.add(key)
                self._claims.add(key)
                self._start(_PageJob(key, link, sources, {s.feed_id for s in sources},
                                     self._options(sources[0].feed_id if sources else None)))
        if self.progress is not None:
            self.progress.start(len(feeds))
        self._feed_tasks = []
        self._waiting_feeds = iter(_by_host_round_robin(feeds))
        self._start_feeds()
        chunk: list[tuple[_PageJob, Analysed | Skipped | Deferred]] = []
        while self._feeds_left or self._pages_left:
            job = await self._finished.get()
            if job is not None:
                self._pages_left -= 1
                result = self._result(job)
                if result is not None:
                    chunk.append((job, result))
                elif job.holds_room:  # abandoned or crashed: its place is free now
                    job.holds_room = False
                    self._room.release()
            if len(chunk) >= self.chunk or (chunk and not self._feeds_left and not self._pages_left):
                await self._decide_chunk(chunk)
                for done_job, _ in chunk:
                    done_job.decided = True
                    done_job.sources = []  # in the store now; the job stays only as "this poll has it"
                    if done_job.holds_room:
                        done_job.holds_room = False
                        self._room.release()
                chunk = []
        for feed, ft in zip(feeds, self._feed_tasks, strict=False):
            if not ft.cancelled() and ft.exception() is not None:  # a bug, not a bad feed: log it
                log.error("feed=%s event=feed_crashed error=%r", feed.url, ft.exception())
        await self.db(self._finish)
        self.summary.seconds = round(time.monotonic() - started, 3)
        if self.metrics is not None:
            s, pages = self.summary, self.metrics.pages
            self.metrics.polls.inc()
            for outcome, n in (("kept", s.kept), ("rejected", s.rejected), ("duplicate", s.duplicates),
                               ("empty", s.empty), ("error", s.page_errors), ("blocked", s.blocked),
                               ("deferred", s.deferred), ("updated", s.updated)):
                pages.labels(outcome).inc(n)
        return self.summary

    def _finish(self) -> None:
        """In the store's thread: what the poll learned about each feed (after its entries are recorded)."""
        for upd in self.updates:
            self._save_feed(upd)
        self.store.expire_rejected_texts(self.clock() - self.config.relevance.keep_rejected)

    def _start_feeds(self) -> None:
        """Keep MAX_FEEDS_IN_FLIGHT feeds going: feeds stream into the poll as others finish, so a
        poll of 100,000 feeds holds a few hundred at a time, not all of them."""
        while len(self._feed_tasks) - self._feeds_done < MAX_FEEDS_IN_FLIGHT and not self._aborted:
            feed = next(self._waiting_feeds, None)
            if feed is None:
                return
            task = asyncio.ensure_future(self._poll_feed_counted(feed))
            task.add_done_callback(self._feed_finished)
            self._feed_tasks.append(task)

    def _feed_finished(self, _task: asyncio.Future) -> None:
        self._feeds_left -= 1
        self._feeds_done += 1
        self._start_feeds()
        self._finished.put_nowait(None)  # wake the consumer: it may be the last thing it waited for

    def _start(self, job: _PageJob) -> None:
        """Fetch and extract a page in its own task; the consumer in ``run`` takes it when done."""
        self.jobs[job.key] = job
        self._pages_left += 1
        job.task = asyncio.ensure_future(self._fetch_page(job))
        job.task.add_done_callback(functools.partial(self._page_finished, job))

    def _page_finished(self, job: _PageJob, _task: asyncio.Future) -> None:
        self._finished.put_nowait(job)

    def _result(self, job: _PageJob) -> Analysed | Skipped | Deferred | None:
        """A finished job's result; None when it was abandoned (abort) or crashed: fetched next time."""
        task, job.task = job.task, None  # the job stays (other feeds may list the page); its result goes
        assert task is not None
        if task.cancelled():
            self.retry_feeds |= job.feed_ids
            return None
        exc = task.exception()
        if exc is not None:
            self.retry_feeds |= job.feed_ids
            log.error("page=%s event=page_crashed error=%r", job.link, exc)
            return None
        return task.result()

    def abort(self) -> None:
        """Abandon unfinished requests; ``run`` then stores what is complete (pages already
        fetched finish their extraction, a matter of seconds)."""
        self._aborted = True
        never_started = sum(1 for _ in self._waiting_feeds)
        self._feeds_left -= never_started
        self._finished.put_nowait(None)
        for task in self._feed_tasks:
            task.cancel()
        for job in self.jobs.values():
            if job.task is not None and not job.fetched:
                job.task.cancel()

    def _save_feed(self, upd: _FeedUpdate) -> None:
        """Store what the poll learned about a feed, with its next poll time (ingest.schedule)."""
        feed, outcome, extra = upd.feed, upd.outcome, dict(upd.fields)
        if upd.deferred_until is not None:  # no request was sent: the schedule and error count stand
            self.store.update_feed(feed.id, next_poll=upd.deferred_until, retry_after=upd.deferred_until)
            return
        if feed.id in self.retry_feeds:  # a page failed: fetch the whole feed again next time
            for key in ("etag", "last_modified", "content_hash"):
                extra.pop(key, None)
        state = FeedState(feed.interval, feed.consecutive_errors, feed.errors_since)
        own = self.settings.get(feed.id)
        schedule = with_floor(self.config.schedule, own.poll_interval if own else None)
        fields = plan(state, outcome, schedule, upd.when, self.rng)
        fields["last_poll"] = upd.when
        if not outcome.ok:
            fields.update(last_error=outcome.error, last_error_at=upd.when,
                          errors_since=feed.errors_since or upd.when)
        else:
            fields["errors_since"] = None
        if fields.get("url") and fields["url"] != feed.url:
            log.warning("feed=%s event=feed_moved to=%s", feed.url, fields["url"])
        if fields["state"] in ("disabled", "failing") and fields["state"] != feed.state:
            log.warning("feed=%s event=feed_%s reason=%r", feed.url, fields["state"], fields["state_reason"])
        self.store.update_feed(feed.id, **{**extra, **fields})

    # -- phase 1: feeds and pages -----------------------------------------

    def _feed_failed(self, feed: FeedRow, res: FetchResult, reason: str, now: float) -> None:
        self.summary.feeds_failed += 1
        self.summary.failures.append({"feed": display(feed.url), "error": redact_text(reason)})
        log.warning("feed=%s event=feed_error status=%s reason=%r", feed.url, res.status, reason)
        quiet = self.fetcher.host_quiet_until(feed.url)
        outcome = FeedOutcome(ok=False, status=res.status, error=reason, retry_after=quiet if quiet > now else None)
        self.updates.append(_FeedUpdate(feed, outcome, {}, now))

    async def _poll_feed_counted(self, feed: FeedRow) -> None:
        try:
            await self._poll_feed(feed)
        finally:
            if self.progress is not None:
                self.progress.feed_done()

    async def _poll_feed(self, feed: FeedRow) -> None:
        res = await self.fetcher.fetch(feed.url, etag=feed.etag, last_modified=feed.last_modified,
                                       trusted=True, accept=FEED_ACCEPT, options=self._options(feed.id))
        now = self.clock()
        if self.metrics is not None and res.deferred_until is None:
            self.metrics.fetch_seconds.observe(res.elapsed)
            self.metrics.feed_requests.labels("304" if res.not_modified else "error" if res.error else "200").inc()
        if res.deferred_until is not None:
            log.info("feed=%s event=feed_deferred reason=%r", feed.url, res.error)
            self.updates.append(_FeedUpdate(feed, FeedOutcome(ok=False), {}, now, res.deferred_until))
            return
        if res.error:
            self._feed_failed(feed, res, res.error, now)
            return
        hint = hint_from(res.headers, None, None, now)
        if res.not_modified:
            self.summary.feeds_not_modified += 1
            log.info("feed=%s event=feed_not_modified", feed.url)
            self.updates.append(_FeedUpdate(feed, FeedOutcome(ok=True, status=304, hint_seconds=hint,
                                                              moved_to=res.permanent_redirect), {}, now))
            return
        body_hash = hashlib.sha256(res.body).hexdigest()
        validators = {"etag": res.headers.get("etag"), "last_modified": res.headers.get("last-modified"),
                      "content_hash": body_hash}
        if body_hash == feed.content_hash:  # validators broken or absent, body unchanged
            self.summary.feeds_not_modified += 1
            log.info("feed=%s event=feed_unchanged", feed.url)
            self.updates.append(_FeedUpdate(feed, FeedOutcome(ok=True, status=res.status, hint_seconds=hint,
                                                              moved_to=res.permanent_redirect), validators, now))
            return
        # feedparser is CPU work too (seconds for a feed of 20,000 entries): not on the event loop
        try:
            parsed = await asyncio.get_running_loop().run_in_executor(
                self.executor, parse_feed, res.body, res.final_url, res.headers.get("content-type"))
        except Exception as exc:  # a crashed worker: count it against this feed only
            self._feed_failed(feed, res, f"feed parser crashed: {exc!r}", now)
            return
        if parsed.kind is FeedKind.SITEMAP_INDEX:
            # its children change without it changing: read it (and them) every poll, no validators
            parsed = await self._expand_sitemaps(feed, parsed)
            validators = {}
        if parsed.error:
            self._feed_failed(feed, res, parsed.error, now)
            return
        if parsed.warning:
            log.info("feed=%s event=feed_salvaged reason=%r", feed.url, parsed.warning)
        self.summary.feeds_ok += 1
        entries, refreshed = await self.db(self._new_entries, feed, parsed.entries)
        limit = self.config.fetch.max_entries_per_poll
        capped = len(entries) > limit
        entries = entries[:limit]
        outcome = FeedOutcome(ok=True, status=res.status, changed=True,
                              entry_dates=tuple(e.published for e in parsed.entries if e.published),
                              hint_seconds=hint_from(res.headers, parsed.ttl, parsed.update_seconds, now),
                              moved_to=res.permanent_redirect)
        # when the poll could not take every new entry, keep the old validators so
        # the next poll gets the full feed again and continues
        extra = {"title": parsed.title, **({} if capped else validators)}
        self.updates.append(_FeedUpdate(feed, outcome, extra, now))
        self.summary.entries_new += len(entries)
        log.info("feed=%s event=feed_ok entries=%d new=%d%s", feed.url, len(parsed.entries), len(entries),
                 " capped=true" if capped else "")
        await self._follow(feed, [(e, False) for e in entries] + [(e, True) for e in refreshed[:limit]], now)

    async def _expand_sitemaps(self, feed: FeedRow, index: ParsedFeed) -> ParsedFeed:
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
                                               options=self._options(feed.id))
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

    def _new_entries(self, feed: FeedRow, entries: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
        """(entries never seen, newest first; seen entries whose "updated" date moved on)."""
        unique: dict[str, Entry] = {}
        for e in entries:
            unique.setdefault(e.key, e)  # duplicate guids inside one feed: the first wins
        seen = self.store.seen_entries(feed.id, list(unique))  # one query: seen keys and their dates
        new = [e for k, e in unique.items() if k not in seen]
        # newest first, so a capped poll takes the most recent entries
        new.sort(key=lambda e: e.published.timestamp() if e.published else float("-inf"), reverse=True)
        refreshed = [e for k, e in unique.items()
                     if e.updated and e.link and e.updated.isoformat() > (seen.get(k) or "\uffff")]
        if len(refreshed) > max(MAX_REFRESH, len(unique) // 2):
            # most entries "updated" at once: a feed that stamps the time of each request,
            # not edited articles; refetching them all every poll would be impolite
            log.info("feed=%s event=updated_dates_ignored entries=%d", feed.url, len(refreshed))
            refreshed = []
        return new, refreshed

    async def _follow(self, feed: FeedRow, items: list[tuple[Entry, bool]], now: float) -> None:
        """Start a page job for each entry whose page is new (or whose entry was updated: ``True``);
        record the others as seen. One store read for the feed's links, one write for the records."""
        keys = {normalize(e.link) for e, _ in items if e.link}
        known = await self.db(self.store.pages_by_urls,
                              [k for k in keys if k not in self.jobs or self.jobs[k].decided])
        records: list[tuple[Source, int | None, int | None]] = []  # (source, page id, article id)
        queued: list[tuple[str, str, list[Source]]] = []  # page jobs for other workers' hosts
        for entry, again in items:  # no await from here on: self.jobs cannot change under us
            source = Source(feed.id, entry.key, entry.link, entry.title, _published(entry),
                            entry.updated.isoformat() if entry.updated else None)
            if not entry.link:
                records.append((source, None, None))
                continue
            key = normalize(entry.link)
            job = self.jobs.get(key)
            if job is not None and not job.decided:  # in flight in this poll: one fetch, every source
                if feed.id not in job.feed_ids:
                    job.sources.append(source)
                    job.feed_ids.add(feed.id)
                continue
            page = known.get(key)
            if job is not None and page is None:
                continue  # decided after the lookup: the entry stays unseen, the next poll records it
            if page is not None and page["outcome"] in ("deferred", "queued"):
                if self.hosts is not None:  # waiting for its host's worker: it records this source too
                    queued.append((key, entry.link, [source]))
                continue  # queued until its host allows it (Store.due_deferred); the entry stays unseen till then
            if page is not None and (job is not None or not again) and \
                    (job is not None or page["outcome"] != "error" or page["attempts"] >= MAX_PAGE_ATTEMPTS):
                # fetched already (in this poll, or an earlier one for another feed): record where else it appeared
                records.append((source, page["id"], page["article_id"]))
                if page["article_id"] is not None and job is None:
                    self.summary.duplicates += 1
                continue
            if self.hosts is not None and host_of(key) not in self.hosts:
                queued.append((key, entry.link, [source]))  # another worker's host: a page job
                continue
            self._start(_PageJob(key, entry.link, [source], {feed.id}, self._options(feed.id), refresh=again))
        if queued:
            await self.db(self.store.queue_pages, queued, now)
        if records:
            await self.db(self._record_seen, records, now)

    def _record_seen(self, records: list[tuple[Source, int | None, int | None]], now: float) -> None:
        for source, page_id, article_id in records:
            self.store.record_entries([source], page_id, now, article_id)

    async def _fetch_page(self, job: _PageJob) -> Analysed | Skipped | Deferred:
        await self._room.acquire()
        job.holds_room = True
        link = job.link
        if self.config.fetch.robots:
            reason = await self.fetcher.robots_reason(link, job.options)
            if reason == ROBOTS_UNREACHABLE:  # not the page's fault: no attempt counted, asked again soon
                return Deferred(self.fetcher.robots_retry_at(link), f"not fetched: {reason}")
            if reason:
                return Skipped(Outcome.BLOCKED, f"not fetched: {reason}")
        res = await self.fetcher.fetch(link, options=job.options)
        if self.metrics is not None and res.deferred_until is None:
            self.metrics.fetch_seconds.observe(res.elapsed)
        job.fetched = True  # from here on only extraction is left: an abort lets it finish
        if res.deferred_until is not None:
            return Deferred(res.deferred_until, res.error or "deferred")
        if res.status in (429, 503) and (quiet := self.fetcher.host_quiet_until(res.final_url)) > self.clock():
            # "later", with a time (Retry-After): not the page's failure; fetched once the time has come
            return Deferred(quiet, f"HTTP {res.status} with Retry-After")
        if res.error:
            return Skipped(Outcome.ERROR, res.error or f"HTTP {res.status}", res.final_url)
        self.summary.pages_fetched += 1
        if self.progress is not None:
            self.progress.page_fetched()
        ctype = res.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in HTML_TYPES or res.body[:5] == b"%PDF-":
            return Skipped(Outcome.EMPTY, f"not an HTML page ({ctype or 'no content type'})", res.final_url)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            analysed = await loop.run_in_executor(self.executor, analyse, res.body, res.final_url,
                                                  res.headers.get("content-type", ""))
        except Exception as exc:  # a crashed worker must not end the poll
            return Skipped(Outcome.ERROR, f"extraction failed: {exc!r}", res.final_url)
        finally:
            if self.metrics is not None:
                self.metrics.extract_seconds.observe(time.monotonic() - started)
        return analysed if analysed is not None else Skipped(Outcome.EMPTY, "no extractable text", res.final_url)

    # -- phase 2: decide and store ----------------------------------------

    async def _decide_chunk(self, chunk: list[tuple[_PageJob, Analysed | Skipped | Deferred]]) -> None:
        """Score a chunk's pages (the model learning from the store's window plus the chunk), then
        decide and commit each, without awaiting in between (overlapping polls never interleave
        their writes)."""
        scored = await self._score([r for _, r in chunk if isinstance(r, Analysed)])
        await self.db(self._store_pages, chunk, scored)

    async def _score(self, analysed: list[Analysed]) -> dict[int, Score]:
        """Scores of the extracted pages (by id of the Analysed), the model learning from the store's
        window plus these pages; in a worker process, so the event loop stays free."""
        self.threshold = None
        if not analysed:
            return {}
        _, window, labels = await self.db(window_stream, self.store)
        rel = self.config.relevance
        try:
            res = await asyncio.get_running_loop().run_in_executor(
                self.executor, score_window, self.seeds, window, [a.counts for a in analysed], labels,
                rel.language, rel.threshold)
        except Exception as exc:  # a crashed worker: score here rather than lose the poll
            log.error("event=scoring_worker_failed error=%r", exc)
            res = score_window(self.seeds, window, [a.counts for a in analysed], labels, rel.language,
                               rel.threshold)
        for w in res.threshold.warnings:
            if w not in self.warned:
                self.warned.add(w)
                log.warning("event=seeds_warning reason=%r", w)
        self.threshold = res.threshold
        return {id(a): s for a, s in zip(analysed, res.scores, strict=True)}

    def _store_pages(self, done: list[tuple[_PageJob, Analysed | Skipped | Deferred]],
                     scored: dict[int, Score]) -> None:
        store, now = self.store, self.clock()
        batch: list[tuple[_PageJob, Analysed]] = []
        for job, result in done:
            if isinstance(result, Deferred):
                if store.defer_page(job.key, job.link, job.sources, now, result.until, result.reason):
                    self.summary.deferred += 1
                    log.info("page=%s event=page_deferred until=%s reason=%r", job.link,
                             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.until)), result.reason)
                else:
                    self.summary.page_errors += 1
                    log.warning("page=%s event=page_given_up reason=%r", job.link, result.reason)
                continue
            if isinstance(result, Skipped):
                outcome = result.outcome
                self.summary.page_errors += outcome is Outcome.ERROR
                self.summary.empty += outcome is Outcome.EMPTY
                self.summary.blocked += outcome is Outcome.BLOCKED
                log.info("page=%s event=page_%s reason=%r", job.link, outcome.value, result.reason)
                if outcome is Outcome.ERROR:
                    self.retry_feeds |= job.feed_ids
                store.record_page(job.key, job.sources, now, outcome=outcome.value, reason=result.reason,
                                  final_url=result.final_url)
                continue
            if job.refresh:
                known = store.page(job.key)
                if known is not None and known["article_id"] is not None and known["outcome"] == "kept" and \
                        self._refresh(job, result, known["article_id"], now):
                    continue
            batch.append((job, result))
        if not batch:
            return
        assert self.threshold is not None
        threshold = self.threshold
        self.summary.threshold = threshold.value
        # exact copies inside the chunk: one leads, the others follow it (URL evidence alone merges nothing)
        follows = leaders([a.text_hash for _, a in batch])
        article_ids: dict[int, int | None] = {}
        for i, ((job, a), lead) in enumerate(zip(batch, follows, strict=True)):
            if lead is None:
                article_ids[i] = self._decide(job, a, scored[id(a)], threshold, now)
                continue
            self.summary.duplicates += 1
            store.record_page(job.key, job.sources, now, outcome=Outcome.DUPLICATE.value, final_url=a.page.url,
                              article_id=article_ids.get(lead), reason="same article as another page of this poll")

    def _refresh(self, job: _PageJob, a: Analysed, article_id: int, now: float) -> bool:
        """A known article fetched again because its entry was updated. An edit of the same story
        replaces the text in place; another story (the page now says something else) is not an
        update: returns False and the page is decided as a new one."""
        stored = self.store.article(article_id)
        same = stored["text_hash"] == a.text_hash
        kind = refresh(stored["text_hash"], None if same else self.store.article_text(article_id), a.text_hash,
                       a.text)
        if kind is Refresh.SAME:
            self.store.record_entries(job.sources, None, now, article_id)  # remember the new updated date
            return True
        if kind is Refresh.OTHER_STORY:
            log.info("page=%s event=update_is_another_story article=%d", job.link, article_id)
            return False
        path = self.store.update_article(article_id, a.title, a.text, a.text_hash, a.minhash, job.key, job.sources,
                                         now)
        self.summary.updated += 1
        log.info("page=%s event=updated path=%s", job.link, path)
        return True

    def _decide(self, job: _PageJob, a: Analysed, score: Score, threshold: Threshold, now: float) -> int | None:
        # other workers may be deciding the same story right now: the check and the insert hold its
        # identities (URLs, text hash, LSH bands) so only one of them keeps it (one writer: no-op)
        with self.store.exclusive(_story_keys(a)):
            return self._decide_held(job, a, score, threshold, now)

    def _decide_held(self, job: _PageJob, a: Analysed, score: Score, threshold: Threshold, now: float) -> int | None:
        title, text = a.title, a.text
        # the same story as a stored article (same text, a declared URL whose text agrees, a near copy)?
        ident = identify(self.store, text, a.text_hash, a.page.canonical_url, normalize(a.page.url), a.minhash)
        if ident.article_id is not None:
            self.summary.duplicates += 1
            self.store.record_page(job.key, job.sources, now, outcome="duplicate", final_url=a.page.url,
                                   article_id=ident.article_id, score=score.score, reason=ident.reason)
            log.info("page=%s event=duplicate article=%d reason=%r", job.link, ident.article_id, ident.reason)
            return ident.article_id
        published = a.page.date or next((s.published for s in job.sources if s.published), None)
        value = effective_threshold(threshold.value, [own.threshold if (own := self.settings.get(fid)) else None
                                                      for fid in job.feed_ids])
        if value != threshold.value:
            threshold = dataclasses.replace(threshold, value=value)
        if relevance(score.score, threshold.value, ident.article_id) is Outcome.REJECTED:
            self.summary.rejected += 1
            doc = PageDoc(url=a.page.url, canonical_url=a.page.canonical_url, title=title, text=text,
                          author=a.page.author, site=a.page.site, language=a.page.language, published=published,
                          text_hash=a.text_hash)
            self.store.record_page(job.key, job.sources, now, outcome="rejected", final_url=a.page.url,
                                   score=score.score, counts=a.counts, doc=doc,
                                   decision=Decision(threshold.value, score.terms),
                                   reason=f"score {score.score:.3f} < threshold {threshold.value:.3f}")
            log.debug("page=%s event=rejected score=%.3f threshold=%.3f terms=%s", job.link, score.score,
                      threshold.value, ",".join(score.terms[:5]))
            return None
        art = NewArticle(url=a.page.url, canonical_url=ident.key, title=title, author=a.page.author,
                         site=a.page.site, language=a.page.language, published=published,
                         text=text, text_hash=a.text_hash, score=score.score, threshold=threshold.value,
                         terms=score.terms, minhash=a.minhash)
        aid, path = self.store.add_article(art, job.key, job.sources, now, a.page.url, counts=a.counts)
        self.summary.kept += 1
        if self.progress is not None:
            self.progress.kept()
        above = self.config.notify.instant_above
        if above is not None and score.score > above:
            self.alerts.append(Alert(title, display(a.page.url), site_label(a.page.url),
                                     score.score, tuple(score.terms)))
        log.info("page=%s event=kept score=%.3f threshold=%.3f path=%s terms=%s", job.link, score.score,
                 threshold.value, path, ",".join(score.terms[:5]))
        return aid


def _story_keys(a: Analysed) -> list[str]:
    """What identifies a page's story for the near-duplicate check: URLs, text hash, LSH bands."""
    from .dedup import band_keys

    keys = [f"url:{normalize(a.page.url)}", f"text:{a.text_hash}"]
    if a.page.canonical_url:
        keys.append(f"url:{normalize(a.page.canonical_url)}")
    if a.minhash is not None:
        keys += [f"band:{k}" for k in band_keys(a.minhash)]
    return keys


async def recall_hosts(db: StoreThread, store: SqlStore, fetcher: Fetcher, now: float,
                       hosts: frozenset[str] | None = None) -> None:
    """Give the fetcher what earlier runs (and other workers) learned about hosts (Retry-After
    windows, robots.txt); with ``hosts``, about those only."""
    quiet, robots = await db(store.host_memory, now, hosts)
    fetcher.recall(HostMemory(quiet, robots))


async def remember_hosts(db: StoreThread, store: SqlStore, fetcher: Fetcher, now: float) -> None:
    """Keep what the fetcher learned about hosts for later runs."""
    memory = fetcher.remember()
    if memory.quiet_until or memory.robots:
        await db(store.save_host_memory, memory.quiet_until, memory.robots, now)


def score_texts(config: Config, store: SqlStore, seeds: Sequence[str], texts: Sequence[str]) -> Scored:
    """Score texts as ``poll`` would if they arrived in one poll on this store."""
    _, window, labels = window_stream(store)
    return score_window(seeds, window, [term_counts(t) for t in texts], labels, config.relevance.language,
                        config.relevance.threshold)
