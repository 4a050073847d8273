"""The service's backfill: the followed sites' history, fetched in the time between polls.

With ``[backfill] enabled``, the service runs rounds of ingest.run.backfill over the sites of the
enabled feeds whose ``backfill`` is not false (a feed added to config.toml joins at the next round),
within ``[backfill] max_pages_per_day`` article pages in any 24 hours (the pages `ingest backfill`
fetched count too). Polls come first: a round asks before every page whether a poll is running or
due, and waits while one is (what it has in flight, at most one request per host and slot, is all a
poll can find ahead of it on the shared fetcher). A round ends when every site has stopped (yield,
budget, nothing left, a host's deferral); the next starts after ``ROUND_PAUSE``, or once the day's
budget is free again. On PostgreSQL one worker, elected per hour, runs the rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from ingest.config import Config
from ingest.run.backfill import Backfill, targets
from ingest.run.backfill_report import BackfillReport
from ingest.run.model_keeper import ModelKeeper
from ingest.sources.fetch import Fetcher
from ingest.store import SqlStore, StoreThread

log = logging.getLogger("ingest")

DAY = 86400.0
ROUND_PAUSE = 600.0  # seconds between rounds that fetched something and the next (a site's list may grow)
IDLE_PAUSE = 3600.0  # seconds before looking again when a round fetched nothing, or backfill is off
ELECTION_SLOT = 3600.0  # on PostgreSQL, the worker that wins the hour runs that hour's rounds


class ServiceBackfill:
    """Rounds of backfill until ``stopping``; ``current`` gives the running config, seeds and fetcher
    (a reload may replace them between rounds)."""

    def __init__(self, current: Callable[[], tuple[Config, Sequence[str], Fetcher]], store: SqlStore,
                 executor: Executor, db: StoreThread, model: ModelKeeper, may_fetch: Callable[[], bool],
                 stopping: asyncio.Event, clock: Callable[[], float], rng: random.Random,
                 worker: str | None = None) -> None:
        self.current, self.store, self.executor, self.db, self.model = current, store, executor, db, model
        self.may_fetch, self.stopping, self.clock, self.rng, self.worker = may_fetch, stopping, clock, rng, worker
        self.running: Backfill | None = None

    def abort(self) -> None:
        """Stop the round after the pages being fetched (the service is stopping)."""
        if self.running is not None:
            self.running.abort()

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                pause = await self.round()
            except Exception:  # a bug or a store error must not end the service: try again later
                log.exception("event=backfill_failed")
                pause = IDLE_PAUSE
            await self._sleep(pause)

    async def round(self) -> float:
        """One round; returns the seconds to wait before the next."""
        config, seeds, fetcher = self.current()
        if not config.backfill.enabled:
            return IDLE_PAUSE
        now = self.clock()
        if self.worker is not None and not await self.db(self.store.elect, "backfill", now - now % ELECTION_SLOT,
                                                          self.worker, now):
            return ELECTION_SLOT - now % ELECTION_SLOT  # another worker backfills this hour
        spent, first = await self.db(self.store.backfill_fetched_since, now - DAY)
        left = config.backfill.max_pages_per_day - spent
        if left <= 0:
            wait = (first + DAY - now) if first is not None else IDLE_PAUSE
            log.info("event=backfill_paused reason='daily budget spent' fetched_today=%d resumes_in=%.0fs",
                     spent, wait)
            return max(wait, 1.0)
        sites = targets(config)
        if not sites:
            return IDLE_PAUSE
        self.running = Backfill(config, self.store, seeds, fetcher, self.executor, db=self.db, clock=self.clock,
                                model=self.model, rng=self.rng, archives=config.backfill.archives,
                                archive_endpoints=dict(config.backfill.archive_endpoints), may_fetch=self.may_fetch)
        try:
            report = await self.running.run(sites, max_pages=left)
        finally:
            self.running = None
        _log_round(report)
        if report.stopped == "budget":
            return 0.0  # the next round says when the day's budget is free again
        return ROUND_PAUSE if report.total("fetched") else IDLE_PAUSE

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)


def _log_round(report: BackfillReport) -> None:
    d = report.as_dict()
    log.info("event=backfill_round sites=%d candidates=%d discovery_requests=%d fetched=%d kept=%d rejected=%d "
             "duplicates=%d stopped=%s", d["sites"], d["candidates"], d["discovery_requests"], d["fetched"],
             d["kept"], d["rejected"], d["duplicates"], d["stopped"] or "-")
