"""``ingest backfill``: a topic's history from the sites it follows, found and fetched best-first.

Per site: discovery (sitemaps, the history of its configured feeds, opt-in web-archive indexes;
ingest.sources.*) records every article URL as a candidate in the store, once; the candidates
are ranked by the poll's own model (ingest.judge.prescore) and fetched best first, sites side by
side (each within the fetcher's per-host limits and spacing), until the site's yield says the
rest of its ranking is noise (ingest.run.backfill_rank), the run's budget is spent, or nothing is
left. Each page is decided exactly as a polled one (ingest.run.chunk) and its candidate row says
where it was found.

The model's window: a best-first page is not a random sample of its site (the ranking chose it
for its words), and a model learning its background (idf, pseudo-negatives, the kept share) from
such pages drifts: they are decided by the model but do not join its window. One fetch in
SAMPLE_EVERY is a candidate drawn at random instead; those pages do join the window, as a poll's
pages would, and they measure the site's base rate for the yield rule. Measured in
bench/backfill.py (docs/backfill.md).

Crash safety: a page's decision is committed (one transaction) before its candidate is marked
fetched, and a candidate whose URL the store knows as a page is never offered again, so a run
killed at any moment and run again fetches no page twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlsplit

from ingest.config import Config
from ingest.judge.decide import Deferred, Outcome, Skipped
from ingest.judge.model import Model
from ingest.judge.prescore import PreScore, prescore
from ingest.run.archiving import ArchivingFetcher
from ingest.run.backfill_rank import SAMPLE_EVERY, Item, SiteQueue, YieldRule
from ingest.run.backfill_report import BackfillProgress, BackfillReport, Ranked, SiteReport
from ingest.run.chunk import ChunkDecider
from ingest.run.model_keeper import MATURE, ModelKeeper
from ingest.run.page_fetch import Linked, PageFetcher, PageJob
from ingest.run.rescore import redecide
from ingest.sources import archives, feed_history, sitemaps
from ingest.sources.discovery import missing_scheme
from ingest.sources.fetch import Fetcher
from ingest.sources.fetches import Fetches
from ingest.sources.urls import normalize, scheme_reason, site_host
from ingest.store import SqlStore, StoreThread
from ingest.store.contract import Record
from ingest.text.corpus import corpus_text
from ingest.text.terms import term_counts

log = logging.getLogger("ingest")

REDISCOVER = 86400.0  # a site's sitemaps and feed pages are read again after a day, not at every run
BEST_SHOWN = 20  # candidates a dry run lists per site


@dataclass(frozen=True)
class Target:
    """A site to backfill: its origin and the configured feeds on it (their history is read too)."""

    site: str
    feeds: tuple[str, ...] = ()


class Budget:
    """Article pages the run may still fetch (None: no bound)."""

    def __init__(self, pages: int | None) -> None:
        self.left = pages
        self.spent = False
        self.interrupted = False

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            self.spent = True
            return False
        self.left -= 1
        return True

    def give_back(self) -> None:
        if self.left is not None:
            self.left += 1


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()


def targets(config: Config, urls: Sequence[str] = ()) -> list[Target]:
    """The sites to backfill: those of ``urls`` (any page of a site, or a configured feed), else those of
    every enabled feed whose ``backfill`` is not false. Each with the configured feeds on it. A URL that
    is not http(s) raises ValueError with what to write instead."""
    feeds: dict[str, list[str]] = {}
    for f in config.feeds:
        if f.enabled:
            feeds.setdefault(origin(f.url), []).append(f.url)
    if not urls:
        chosen = [origin(f.url) for f in config.feeds if f.enabled and f.backfill]
    else:
        chosen = []
        for u in urls:
            if (hint := missing_scheme(u)) is not None or (hint := scheme_reason(u)) is not None:
                raise ValueError(f"{u}: {hint}")
            chosen.append(origin(u))
    return [Target(site, tuple(feeds.get(site, ()))) for site in dict.fromkeys(chosen)]


def _all_counts(texts: Sequence[str]) -> list[dict[str, int]]:
    return [term_counts(t) for t in texts]


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _item(row: Record, pre: PreScore) -> Item:
    return Item(row["id"], row["link"], row["url"], row["source"], row["found_in"], _day(row["date"]),
                row["title"] or "", pre.score, pre.words, pre.opaque)


@dataclass
class _Site:
    target: Target
    report: SiteReport
    queue: SiteQueue
    rule: YieldRule
    fetches: int = 0
    stopped: str | None = None
    provisional: list[str] = field(default_factory=list)  # best-first pages decided by a provisional model


class Backfill:
    """One backfill run over some sites (a command's, or a slice of the service's time)."""

    def __init__(self, config: Config, store: SqlStore, seeds: Sequence[str], fetcher: Fetcher, executor: Executor,
                 *, db: StoreThread, clock: Callable[[], float] = time.time, model: ModelKeeper | None = None,
                 progress: BackfillProgress | None = None, rng: random.Random | None = None,
                 archives: Sequence[str] = (), archive_endpoints: dict[str, str] | None = None,
                 may_fetch: Callable[[], bool] = lambda: True, order: str = "best", yield_rule: bool = True,
                 window: str = "sample") -> None:
        self.config, self.store, self.seeds, self.fetcher, self.executor = config, store, list(seeds), fetcher, executor
        self.db, self.clock, self.progress = db, clock, progress
        self.rng = rng or random.Random()
        self.archives, self.endpoints = tuple(archives), dict(archive_endpoints or {})
        self.may_fetch = may_fetch  # the service's: False while a poll is due (backfill yields to polls)
        # bench/backfill.py's baselines: "sitemap" order (as listed), no stop rule, every page in the window
        self.order, self.yield_rule, self.window = order, yield_rule, window
        self.keeper = model or ModelKeeper(executor, clock=clock)
        self._budget = Budget(None)
        self.pages = PageFetcher(fetcher, executor, clock, robots=config.fetch.robots, record=config.archive.enabled)
        self.decider = ChunkDecider(config, store, seeds, self.keeper, db, clock=clock, settings={}, warned=set())

    async def run(self, targets: Sequence[Target], *, max_pages: int | None = None, since: datetime | None = None,
                  dry_run: bool = False) -> BackfillReport:
        sites = [_Site(t, SiteReport(t.site), SiteQueue(self.rng), YieldRule()) for t in targets]
        await asyncio.gather(*(self._discover(s, since) for s in sites))
        model = await self._model()
        for s in sites:
            await self._rank(s, model, since, dry_run)
        if not dry_run:
            self._budget = budget = Budget(max_pages)
            if self.progress is not None:
                self.progress.start(max_pages, sum(len(s.queue) for s in sites))
            await asyncio.gather(*(self._fetch_site(s, budget) for s in sites))
            await self._settle(sites)
        for s in sites:
            await self._count(s)
        return BackfillReport([s.report for s in sites], dry_run)

    def abort(self) -> None:
        """Stop after the pages being fetched now (a signal): what is decided is committed."""
        self._budget.left = 0
        self._budget.interrupted = True

    # -- discovery ------------------------------------------------------------

    async def _discover(self, s: _Site, since: datetime | None) -> None:
        site, now = s.target.site, self.clock()
        row = await self.db(self.store.backfill_site, site)
        if row is not None and row["discovered"] is not None and now - row["discovered"] < REDISCOVER:
            return
        found: list[tuple[str, str, str, datetime | None, str]] = []
        known = {u: (v[0], v[1]) for u, v in json.loads(row["validators"]).items()} if row is not None else {}
        reader: Fetches = self.fetcher
        if self.config.archive.enabled and self.config.archive.feeds:  # discovery documents into the archive
            reader = ArchivingFetcher(self.fetcher, self.db, self.store, self.config.archive.max_file_size)
        maps = await sitemaps.discover(site, reader, since, known)
        found += [(c.url, "sitemap", c.found_in, c.date, c.title) for c in maps.candidates]
        requests = len(maps.read)
        for what, answer in maps.read:
            log.debug("site=%s event=sitemap_read url=%s answer=%r", site, what, answer)
        for feed in s.target.feeds:
            hist = await feed_history.history(feed, reader, since)
            found += [(e.url, "feed", e.found_in, e.date, e.title) for e in hist.entries]
            requests += len(hist.read)
        for name in self.archives:
            idx = await archives.captures(site, reader, name, self.endpoints.get(name), since)
            found += [(c.url, "archive", f"{name}:{c.timestamp}", c.date, "") for c in idx.captures]
            requests += len(idx.read)
        host = site_host(site)
        found = [f for f in found if site_host(f[0]) == host]  # a feed may link elsewhere: that is another site's
        added = await self.db(self.store.add_candidates, site, found, now)
        await self.db(self.store.set_backfill_site, site, discovered=now, validators=json.dumps(maps.validators),
                      discovery_requests=(row["discovery_requests"] if row else 0) + requests)
        s.report.discovery_requests = requests
        log.info("site=%s event=backfill_discovered requests=%d listed=%d new=%d", site, requests, len(found), added)
        if self.progress is not None:
            self.progress.found(added)

    # -- ranking --------------------------------------------------------------

    async def _model(self) -> Model:
        model, _, _ = await self.keeper.current(self.db, self.store, self.seeds, self.config.relevance)
        return model

    async def _prescore(self, model: Model, pairs: list[tuple[str, str]]) -> list[PreScore]:
        if not pairs:
            return []
        return await asyncio.get_running_loop().run_in_executor(self.executor, prescore, model, pairs)

    async def _rank(self, s: _Site, model: Model, since: datetime | None, dry_run: bool) -> None:
        rows = await self.db(self.store.pending_candidates, s.target.site)
        cut = since.date() if since is not None else None
        rows = [r for r in rows if cut is None or (d := _day(r["date"])) is None or d >= cut]
        if self.order == "sitemap":  # the baseline: as the sitemaps list them
            rows.sort(key=lambda r: r["id"])
            pres = [PreScore(-float(i), (), False) for i in range(len(rows))]
        else:
            pres = await self._prescore(model, [(r["link"], r["title"] or "") for r in rows])
        await self.db(self.store.set_prescores, [(r["id"], p.score) for r, p in zip(rows, pres, strict=True)])
        for r, p in zip(rows, pres, strict=True):
            s.queue.add(_item(r, p))
        state = await self.db(self.store.backfill_site, s.target.site)
        if state is not None:
            s.rule = YieldRule(state["recent"], len(state["recent"]), state["sample_fetched"], state["sample_kept"])
            newer = await self.db(self.store.candidates_found_since, s.target.site, state["stopped_at"] or 0.0)
            if state["stopped"] == "yield" and newer:  # the site's list grew since its ranking ran dry: look again
                s.rule.recent, s.rule.ranked = "", 0
        if dry_run:
            best = sorted(zip(rows, pres, strict=True), key=lambda rp: -rp[1].score)[:BEST_SHOWN]
            s.report.best = [Ranked(r["link"], round(p.score, 3), p.words, r["source"]) for r, p in best]

    # -- fetching -------------------------------------------------------------

    async def _fetch_site(self, s: _Site, budget: Budget) -> None:
        slots = max(1, self.config.fetch.per_host)
        await asyncio.gather(*(self._slot(s, budget) for _ in range(slots)))
        await self.db(self.store.set_backfill_site, s.target.site, stopped=s.stopped, stopped_at=self.clock(),
                      recent=s.rule.recent, sample_fetched=s.rule.sample_fetched, sample_kept=s.rule.sample_kept)
        log.info("site=%s event=backfill_stopped reason=%s fetched=%d kept=%d", s.target.site, s.stopped,
                 s.report.fetched, s.report.kept)

    def _stop(self, s: _Site, reason: str) -> None:
        if s.stopped is None:
            s.stopped = reason
        s.report.stopped = s.stopped

    async def _slot(self, s: _Site, budget: Budget) -> None:
        while s.stopped is None:
            if self.yield_rule and s.rule.exhausted_yield():
                self._stop(s, "yield")
                return
            while not self.may_fetch():  # a poll is due: it goes first
                await asyncio.sleep(0.2)
            if not budget.take():
                self._stop(s, "budget")
                return
            sample = s.fetches % SAMPLE_EVERY == SAMPLE_EVERY - 1
            item = s.queue.pop_random() if sample else s.queue.pop_best()
            if item is None:
                budget.give_back()
                self._stop(s, "exhausted")
                return
            s.fetches += 1
            await self._fetch(s, item, sample)

    async def _fetch(self, s: _Site, item: Item, sample: bool) -> None:
        job = PageJob(key=item.url, link=item.link, sources=[], feed_ids=set(), window=sample or self.window == "all",
                      published=item.day.isoformat() if item.day else None, links=True)
        result = await self.pages.fetch(job)
        if isinstance(result, Deferred):  # the host asked for quiet: the page stays a candidate
            self._budget.give_back()  # no article page was fetched
            s.queue.put_back(item)
            log.info("site=%s event=backfill_deferred page=%s reason=%r", s.target.site, item.link, result.reason)
            self._stop(s, "deferred")
            return
        decided = await self.decider.decide([(job, result)])
        await self.db(self.store.mark_candidates_fetched, [item.id], self.clock())
        fitted = self.keeper.fitted
        if not job.window and (fitted is None or fitted.n < MATURE):  # re-decided at the run's end (_settle)
            s.provisional.append(item.url)
        n, r = decided.summary, s.report
        if isinstance(result, Skipped) and result.outcome is Outcome.BLOCKED:
            self._budget.give_back()  # robots.txt said no: no request was sent
        else:
            r.fetched += 1
        r.kept += n.kept
        r.rejected += n.rejected
        r.duplicates += n.duplicates
        r.errors += n.page_errors + n.empty + n.blocked
        judged = bool(n.kept or n.rejected or n.duplicates)
        if judged:  # an error says nothing of the ranking
            s.rule.add(bool(n.kept), sample)
        if self.progress is not None:
            self.progress.fetched(bool(n.kept))
        if isinstance(result, Linked) and self.order == "best":
            await self._learn(s, result, bool(n.kept))

    async def _learn(self, s: _Site, page: Linked, kept: bool) -> None:
        """What a fetched page teaches the ranking: its related-story links (new candidates, a title for an
        opaque one, the link text's words for a listed one), and, when kept, the dates around it."""
        if kept and (day := _day(page.page.date)) is not None:
            s.queue.raise_near(day)
        fresh, titled, linked = [], [], []
        for link, text in page.links:
            key = normalize(link)
            known = s.queue.get(key)
            if known is None:
                fresh.append((link, text))
            elif not known.done and known.opaque:
                titled.append((known, text))
            elif not known.done and text and text not in known.title:
                linked.append((known, f"{known.title} {text}".strip()))
        if fresh or titled or linked:
            await self._rescore_links(s, page, fresh, titled, linked)
        if kept:  # a kept article's related stories: raised to the site's top decile, as dates near it are
            top = s.queue.high()
            for link, _ in page.links:
                if (item := s.queue.get(normalize(link))) is not None:
                    s.queue.raise_to(item, top)

    async def _rescore_links(self, s: _Site, page: Linked, fresh: list[tuple[str, str]],
                             titled: list[tuple[Item, str]], linked: list[tuple[Item, str]]) -> None:
        model = await self._model()
        pres = await self._prescore(model, fresh + [(k.link, t) for k, t in titled + linked])
        if fresh:
            now = self.clock()
            await self.db(self.store.add_candidates, s.target.site,
                          [(u, "link", page.page.url, None, t) for u, t in fresh], now)
            rows = await self.db(self.store.pending_by_url, [normalize(u) for u, _ in fresh])
            for (u, _), p in zip(fresh, pres, strict=False):
                if (row := rows.get(normalize(u))) is not None:
                    s.queue.add(_item(row, p))
            if self.progress is not None:
                self.progress.found(len(fresh))
        for (known, text), p in zip(titled, pres[len(fresh):len(fresh) + len(titled)], strict=True):
            s.queue.titled(known, text, p.score, p.words)
        for (known, _), p in zip(linked, pres[len(fresh) + len(titled):], strict=True):
            s.queue.raise_to(known, p.score)  # a listed page's link text: its words count too (never lower)
        await self.db(self.store.title_candidates, [(k.id, t) for k, t in titled])

    async def _settle(self, sites: Sequence[_Site]) -> None:
        """The run's last word, as a poll's: the window's provisional pages (the random sample's among them)
        re-decided by the model learned from the whole window (ModelKeeper.settle), then the best-first pages
        decided while the model was provisional (learned from fewer than MATURE pages), which are not in
        the window, re-decided by that same model, so an early page is not judged by a model that had seen
        a few dozen pages when a later one is judged by a better one."""
        await self.decider.settle()
        model = await self._model()
        for s in sites:
            if not s.provisional:
                continue
            rows = await self.db(self.store.pages_by_urls, s.provisional)
            docs = await self.db(lambda rows=rows: {pid: self.store.page_doc(r) for pid, r in
                                                    ((r["id"], r) for r in rows.values())})
            ids = [pid for pid, d in docs.items() if d is not None]
            texts = [corpus_text(d.title, d.text) for pid, d in docs.items() if d is not None]
            counts = await asyncio.get_running_loop().run_in_executor(self.executor, _all_counts, texts)
            scores = await self.keeper.score(model, counts)
            applied = await self.db(redecide, self.store, ids, scores, model.threshold.value, self.clock())
            joined, left = len(applied.added) + len(applied.restored), len(applied.withdrawn)
            s.report.kept += joined - left
            s.report.rejected += left - joined
            s.provisional = []
            if joined or left:
                log.info("site=%s event=backfill_redecided pages=%d joined=%d withdrawn=%d", s.target.site, len(ids),
                         joined, left)

    async def _count(self, s: _Site) -> None:
        counts = await self.db(self.store.candidate_counts, s.target.site)
        s.report.by_source = {k: v for k, v in counts.items() if k != "fetched"}
        s.report.candidates = sum(s.report.by_source.values())


async def backfill_once(config: Config, store: SqlStore, seeds: Sequence[str], executor: Executor,
                        sites: Sequence[Target], max_pages: int | None = None, since: datetime | None = None,
                        dry_run: bool = False, progress: BackfillProgress | None = None,
                        *, clock: Callable[[], float] = time.time) -> BackfillReport:
    """`ingest backfill`: one run over ``sites``. SIGTERM, SIGINT or SIGHUP stop it after the pages being
    fetched (each decided page is committed); a second signal exits at once (the store stays consistent)."""
    import os
    import signal

    from ingest.run.executor import kill_workers
    from ingest.run.poll import recall_hosts, remember_hosts

    loop = asyncio.get_running_loop()
    db = StoreThread()
    interrupted: list[str] = []
    try:
        async with Fetcher(config.fetch, clock=clock) as fetcher:
            await recall_hosts(db, store, fetcher, clock())
            run = Backfill(config, store, seeds, fetcher, executor, db=db, clock=clock, progress=progress,
                           archives=config.backfill.archives,
                           archive_endpoints=dict(config.backfill.archive_endpoints))

            def on_signal(sig: signal.Signals) -> None:
                if interrupted:
                    log.warning("event=second_signal signal=%s exiting now", sig.name)
                    kill_workers(executor)
                    os._exit(128 + sig)
                log.warning("event=interrupted signal=%s finishing the pages being fetched", sig.name)
                interrupted.append(sig.name)
                run.abort()

            stops = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
            for sig in stops:
                loop.add_signal_handler(sig, on_signal, sig)
            try:
                report = await run.run(sites, max_pages=max_pages, since=since, dry_run=dry_run)
            finally:
                for sig in stops:
                    loop.remove_signal_handler(sig)
            await remember_hosts(db, store, fetcher, clock())
    finally:
        db.close()
    report.interrupted = interrupted[0] if interrupted else None
    return report
