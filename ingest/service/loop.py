"""The long-running service behind ``ingest run``.

APScheduler 3 (AsyncIOScheduler) drives two jobs on one event loop:

* ``poll``: a one-shot job re-armed after every poll for the earliest
  ``next_poll`` of any feed (per-feed times live in ingest.db, so a restart
  continues where it stopped); it polls the feeds that are due, as one batch;
* ``digest``: on the ``[schedule] digest`` cron;
* ``feedback``: every few seconds, apply the verdicts ``ingest mark`` queued
  (the corpus folder follows them), then re-decide the recent pages with the
  model learned again, both ways (ingest.service.teaching); the same when the
  seed files change or ``ingest rescore --apply`` asks.

Signals: SIGTERM/SIGINT stop taking work, give the running poll ``shutdown_timeout`` to finish, then
abandon its unfinished requests and commit what is complete, and exit 0; a second signal exits at
once (every commit is a transaction and corpus files are renamed into place, so the store stays
consistent). SIGHUP re-reads the config and seeds and applies all of it but [paths] store (feeds
added or removed take effect, unchanged feeds keep their state; [fetch] settings apply to the next
polls; the digest cron is re-armed; changed seeds rescore); the log names the keys changed. A
changed config file (``ingest feeds add``, an editor) is re-read the same way within seconds,
without a signal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from ingest.config import Config, ConfigError, load_config
from ingest.run.chunk import Alert
from ingest.run.executor import IDLE_POOL, kill_workers, make_executor
from ingest.run.memory import release_freed_memory
from ingest.run.model_keeper import ModelKeeper
from ingest.run.poll import Poll, recall_hosts, remember_hosts
from ingest.run.schedule import FeedOutcome, FeedState, backoff, last_fire, plan, sync_store
from ingest.run.workers import Worker
from ingest.service.backfill_job import ServiceBackfill
from ingest.service.teaching import Teaching
from ingest.service.watch import RESTART_KEYS, changed_keys, file_mark, seeds_mark
from ingest.sources.fetch import Fetcher
from ingest.sources.limits import KEEPALIVE
from ingest.store import FeedRow, SqlStore, StoreThread, open_store
from ingest.text.seeds import SeedError, load_seeds

if TYPE_CHECKING:
    import uvicorn

    from ingest.run.metrics import Metrics

log = logging.getLogger("ingest")

IDLE_RECHECK = 3600.0  # seconds between checks when no feed has a next poll time
FEEDBACK_EVERY = 3.0  # seconds between looks for queued verdicts and changed seeds
CORPUS_SYNC_EVERY = 300.0  # seconds between writes of the corpus folder from PostgreSQL
SIGNAL_ECHO = 0.2  # a second stop signal sooner than this is the first one delivered twice


class Service:
    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.seeds = [s.text for s in load_seeds(config.paths.seeds)]
        self.seeds_mark = seeds_mark(config.paths.seeds)
        self.config_mark = file_mark(config.path)
        self.warned: set[str] = set()  # model warnings logged once, not at every poll
        # the store first: a second service (or `ingest poll`) holding it is the error to report
        self.store: SqlStore = open_store(config)
        self.executor: Executor = make_executor(config.worker.processes or None, language=config.relevance.language,
                                                idle=IDLE_POOL)  # no processes between polls
        self.fetcher: Fetcher = Fetcher(config.fetch, clock=clock)
        self.stopping = asyncio.Event()
        self.db = StoreThread()  # while the loop runs, every store call goes through this thread
        self.teaching = Teaching(self.db, lambda: self.store, self.executor, lambda: (self.config, self.seeds),
                                 clock, self.stopping)
        self.model = ModelKeeper(self.executor, clock=clock)  # the relevance model, for every poll
        self.reader: SqlStore | None = None  # the web view's read-only connection
        self.scheduler: AsyncIOScheduler | None = None
        self.running: dict[asyncio.Future, Poll] = {}  # polls in progress
        self.finishing: set[int] = set()  # ids of running polls past their work (saving, re-arming)
        self.in_flight: set[int] = set()  # ids of the feeds they cover
        self.claimed_pages: set[str] = set()  # waiting pages (deferred) a running poll has taken
        self.stop_signalled = 0.0
        self.rng = random.Random()
        self.metrics: Metrics | None = None  # with the web view, its only reader (/metrics)
        self.web: uvicorn.Server | None = None  # the web view's server, when [web] listen is set
        self.web_task: asyncio.Future | None = None
        self.web_url = ""  # where the web view answers, once it does
        self.worker: Worker | None = None  # on PostgreSQL: this process's share of the work (ingest.run.workers)
        self.poll_failures = 0  # polls in a row that crashed (a store that cannot be written, a bug)
        self.hold_until = 0.0  # no poll starts before this after a crash: back off, never spin
        self.poll_at = float("inf")  # when the next poll job runs (the backfill waits from then on)
        self.backfill = ServiceBackfill(lambda: (self.config, self.seeds, self.fetcher), self.store, self.executor,
                                        self.db, self.model, self._quiet, self.stopping, clock, self.rng)

    # -- lifecycle ----------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        try:
            if self.store.backend == "postgresql":
                from ingest.store.postgres import PgStore

                assert isinstance(self.store, PgStore)
                self.worker = Worker(self.config, self.store, self.seeds, self.fetcher, self.executor, self.db,
                                     clock=self.clock, rng=self.rng, warned=self.warned, metrics=self.metrics,
                                     send_alerts=self._send_alerts)
                feeds = len(await self.db(self.store.feeds))
                if not feeds:
                    log.warning("event=no_feeds store=postgresql hint='ingest feeds sync loads config.toml's feeds "
                                "into the database'")
            else:
                await self.db(self._sync_feeds)
            await recall_hosts(self.db, self.store, self.fetcher, self.clock())
            self.scheduler = AsyncIOScheduler(event_loop=loop)  # the digest cron runs in local time (tzlocal)
            self.scheduler.add_job(self._digest_job, CronTrigger.from_crontab(self.config.schedule.digest),
                                   id="digest", max_instances=1, coalesce=True, misfire_grace_time=3600)
            # the one-shot poll job is re-armed when it has finished (from inside, it would
            # count as a second running instance and be skipped)
            self.scheduler.add_job(self._feedback_job, "interval", seconds=FEEDBACK_EVERY, id="feedback",
                                   max_instances=1, coalesce=True)
            if self.worker is not None:  # the corpus folder follows the database (one worker per slot)
                self.scheduler.add_job(self._corpus_job, "interval", seconds=CORPUS_SYNC_EVERY, id="corpus",
                                       max_instances=1, coalesce=True)
            self.scheduler.add_listener(self._on_job_done, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
            self.scheduler.start()
            self._start_web()
            self.store.announce("run", self.web_url)  # who holds the store, for the commands it turns away
            if self.worker is not None:
                self.worker.metrics = self.metrics  # made with the web view, just now
                work = asyncio.ensure_future(self.worker.work(self.stopping,
                                                              lambda: (self.config, self.seeds, self.fetcher)))
            else:
                await self._arm_poll()
            self.backfill.worker = self.worker.name if self.worker else None
            backfill = asyncio.ensure_future(self.backfill.run())
            log.info("event=service_started feeds=%d store=%s pid=%d%s", len(self.config.feeds),
                     "postgresql" if self.worker else self.config.paths.store, os.getpid(),
                     f" worker={self.worker.name}" if self.worker else "")
            await self.stopping.wait()
            self.backfill.abort()
            await self._shutdown()
            await backfill
            if self.worker is not None:
                await work
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self.fetcher.__aexit__(None, None, None)
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.db.close()  # the store's thread finishes the writes already asked for
            if self.reader is not None:
                self.reader.close()
            self.store.close()
        log.info("event=service_stopped")
        return 0

    def _start_web(self) -> None:
        """Serve the web view on this loop (verdicts go through this process's store writer)."""
        web = self.config.web
        if not web.listen:
            return
        # imported only now: without the web view, uvicorn, starlette, jinja2, prometheus_client (~12 MB) stay out
        from ingest.out.web import WebContext, bind, make_app, make_server
        from ingest.run.metrics import Metrics

        try:
            sock = bind(web.host, web.port)
        except OSError as exc:
            log.error("event=web_failed listen=%s reason=%r (the service runs on without the web view)",
                      web.listen, exc.strerror or str(exc))
            return
        self.reader, self.metrics = open_store(self.config, readonly=True), Metrics()
        ctx = WebContext(self.reader, lambda: self.config, lambda: self.seeds, self.metrics, self.clock,
                         writer=lambda fn: self.db(fn, self.store),
                         on_verdict=lambda: self.teaching.rescore("verdicts"), poll_now=self._poll_now)
        self.web = make_server(make_app(ctx))
        self.web_task = asyncio.ensure_future(self.web.serve(sockets=[sock]))
        self.web_url = f"http://{web.listen}/"
        log.info("event=web_listening url=%s", self.web_url)

    def _send_alerts(self, alerts: Sequence[Alert]) -> None:
        """To the targets of the config as it is now (a reload may have changed them)."""
        from ingest.out import notify

        notify.send_alerts_to(self.config, alerts)

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        if self.stopping.is_set() and time.monotonic() - self.stop_signalled < SIGNAL_ECHO:
            return  # the same stop delivered twice (e.g. `timeout` signals the process and its group)
        if self.stopping.is_set():
            log.warning("event=second_signal signal=%s exiting now", sig.name)
            logging.shutdown()
            kill_workers(self.executor)  # they would outlive us, holding our stdout/stderr open
            os._exit(1)
        log.info("event=stopping signal=%s timeout=%gs", sig.name, self.config.schedule.shutdown_timeout)
        self.stop_signalled = time.monotonic()
        self.stopping.set()

    async def _shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.web is not None and self.web_task is not None:
            self.web.should_exit = True
            await asyncio.gather(self.web_task, return_exceptions=True)
        running: dict[asyncio.Future, Poll] = dict(self.running)
        if self.worker is not None:
            running.update({task: p.poll for task, p in self.worker.passes.items()})
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=self.config.schedule.shutdown_timeout)
        if pending:
            log.warning("event=abandoning_poll polls=%d reason='shutdown_timeout reached'", len(pending))
            for task in pending:
                running[task].abort()
            await asyncio.gather(*pending, return_exceptions=True)

    def _on_reload_signal(self) -> None:
        self._reload("SIGHUP")

    def _reload(self, why: str) -> None:
        """Re-read the config and seeds and apply everything that can change while running:
        feeds, [fetch] (a new fetcher for the next polls; the running ones finish on the old),
        the digest cron, [relevance], [schedule], [digest], the seeds. Only [paths] store needs a
        restart: it is kept, and logged by name."""
        self.config_mark = file_mark(self.config.path)
        try:
            config = load_config(self.config.path)
            seeds = [s.text for s in load_seeds(config.paths.seeds)]
        except (ConfigError, SeedError) as exc:
            log.error("event=reload_failed trigger=%s reason=%r (keeping the running config)", why, str(exc))
            return
        old = self.config
        changed = changed_keys(old, config)
        restart = [k for k in changed if k in RESTART_KEYS]
        if restart:
            config = dataclasses.replace(config, paths=dataclasses.replace(config.paths, store=old.paths.store),
                                         web=dataclasses.replace(config.web, listen=old.web.listen),
                                         store=dataclasses.replace(config.store, url=old.store.url))
            log.warning("event=reload_needs_restart keys=%s (kept the running values)", ",".join(restart))
        seeds_changed = seeds != self.seeds
        self.config, self.seeds = config, seeds
        self.seeds_mark = seeds_mark(config.paths.seeds)
        if config.fetch != old.fetch:
            retired, self.fetcher = self.fetcher, Fetcher(config.fetch, clock=self.clock)
            self.fetcher.inherit(retired)  # windows learned by polls still running hold for the new one
            asyncio.ensure_future(self._retire(retired, list(self.running)))
        if config.schedule.digest != old.schedule.digest and self.scheduler is not None:
            job = self.scheduler.reschedule_job("digest", trigger=CronTrigger.from_crontab(config.schedule.digest))
            log.info("event=digest_rescheduled cron=%r next=%s", config.schedule.digest,
                     job.next_run_time.isoformat() if job.next_run_time else "-")
        asyncio.ensure_future(self._resync())
        applied = [k for k in changed if k not in RESTART_KEYS]
        log.info("event=reloaded trigger=%s feeds=%d changed=%s", why, len(config.feeds), ",".join(applied) or "-")
        if seeds_changed:
            self.teaching.rescore("seeds changed")

    @staticmethod
    async def _retire(fetcher: Fetcher, polls: list[asyncio.Future]) -> None:
        """Close a replaced fetcher once the polls that use it are done."""
        if polls:
            await asyncio.wait(polls)
        await fetcher.__aexit__(None, None, None)

    async def _poll_now(self, feed_ids: list[int] | None) -> int:
        """The web view's Poll now: these feeds (every pollable one with None) are due now."""
        n = await self.db(self.store.poll_feeds_now, self.clock(), feed_ids)
        log.info("event=poll_now feeds=%d asked_by=web", n)
        if self.worker is None:
            await self._arm_poll()
        return int(n)

    # -- jobs -----------------------------------------------------------------

    async def _resync(self) -> None:
        if self.worker is not None:
            return  # on PostgreSQL the feeds table is `ingest feeds sync`'s
        await self.db(self._sync_feeds)
        await self._arm_poll()

    def _quiet(self) -> bool:
        """Whether the backfill may send its next request: no poll running and none due."""
        if self.running or (self.worker is not None and self.worker.passes):
            return False
        return self.clock() < self.poll_at

    def _sync_feeds(self) -> None:
        """In the store's thread: match the feeds table to the config; give new feeds a staggered first poll."""
        sync_store(self.store, self.config, self.clock())

    async def _arm_poll(self) -> None:
        """Schedule the next poll for when a feed or a deferred page is due; with none running (or
        only ending ones) and the next far off, close the connection pools."""
        if self.scheduler is None or self.stopping.is_set():
            return
        feeds = await self.db(self.store.next_due, exclude=set(self.in_flight))
        pages = await self.db(self.store.next_page_due, exclude=set(self.claimed_pages))
        if self.stopping.is_set():
            return
        due = min((t for t in (feeds, pages) if t is not None), default=None)
        when = max(self.clock(), due) if due is not None else self.clock() + IDLE_RECHECK
        when = self.poll_at = max(when, self.hold_until)
        self.scheduler.add_job(self._poll_job, "date", run_date=datetime.fromtimestamp(when, UTC), id="poll",
                               replace_existing=True, misfire_grace_time=None)
        # the next poll is further off than a connection is kept: an idle service holds no client or
        # socket per host (1,000 hosts' worth after a big poll), nor the poll's garbage
        idle = when - self.clock() >= KEEPALIVE and all(id(p) in self.finishing for p in self.running.values())
        if idle and (closed := await self.fetcher.close_idle()):
            log.info("event=pools_closed hosts=%d", closed)
            gc.collect()
            release_freed_memory()

    async def _poll_job(self) -> None:
        """Start a poll of the feeds that are due and not already being polled.

        Polls may overlap (a slow host must not hold back the others); they
        share one Fetcher, so per-host limits hold across them, and one store
        thread, whose calls run one at a time (a chunk's decisions are one call),
        so their writes never interleave.
        """
        if self.stopping.is_set():
            return
        now = self.clock()
        due = [f for f in await self.db(self.store.due_feeds, now) if f.id not in self.in_flight]
        # a page whose host deferred it is fetched once its time has come, not at the next feed poll
        pages = await self.db(self.store.next_page_due, exclude=set(self.claimed_pages))
        if (not due and (pages is None or pages > now)) or self.stopping.is_set():
            return
        ids = {f.id for f in due}
        self.in_flight |= ids
        poll = Poll(self.config, self.store, self.seeds, self.fetcher, self.executor, clock=self.clock,
                    rng=self.rng, warned=self.warned, metrics=self.metrics, db=self.db, claimed=self.claimed_pages,
                    model=self.model)
        task = asyncio.ensure_future(self._run_poll(poll, due, ids))
        self.running[task] = poll
        task.add_done_callback(self.running.pop)

    async def _run_poll(self, poll: Poll, due: list[FeedRow], ids: set[int]) -> None:
        try:
            s = await poll.run(due)
            if poll.alerts:
                await asyncio.to_thread(self._send_alerts, poll.alerts)
            s.corpus_articles = (await self.db(self.store.metrics_snapshot))["articles"]
            log.info("event=poll_done feeds=%d ok=%d not_modified=%d failed=%d new=%d kept=%d rejected=%d "
                     "duplicates=%d redecided_joined=%d redecided_left=%d corpus_change=%+d corpus_articles=%d "
                     "seconds=%.1f", len(due), s.feeds_ok, s.feeds_not_modified, s.feeds_failed, s.entries_new,
                     s.kept, s.rejected, s.duplicates, s.redecided_kept, s.redecided_withdrawn, s.corpus_change,
                     s.corpus_articles, s.seconds)
            self.poll_failures = 0
        except Exception as exc:  # a bug or a broken store must not end a service meant to run for months
            self.poll_failures += 1
            delay = backoff(self.poll_failures, self.config.schedule, self.rng)
            self.hold_until = self.clock() + delay
            log.exception("event=poll_crashed failures=%d next_try_in=%.0fs", self.poll_failures, delay)
            await self.db(self._feeds_failed, due, f"poll failed: {exc!r}")
        finally:
            self.in_flight -= ids
            self.finishing.add(id(poll))  # polls ending together: each counts the others as ended
            try:
                await remember_hosts(self.db, self.store, poll.fetcher, self.clock())
            except Exception as exc:  # best effort: the next poll learns it again
                log.error("event=host_state_not_saved reason=%r", str(exc))
            await self._arm_poll()
            self.finishing.discard(id(poll))

    def _feeds_failed(self, due: list[FeedRow], reason: str) -> None:
        """Back the feeds of a crashed poll off like failed feeds (best effort: the store may be the problem)."""
        now = self.clock()
        try:
            for f in due:
                fields = plan(FeedState(f.interval, f.consecutive_errors, f.errors_since),
                              FeedOutcome(ok=False, error=reason), self.config.schedule, now, self.rng)
                self.store.update_feed(f.id, **fields, last_error=reason, last_error_at=now,
                                       errors_since=f.errors_since or now)
        except Exception as exc:
            log.error("event=feed_state_not_saved reason=%r", str(exc))

    def _on_job_done(self, event: Any) -> None:
        if event.job_id == "poll":
            asyncio.ensure_future(self._arm_poll())

    async def _feedback_job(self) -> None:
        """Apply queued verdicts (ingest.service.teaching); notice a changed config file (`ingest feeds
        add`, an editor) and changed seed files."""
        if self.stopping.is_set():
            return
        if file_mark(self.config.path) != self.config_mark:
            self._reload("config_changed")
        await self.teaching.apply_queued()
        mark = seeds_mark(self.config.paths.seeds)
        if mark != self.seeds_mark:
            self.seeds_mark = mark
            try:
                seeds = [s.text for s in load_seeds(self.config.paths.seeds)]
            except SeedError as exc:
                log.error("event=seeds_unusable reason=%r (keeping the previous seeds)", str(exc))
                return
            if seeds != self.seeds:
                self.seeds = seeds
                self.warned.clear()
                log.info("event=seeds_reloaded seeds=%d", len(seeds))
                self.teaching.rescore("seeds changed")

    async def _corpus_job(self) -> None:
        """On PostgreSQL: write [paths] store's corpus/ from the database, by one worker per slot."""
        from ingest.text.corpus import sync_folder

        now = self.clock()
        assert self.worker is not None
        if self.stopping.is_set() or not await self.db(self.store.elect, "corpus", now - now % CORPUS_SYNC_EVERY,
                                                        self.worker.name, now):
            return
        try:
            folder = self.config.paths.store / "corpus"
            done = await asyncio.to_thread(lambda: sync_folder(folder, self.store.corpus_files(),
                                                               self.store.withdrawn_files()))
            log.info("event=corpus_synced folder=%s written=%d removed=%d", folder, done.written, done.removed)
        except Exception:
            log.exception("event=corpus_sync_failed")

    async def _digest_job(self) -> None:
        from ingest.out import notify
        from ingest.out.digest import REVIEW_ITEMS, scheduled, teaching
        from ingest.out.standing import learn, read

        if self.stopping.is_set():
            return
        try:
            config = self.config
            window = await self.db(read, self.store, config)
            rel = config.relevance
            standing = await asyncio.get_running_loop().run_in_executor(
                self.executor, learn, self.seeds, window, rel.language, rel.threshold, self.clock())
            now = self.clock()
            slot = last_fire(self.config.schedule.digest, now)
            worker = self.worker.name if self.worker else str(os.getpid())
            if not await self.db(self.store.elect, "digest", slot, worker, now):
                log.info("event=digest_skipped reason='another worker writes this digest' slot=%s",
                         datetime.fromtimestamp(slot, UTC).isoformat())
                return
            # rendering and writing the digest files happen in the store's thread too: off the loop
            digest, paths = await self.db(
                lambda: scheduled(self.store, now=now, review=teaching(self.store, standing, REVIEW_ITEMS)))
            log.info("event=digest_written items=%d files=%s", len(digest.items),
                     ",".join(Path(p).name for p in paths))
            targets = notify.targets(self.config)
            if targets:  # plan and record here (the one writer), send in a thread
                now = self.clock()
                deliveries = await self.db(lambda: notify.plan(self.store, targets, self.store.last_digest_id(), now))
                results = await asyncio.to_thread(notify.send, deliveries)
                await self.db(notify.record, self.store, results, self.clock())
        except Exception:
            log.exception("event=digest_failed")


def run_service(config: Config) -> int:
    return asyncio.run(Service(config).run())
