"""One poll: feeds -> new entries -> pages -> text -> relevance -> store.

Data flows one way. Feeds stream in (MAX_FEEDS_IN_FLIGHT at a time); as
each feed's new entries are known, their pages are fetched (each link once,
whatever the number of feeds listing it) and handed to the worker processes
(ingest.run.executor) for extraction. As pages finish, a consumer gathers them in
chunks of CHUNK_PAGES: a chunk is scored against the seeds (the process's
model, learned from the store's window: ingest.run.model_keeper), decided
(ingest.judge.decide) and committed, each page in its own transaction, in the
store's thread.
At most two chunks of pages are fetched but not yet committed: fetching
waits for decisions, so memory does not grow with the size of the poll.

A feed's validators (ETag, Last-Modified, body hash) are saved only after
its entries are recorded, so a crash can only cause a re-fetch, never a
missed entry.

The stages, each with typed inputs and outputs: reading a feed
(ingest.run.feed_read), fetching a page (ingest.run.page_fetch), deciding a
chunk (ingest.run.chunk). This module streams work between them.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from ingest.config import Config, FeedSettings
from ingest.run.archiving import archive_exchanges
from ingest.run.chunk import Alert, ChunkDecider
from ingest.run.feed_read import FeedRead, FeedReader, FeedStatus, FeedUpdate, feed_fields, select_entries
from ingest.run.model_keeper import ModelKeeper
from ingest.run.page_fetch import PageFetcher, PageJob, PageResult
from ingest.run.progress import ProgressHook
from ingest.run.summary import PollSummary
from ingest.sources.feeds import Entry
from ingest.sources.fetch import NO_OPTIONS, Fetcher, HostMemory, RequestOptions
from ingest.sources.urls import display, host_of, normalize, redact_text
from ingest.store import MAX_PAGE_ATTEMPTS, FeedRow, Source, SqlStore, StoreThread

if TYPE_CHECKING:
    from ingest.run.metrics import Metrics  # the service's, made with its web view

log = logging.getLogger("ingest")

CHUNK_PAGES = 512  # pages decided and committed together
MAX_FEEDS_IN_FLIGHT = 256  # feeds being fetched and parsed at once (the rest wait their turn, as rows)
FEED_BACKLOG = 10  # pages a feed not yet read counts for in Poll.backlog


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


def _published(entry: Entry) -> str | None:
    return entry.published.isoformat() if entry.published else None


class Poll:
    """One pass over the given feeds (all active ones by default)."""

    def __init__(self, config: Config, store: SqlStore, seeds: Sequence[str], fetcher: Fetcher, executor: Executor,
                 *, clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 warned: set[str] | None = None, metrics: Metrics | None = None,
                 progress: ProgressHook | None = None, db: StoreThread | None = None,
                 hosts: frozenset[str] | None = None, chunk: int | None = None,
                 claimed: set[str] | None = None, model: ModelKeeper | None = None) -> None:
        self.metrics = metrics
        # waiting pages (deferred, queued) taken by a poll and not yet decided; the service's
        # overlapping polls share the set so each such page is fetched by one of them
        self.claimed = claimed if claimed is not None else set()
        self._claims: set[str] = set()
        self.progress = progress
        # a worker's poll (ingest.run.workers): the hosts it holds; a page elsewhere becomes a page job for
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
        self.jobs: dict[str, PageJob] = {}  # pages of this poll not yet committed, by key
        self._decided: set[str] = set()  # keys of the pages this poll committed (their jobs are gone)
        self.updates: list[FeedUpdate] = []
        self.retry_feeds: set[int] = set()  # feeds with a page to try again
        self.alerts: list[Alert] = []  # kept articles above [notify] instant_above
        self._feed_tasks: set[asyncio.Future] = set()  # running: a finished task (and its state) is let go
        self._finished: asyncio.Queue[PageJob | None] = asyncio.Queue()  # jobs done (None: a feed is done)
        self._feeds_left = 0  # feeds not finished (running or waiting to start)
        self._waiting_feeds: Iterator[FeedRow] = iter(())
        self._aborted = False
        self._pages_left = 0  # page jobs not yet taken by the consumer
        self._extracting = 0  # pages fetched, not yet extracted
        # a page takes a place before its request, gives it back once committed: fetching waits for the
        # decisions instead of piling bodies up in memory (at most 2 chunks held)
        self.chunk = chunk or CHUNK_PAGES  # pages decided and committed together
        self._room = 2 * self.chunk
        # page jobs waiting for a place, as plain records: a task (and its coroutine) is made only when
        # the job gets a place, not for each of a big first poll's 10,000 pages at once
        self._waiting_pages: collections.deque[PageJob] = collections.deque()
        self.warned = warned if warned is not None else set()  # warnings already logged (the service's polls share it)
        self.settings: dict[int, FeedSettings | None] = {}  # each feed's [[feeds]] table, by feed id (set in run)
        archive = config.archive
        self.feeds = FeedReader(fetcher, executor, clock, metrics, archive=(
            (lambda ex: archive_exchanges(self.db, self.store, archive.max_file_size, ex))
            if archive.enabled and archive.feeds else None))
        self.pages = PageFetcher(fetcher, executor, clock, robots=config.fetch.robots, metrics=metrics,
                                 on_fetched=self._page_fetched, record=config.archive.enabled)
        # the model outlives the poll when the caller keeps one (the service, a worker): learned again
        # only when the window, the verdicts or the seeds changed, not per poll or per chunk
        self.model = model or ModelKeeper(executor, clock=clock)
        self.decider = ChunkDecider(config, store, seeds, self.model, self.db, clock=clock, settings=self.settings,
                                    warned=self.warned, progress=progress)

    def backlog(self) -> int:
        """Work in the pipeline not yet at the decisions: pages being fetched or extracted, and the
        feeds still to read (each likely to bring pages)."""
        return self._pages_left + FEED_BACKLOG * self._feeds_left

    def extracting(self) -> int:
        """Pages fetched and waiting for (or in) the extraction processes: the work ready for the CPU.
        Pages waiting for their host's turn are not in it: politeness is no reason to take fewer hosts."""
        return self._extracting

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
        self.settings.update({f.id: self.config.feed(f.config_url) for f in rows})
        self._feeds_left = len(feeds)
        deferred = await self.db(self.store.due_deferred, self.clock(), hosts=self.hosts)
        for key, link, sources in deferred:  # their host said "later": now is later
            if key not in self.jobs and key not in self.claimed:
                self.claimed.add(key)
                self._claims.add(key)
                self._start(PageJob(key, link, sources, {s.feed_id for s in sources},
                                     self._options(sources[0].feed_id if sources else None)))
        if self.progress is not None:
            self.progress.start(len(feeds))
        self._waiting_feeds = iter(_by_host_round_robin(feeds))
        self._start_feeds()
        chunk: list[tuple[PageJob, PageResult]] = []
        while self._feeds_left or self._pages_left:
            job = await self._finished.get()
            if job is not None:
                self._pages_left -= 1
                result = self._result(job)
                if result is not None:
                    chunk.append((job, result))
                elif job.holds_room:  # abandoned or crashed: its place is free now
                    self._free_room(job)
            if len(chunk) >= self.chunk or (chunk and not self._feeds_left and not self._pages_left):
                decided = await self.decider.decide(chunk)
                self.summary.add(decided.summary)
                self.retry_feeds |= decided.retry_feeds
                self.alerts += decided.alerts
                for done_job, _ in chunk:
                    self._decided.add(done_job.key)  # in the store now: "this poll has it" is all that stays
                    self.jobs.pop(done_job.key, None)
                    if done_job.holds_room:
                        self._free_room(done_job)
                chunk = []
        if not self._aborted:
            self.summary.add(await self.decider.settle())
        await self.db(self._finish)
        self.summary.seconds = round(time.monotonic() - started, 3)
        if self.model.fitted is not None:  # said once: what the model as it is now says, not each model's
            self.summary.warnings = list(self.model.fitted.model.threshold.warnings)
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
        if self.config.archive.enabled:
            self.store.prune_rejected_archive(self.clock() - self.config.archive.keep_rejected)

    def _start_feeds(self) -> None:
        """Keep MAX_FEEDS_IN_FLIGHT feeds going: feeds stream into the poll as others finish, so a
        poll of 100,000 feeds holds a few hundred at a time, not all of them."""
        while len(self._feed_tasks) < MAX_FEEDS_IN_FLIGHT and not self._aborted:
            feed = next(self._waiting_feeds, None)
            if feed is None:
                return
            task = asyncio.ensure_future(self._poll_feed_counted(feed))
            task.add_done_callback(functools.partial(self._feed_finished, feed))
            self._feed_tasks.add(task)

    def _feed_finished(self, feed: FeedRow, task: asyncio.Future) -> None:
        self._feed_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # a bug, not a bad feed: log it
            log.error("feed=%s event=feed_crashed error=%r", feed.url, task.exception())
        self._feeds_left -= 1
        self._start_feeds()
        self._finished.put_nowait(None)  # wake the consumer: it may be the last thing it waited for

    def _start(self, job: PageJob) -> None:
        """Fetch and extract a page in its own task once it has a place (at most two chunks of
        pages are between their request and their commit); the consumer in ``run`` takes it when done."""
        self.jobs[job.key] = job
        self._pages_left += 1
        self._waiting_pages.append(job)
        self._start_pages()

    def _start_pages(self) -> None:
        while self._room > 0 and self._waiting_pages:
            job = self._waiting_pages.popleft()
            self._room -= 1
            job.holds_room = True
            job.task = asyncio.ensure_future(self.pages.fetch(job))
            job.task.add_done_callback(functools.partial(self._page_finished, job))

    def _free_room(self, job: PageJob) -> None:
        job.holds_room = False
        self._room += 1
        self._start_pages()

    def _page_finished(self, job: PageJob, _task: asyncio.Future) -> None:
        if job.extracting:
            job.extracting = False
            self._extracting -= 1
        self._finished.put_nowait(job)

    def _page_fetched(self, job: PageJob) -> None:
        job.extracting = True
        self._extracting += 1
        self.summary.pages_fetched += 1
        if self.progress is not None:
            self.progress.page_fetched()

    def _result(self, job: PageJob) -> PageResult | None:
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
        while self._waiting_pages:  # never started: abandoned like the cancelled ones (fetched next time)
            job = self._waiting_pages.popleft()
            job.task = asyncio.get_running_loop().create_future()
            job.task.cancel()
            self._finished.put_nowait(job)

    def _save_feed(self, upd: FeedUpdate) -> None:
        """Store what the poll learned about a feed, with its next poll time (ingest.run.schedule)."""
        feed, own = upd.feed, self.settings.get(upd.feed.id)
        fields = feed_fields(upd, self.config.schedule, own.poll_interval if own else None,
                             feed.id in self.retry_feeds, self.rng)
        if fields.get("url") and fields["url"] != feed.url:
            log.warning("feed=%s event=feed_moved to=%s", feed.url, fields["url"])
        state = fields.get("state")
        if state in ("disabled", "failing") and state != feed.state:
            log.warning("feed=%s event=feed_%s reason=%r", feed.url, state, fields["state_reason"])
        self.store.update_feed(feed.id, **fields)

    async def _poll_feed_counted(self, feed: FeedRow) -> None:
        try:
            await self._poll_feed(feed)
        finally:
            if self.progress is not None:
                self.progress.feed_done()

    async def _poll_feed(self, feed: FeedRow) -> None:
        read = await self.feeds.read(feed, self._options(feed.id))
        if read.status is FeedStatus.FAILED:
            self.summary.feeds_failed += 1
            self.summary.failures.append({"feed": display(feed.url), "error": redact_text(read.error or "")})
        elif read.status is FeedStatus.NOT_MODIFIED:
            self.summary.feeds_not_modified += 1
        if read.status is not FeedStatus.CHANGED:
            self.updates.append(read.update)
            return
        await self._take_entries(read)

    async def _take_entries(self, read: FeedRead) -> None:
        """A changed feed: its new (and updated) entries become page jobs, at most
        max_entries_per_poll; the feed's update is saved at the end of the poll."""
        feed, parsed, upd = read.update.feed, read.parsed, read.update
        assert parsed is not None
        self.summary.feeds_ok += 1
        entries, refreshed = await self.db(self._new_entries, feed, parsed.entries)
        limit = self.config.fetch.max_entries_per_poll
        capped = len(entries) > limit
        entries = entries[:limit]
        # when the poll could not take every new entry, keep the old validators so
        # the next poll gets the full feed again and continues
        if not capped:
            upd.fields.update(read.validators)
        self.updates.append(upd)
        self.summary.entries_new += len(entries)
        log.info("feed=%s event=feed_ok entries=%d new=%d%s", feed.url, len(parsed.entries), len(entries),
                 " capped=true" if capped else "")
        await self._follow(feed, [(e, False) for e in entries] + [(e, True) for e in refreshed[:limit]], upd.when)

    def _new_entries(self, feed: FeedRow, entries: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
        """In the store's thread: (entries never seen, newest first; seen entries updated since)."""
        keys = list(dict.fromkeys(e.key for e in entries))
        return select_entries(feed.url, entries, self.store.seen_entries(feed.id, keys))

    async def _follow(self, feed: FeedRow, items: list[tuple[Entry, bool]], now: float) -> None:
        """Start a page job for each entry whose page is new (or whose entry was updated: ``True``);
        record the others as seen. One store read for the feed's links, one write for the records."""
        keys = {normalize(e.link) for e, _ in items if e.link}
        known = await self.db(self.store.pages_by_urls,
                              [k for k in keys if k not in self.jobs])
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
            if job is not None:  # in flight in this poll: one fetch, every source
                if feed.id not in job.feed_ids:
                    job.sources.append(source)
                    job.feed_ids.add(feed.id)
                continue
            page = known.get(key)
            here = key in self._decided  # fetched and committed by this poll
            if here and page is None:
                continue  # decided after the lookup: the entry stays unseen, the next poll records it
            if page is not None and page["outcome"] in ("deferred", "queued"):
                if self.hosts is not None:  # waiting for its host's worker: it records this source too
                    queued.append((key, entry.link, [source]))
                continue  # queued until its host allows it (Store.due_deferred); the entry stays unseen till then
            if page is not None and (here or not again) and \
                    (here or page["outcome"] != "error" or page["attempts"] >= MAX_PAGE_ATTEMPTS):
                # fetched already (in this poll, or an earlier one for another feed): record where else it appeared
                records.append((source, page["id"], page["article_id"]))
                if page["article_id"] is not None and not here:
                    self.summary.duplicates += 1
                continue
            if self.hosts is not None and host_of(key) not in self.hosts:
                queued.append((key, entry.link, [source]))  # another worker's host: a page job
                continue
            self._start(PageJob(key, entry.link, [source], {feed.id}, self._options(feed.id), refresh=again))
        if queued:
            await self.db(self.store.queue_pages, queued, now)
        if records:
            await self.db(self._record_seen, records, now)

    def _record_seen(self, records: list[tuple[Source, int | None, int | None]], now: float) -> None:
        for source, page_id, article_id in records:
            self.store.record_entries([source], page_id, now, article_id)


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
