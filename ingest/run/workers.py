"""Sharing the work between workers on PostgreSQL (``ingest run`` / ``ingest poll`` with [store] url).

A worker works in passes. A pass leases a few hosts that have work due
(``PgStore.claim_hosts``: ``FOR UPDATE SKIP LOCKED`` in a short transaction,
so workers claiming at the same moment take different hosts), polls their due
feeds and their page jobs with one :class:`~ingest.run.poll.Poll` restricted
to them (a page on a host it does not hold becomes a page job for whoever
holds that host), then gives the hosts back with the spacing their last
request set, so the next holder keeps ``host_delay``. Holding a host is what
keeps ``per_host``, ``host_delay``, Retry-After and robots.txt exact across
workers; the Retry-After windows and robots.txt files themselves are in the
database (tables ``hosts``, ``robots``) for every worker to read.

While a pass runs, its leases are renewed every third of ``[store] lease``
from a thread of their own (a long commit in the store's thread cannot starve
them). A worker killed mid-pass stops renewing; when its leases run out
another worker takes the hosts: feeds whose state was not saved are still
due, page jobs not committed are still queued, and every write is keyed
(pages by URL, entries by feed and key, articles by identity under advisory
locks), so doing a piece of work twice cannot store it twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.config import Config
from ingest.run.chunk import Alert
from ingest.run.model_keeper import ModelKeeper
from ingest.run.poll import Poll, recall_hosts, remember_hosts
from ingest.run.summary import PollSummary
from ingest.sources.fetch import Fetcher
from ingest.store import StoreThread
from ingest.store.postgres import PgStore

if TYPE_CHECKING:
    from ingest.run.metrics import Metrics  # the service's, made with its web view

log = logging.getLogger("ingest")

SendAlerts = Callable[[Sequence[Alert]], None]  # ingest.out.notify.alert_sender

HOSTS_PER_PASS = 4  # hosts leased at a time: small, so work spreads over the workers as they free up
MAX_PASSES = 6  # passes a worker runs together (each holds at most two chunks of pages: a bound on memory)
PASS_CHUNK = 256  # a pass decides and commits its pages in chunks of this many (each chunk is scored once)
BACKLOG_PER_PROCESS = 8  # another pass starts when the pages fetched and not yet extracted fall below this
IDLE_CHECK = 2.0  # seconds between looks for claimable work when there was none
BUSY_CHECK = 0.25  # seconds between looks at the backlog while passes run
ORPHAN_CHECK = 1.0  # seconds between looks for a dead worker's hosts while busy (taken whatever the backlog)
MAX_ROUNDS = 5  # rounds of a pass: feeds of its hosts that fell due while it ran are polled before release
LOOKAHEAD = 15.0  # a pass polls its hosts' feeds due this soon (at most a quarter of the lease) with the due ones


def worker_name() -> str:
    """This process's name in host_leases and workers: machine, pid and a random tag (a restarted
    worker with the same pid is another worker)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Pass:
    """One pass: the hosts it holds, and its poll (to abort on a signal)."""

    hosts: frozenset[str]
    poll: Poll
    summary: PollSummary | None = None


