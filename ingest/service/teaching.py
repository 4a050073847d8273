"""The service's side of teaching: verdicts take effect within seconds, both ways.

Every few seconds (the service's ``feedback`` job) the verdicts that `ingest mark` or the web view
recorded are applied to the corpus folder; when any was, the recent pages are re-decided with the
model learned again from the seeds and every verdict, and the result is applied both ways (pages
that now pass join, kept articles that now fall below leave, withdrawn "by rescore" so a later model
can bring them back). The same happens when the seed files change, and when `ingest rescore
--apply` asks (it cannot take the store while the service holds it: it leaves a request in the
store's meta table and waits for the answer here, ``RESCORE_RESULT``).

Reads and writes go through the service's store thread; the model is learned in a worker process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

from ingest.config import Config
from ingest.run.rescore import RESCORE_REQUEST, RESCORE_RESULT
from ingest.store import SqlStore, StoreThread

log = logging.getLogger("ingest")
T = TypeVar("T")


def one_at_a_time(store: SqlStore, job: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` holding the store's lock for ``job`` (PostgreSQL: an advisory lock; SQLite's one
    writer needs none)."""
    with store.exclusive([f"job:{job}"]):
        return fn(*args, **kwargs)


class Teaching:
    def __init__(self, db: StoreThread, store: Callable[[], SqlStore], executor: Executor,
                 current: Callable[[], tuple[Config, Sequence[str]]], clock: Callable[[], float],
                 stopping: asyncio.Event) -> None:
        self.db, self.store, self.executor, self.current = db, store, executor, current
        self.clock, self.stopping = clock, stopping
        self.running: asyncio.Future | None = None
        self.again: tuple[str, str | None] | None = None  # asked for while one ran: once more, after it
        self.asked: str | None = None  # the last `rescore --apply` request taken

    async def apply_queued(self) -> None:
        """Apply the verdicts recorded since the last look; re-decide the rest when there were any, or
        when `ingest rescore --apply` asked."""
        from ingest.run.feedback import apply_verdicts

        store = self.store()
        try:
            # workers sharing a database apply each verdict once: one at a time, the others find none left
            done = await self.db(lambda: one_at_a_time(store, "verdicts", apply_verdicts, store, self.clock()))
            for path in done.added + done.restored:
                log.info("event=verdict_applied action=added path=%s", path)
            for path in done.withdrawn:
                log.info("event=verdict_applied action=withdrawn path=%s", path)
            for url in done.missing:
                log.warning("event=verdict_not_applied page=%s reason='text no longer kept'", url)
            if done.judged:
                self.rescore("verdicts")
            request = await self.db(store.get_meta, RESCORE_REQUEST)
            if request is not None and request != self.asked:
                done_for = await self.db(store.get_meta, RESCORE_RESULT)
                if done_for is None or json.loads(done_for).get("request") != request:
                    self.asked = request
                    self.rescore("asked by ingest rescore --apply", request)
        except Exception:
            log.exception("event=verdicts_failed")

    def rescore(self, why: str, request: str | None = None) -> None:
        """Re-decide the recent pages now, or right after the re-decision running now (with the newest
        verdicts and seeds: one more, however many asked meanwhile)."""
        if self.running is not None and not self.running.done():
            if self.again is None or request is not None:
                self.again = (why, request)
            return
        self.running = asyncio.ensure_future(self._rescore(why, request))
        self.running.add_done_callback(self._next)

    def _next(self, _: asyncio.Future) -> None:
        if self.again is not None and not self.stopping.is_set():
            why, request = self.again
            self.again = None
            self.rescore(why, request)

    async def _rescore(self, why: str, request: str | None) -> None:
        from ingest.run.rescore import apply_rescore, plan_rescore, report_dict, score_rescore

        store = self.store()
        try:
            config, seeds = self.current()
            rel = config.relevance
            plan = await self.db(plan_rescore, store, self.clock() - rel.keep_rejected, config)
            ids, window, texts = plan.stream()
            scored = await asyncio.get_running_loop().run_in_executor(
                self.executor, score_rescore, seeds, ids, window, texts, plan.verdicts, rel.language, rel.threshold)
            if self.stopping.is_set():
                return
            report = await self.db(lambda: one_at_a_time(store, "rescore", apply_rescore, store, plan, ids, scored,
                                                         self.clock(), apply=True))
            a = report.applied
            log.info("event=rescored reason=%r pages=%d threshold=%.3f added=%d restored=%d withdrawn=%d", why,
                     report.pages, report.threshold or 0.0, len(a.added), len(a.restored), len(a.withdrawn))
            for it in report.below:
                log.info("event=rescore_left page=%s id=%s score=%.3f threshold=%.3f "
                         "hint='ingest mark %s --relevant brings it back for good'",
                         it.url, it.id, it.score, it.threshold, it.id)
            if request is not None:
                answer = json.dumps({"request": request, "report": report_dict(report, True)})
                await self.db(store.put_meta, RESCORE_RESULT, answer)
        except Exception:
            log.exception("event=rescore_failed")