class Worker:
    """Claims hosts and runs passes over them; shared by the service and ``ingest poll``."""

    def __init__(self, config: Config, store: PgStore, seeds: Sequence[str], fetcher: Fetcher, executor: Executor,
                 db: StoreThread, *, clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 warned: set[str] | None = None, metrics: Metrics | None = None,
                 send_alerts: SendAlerts | None = None) -> None:
        self.config, self.store, self.seeds = config, store, list(seeds)
        self.send_alerts = send_alerts  # kept articles above [notify] instant_above (run in a thread)
        self.fetcher, self.executor, self.db, self.clock = fetcher, executor, db, clock
        self.rng = rng or random.Random()
        self.warned = warned if warned is not None else set()
        self.metrics = metrics
        self.name = worker_name()
        self.passes: dict[asyncio.Future, Pass] = {}
        self.processes = config.worker.processes or os.cpu_count() or 1
        self.aborted = False  # a signal: take no more hosts
        self.model = ModelKeeper(executor, clock=clock)  # one model for all passes of this process

    def wants_work(self) -> bool:
        """Room for another pass: the passes running leave the extraction processes short of work
        soon (a pass is started before the pipeline runs dry, not after a pass has ended). The work
        counted is what the CPU will have soon: pages fetched and not yet extracted, and requests in
        flight; pages waiting for their host's spacing are not (a politeness-bound pass leaves the
        CPU idle, and due hosts must not wait for it)."""
        if len(self.passes) >= MAX_PASSES:
            return False
        ready = sum(p.poll.extracting() for p in self.passes.values()) + self.fetcher.in_flight()
        return ready < BACKLOG_PER_PROCESS * self.processes

    async def register(self) -> float:
        """Be counted in the others' fair share before claiming anything (ingest.store.postgres);
        returns when the earliest live worker started."""
        return await asyncio.to_thread(self.store.register_worker, self.name, self.clock(), self.config.store.lease)

    async def work(self, stopping: asyncio.Event,
                   current: Callable[[], tuple[Config, Sequence[str], Fetcher]]) -> None:
        """The service's loop on PostgreSQL: lease hosts with work due and poll them, a pass at a time
        whenever the running passes leave the extraction processes short of work (wants_work); with
        nothing to take, look again every IDLE_CHECK seconds (other workers queue page jobs).
        ``current`` gives the service's config, seeds and fetcher (a reload replaces them)."""
        stop = asyncio.ensure_future(stopping.wait())
        idle = False
        orphans_seen = time.monotonic()
        heartbeat: asyncio.Future | None = None
        try:  # counted by the others from now; the model is learned before the first pass: every
            # worker starting together decides with the same one
            registered = time.monotonic()
            first = await self.register()
            # seen every third of a lease from now on, whatever the worker is doing: a worker whose first
            # model took longer than a lease to learn (a busy machine) was not counted by the others, and
            # the first to claim took every host and held them for its whole pass
            heartbeat = asyncio.ensure_future(self._heartbeat())
            await self.model.current(self.db, self.store, self.seeds, self.config.relevance)
            # [worker] start_settle, counted from the earliest live worker's start: workers started
            # together (a compose file, units on several machines) all register before any claims, so
            # the first does not take everything, and all claim from the same moment; one joining a
            # running set claims at once. Within half a lease of its own registration: a worker not
            # seen for a lease is not counted by the others
            settle = min(self.config.worker.start_settle - (self.clock() - first),
                         self.config.store.lease / 2 - (time.monotonic() - registered))
            if settle > 0:
                await asyncio.wait([stop], timeout=settle)
            log.info("event=worker_ready worker=%s", self.name)
        except Exception as exc:  # the database is away: the first pass learns it
            log.error("event=model_failed worker=%s reason=%r", self.name, str(exc))
        while not stopping.is_set():
            if idle or not self.wants_work():
                await asyncio.wait([stop, *self.passes], timeout=IDLE_CHECK if idle else BUSY_CHECK,
                                   return_when=asyncio.FIRST_COMPLETED)
                if stopping.is_set():
                    break
                if not idle and not self.wants_work():
                    if time.monotonic() - orphans_seen >= ORPHAN_CHECK:  # a dead worker's hosts do not wait
                        orphans_seen = time.monotonic()
                        await self._take_orphans()
                    continue
            config, seeds, self.fetcher = current()
            self.config, self.seeds = config, list(seeds)
            try:
                task = await self.start_pass()
            except Exception as exc:  # the database is away: log, wait, try again
                log.error("event=claim_failed worker=%s reason=%r", self.name, str(exc))
                idle = True
                continue
            idle = task is None
            if task is not None:
                task.add_done_callback(_pass_done)
        stop.cancel()
        if heartbeat is not None:
            heartbeat.cancel()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.store.lease / 3)
            try:
                await asyncio.to_thread(self.store.heartbeat, self.name, self.clock())
            except Exception as exc:  # the database is away: the claims will say so
                log.debug("event=heartbeat_failed worker=%s reason=%r", self.name, str(exc))

    async def _take_orphans(self) -> None:
        """While busy: take the hosts of a worker that stopped renewing (killed), at once."""
        try:
            task = await self.start_pass(orphans_only=True)
        except Exception as exc:  # the database is away: the next look tries again
            log.error("event=claim_failed worker=%s reason=%r", self.name, str(exc))
            return
        if task is not None:
            task.add_done_callback(_pass_done)

    async def start_pass(self, orphans_only: bool = False) -> asyncio.Future | None:
        """Lease hosts with work due and start a pass over them; None when there is nothing to take."""
        lease = self.config.store.lease
        claimed = await asyncio.to_thread(self.store.claim_hosts, self.name, self.clock(), lease, HOSTS_PER_PASS,
                                          orphans_only)
        if not claimed:
            return None
        hosts = frozenset(claimed)
        for host, not_before in claimed.items():
            self.fetcher.hold_off(host, not_before)
        p = Pass(hosts, self._poll(hosts))
        task = asyncio.ensure_future(self._run(p))
        self.passes[task] = p
        task.add_done_callback(self.passes.pop)
        log.info("event=hosts_leased worker=%s hosts=%s", self.name, ",".join(sorted(hosts)))
        return task

    def _poll(self, hosts: frozenset[str]) -> Poll:
        return Poll(self.config, self.store, self.seeds, self.fetcher, self.executor, clock=self.clock, rng=self.rng,
                    warned=self.warned, metrics=self.metrics, db=self.db, hosts=hosts, chunk=PASS_CHUNK,
                    model=self.model)

    async def _run(self, p: Pass) -> Pass:
        renewer = asyncio.ensure_future(self._renew(p.hosts))
        try:
            await recall_hosts(self.db, self.store, self.fetcher, self.clock(), p.hosts)
            # the hosts' feeds due within the pass are polled in it, not left for another claim (and
            # another worker's host spacing) to find: those due soon now, those that fell due while
            # it ran in another round
            ahead = min(LOOKAHEAD, self.config.store.lease / 4)
            polled: set[int] = set()  # once per pass, whatever its interval
            alerts: list[Alert] = []
            for round_ in range(MAX_ROUNDS):
                feeds = [f for f in await self.db(self.store.due_feeds_on, p.hosts, self.clock(),
                                                  self.clock() + ahead) if f.id not in polled]
                if round_:  # the first round runs whatever it finds (the hosts' page jobs too)
                    if self.aborted or not feeds:
                        break
                    p.poll = self._poll(p.hosts)
                polled |= {f.id for f in feeds}
                summary = await p.poll.run(feeds)
                if p.summary is None:
                    p.summary = summary
                else:
                    p.summary.add(summary)
                alerts += p.poll.alerts
            await remember_hosts(self.db, self.store, self.fetcher, self.clock())
            if alerts and self.send_alerts is not None:
                await asyncio.to_thread(self.send_alerts, alerts)
            return p
        finally:
            renewer.cancel()
            spacing = {h: self.fetcher.next_start(h) for h in p.hosts}
            await asyncio.to_thread(self.store.release_hosts, self.name, spacing)

    async def _renew(self, hosts: frozenset[str]) -> None:
        lease = self.config.store.lease
        while True:
            await asyncio.sleep(lease / 3)
            try:
                kept = await asyncio.to_thread(self.store.renew_hosts, self.name, hosts, self.clock(), lease)
            except Exception as exc:  # the database is away: the pass goes on; its writes will tell
                log.error("event=lease_renewal_failed worker=%s reason=%r", self.name, str(exc))
                continue
            if kept != hosts:
                log.warning("event=leases_lost worker=%s hosts=%s (they ran out; another worker may poll them)",
                            self.name, ",".join(sorted(hosts - kept)))

    async def drain(self) -> PollSummary:
        """Passes until no host has work due (``ingest poll``), started as the backlog runs low. A
        pass may queue page jobs for hosts another pass held, so "nothing to claim" only counts
        when no pass was running during the claim."""
        started = time.monotonic()
        tasks: list[asyncio.Future] = []
        await self.register()
        while not self.aborted:
            while self.wants_work() and not self.aborted:
                task = await self.start_pass()
                if task is None:
                    break
                tasks.append(task)
            if not self.passes:
                task = await self.start_pass()  # every pass has committed: is anything left?
                if task is None:
                    break
                tasks.append(task)
                continue
            await asyncio.wait(list(self.passes), timeout=BUSY_CHECK, return_when=asyncio.FIRST_COMPLETED)
        total = PollSummary()
        for task in tasks:
            summary = (await task).summary
            if summary is not None:
                total.add(summary)
        total.seconds = round(time.monotonic() - started, 3)
        return total

    def abort(self) -> None:
        """Stop taking hosts; the running passes abandon unfinished requests and store what is complete."""
        self.aborted = True
        for p in self.passes.values():
            p.poll.abort()


def _pass_done(task: asyncio.Future) -> None:
    """Log a finished pass (the service's one line per poll)."""
    if task.cancelled():
        return
    if task.exception() is not None:
        log.error("event=pass_crashed error=%r", task.exception())
        return
    s = task.result().summary
    if s is not None:
        log.info("event=poll_done hosts=%d ok=%d not_modified=%d failed=%d new=%d kept=%d rejected=%d "
                 "duplicates=%d redecided_joined=%d redecided_left=%d corpus_change=%+d seconds=%.1f",
                 len(task.result().hosts), s.feeds_ok, s.feeds_not_modified, s.feeds_failed, s.entries_new, s.kept,
                 s.rejected, s.duplicates, s.redecided_kept, s.redecided_withdrawn, s.corpus_change, s.seconds)
