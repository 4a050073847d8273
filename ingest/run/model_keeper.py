"""The process's one relevance model: learned from the store's window, kept across chunks and
polls, learned again only when the window has grown by a step, the user's verdicts or the
seeds changed. Every page is scored by the model alone, so the same pages get the same
decisions however a poll batches them or how many workers share them: a chunk is cut where
the model is due to be learned again (ChunkDecider asks ``room``), not where batching falls.

The step grows with the window: the first model comes after MIN_STREAM pages (until then the
cosine model over the word-frequency prior decides), the next after as many again, doubling up
to REFRESH_PAGES. A model learned from fewer than MATURE pages decides provisionally: when the
next model is learned, the pages it decided (those in the window the user has not judged) are
re-decided by the new one (ingest.run.rescore.redecide), so a new store's first pages end up
decided as if the whole first poll had been seen at once. Measured in bench/relevance.py
--arrival (docs/relevance.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from ingest.config import RelevanceSettings
from ingest.judge.model import Model, Score
from ingest.judge.relevance import MIN_STREAM
from ingest.judge.scoring import fit_window, score_with
from ingest.run.feedback import MODEL_META, Applied, window_stream
from ingest.run.memory import then_release
from ingest.run.rescore import redecide
from ingest.store import SqlStore, StoreThread

log = logging.getLogger("ingest")

REFRESH_PAGES = 500  # the model is learned again once the window has this many new pages (at most)
MATURE = 2000  # a model learned from fewer window pages decides provisionally (see the module's docstring)


@dataclass(frozen=True)
class Fitted:
    """A learned model and the store's state it learned from."""

    model: Model
    upto: int  # the highest window page id it learned from (0: an empty window)
    n: int  # window pages it learned from
    verdicts: tuple[int, float]  # (how many, newest time) when learned
    key: tuple[str, str, float | None]  # digest of the seed texts, language, fixed threshold

    @property
    def step(self) -> int:
        """New window pages after which the model is learned again."""
        return min(max(MIN_STREAM, self.n), REFRESH_PAGES)


def model_key(seeds: Sequence[str], rel: RelevanceSettings) -> tuple[str, str, float | None]:
    """What, besides the window and the verdicts, a model is learned from."""
    h = hashlib.blake2b(digest_size=16)
    for s in seeds:
        h.update(s.encode())
        h.update(b"\0")
    return h.hexdigest(), rel.language, rel.threshold


class ModelKeeper:
    """Holds the model for every poll of a process (the service keeps one for its lifetime)."""

    def __init__(self, executor: Executor, *, clock: Callable[[], float]) -> None:
        self.executor, self.clock = executor, clock
        self.fitted: Fitted | None = None
        self.fits = 0  # how many times a model was learned (for tests and the log)
        self._lock = asyncio.Lock()

    async def current(self, db: StoreThread, store: SqlStore, seeds: Sequence[str], rel: RelevanceSettings,
                      own: Mapping[int, float | None] | None = None) -> tuple[Model, int, Applied]:
        """The model to decide the next pages with, how many new window pages it may still decide
        before it is due again (at least 1), and what re-deciding provisional pages changed (when
        the model was learned again just now; ``own``: the feeds' own thresholds, by feed id)."""
        async with self._lock:
            f = self.fitted
            key = model_key(seeds, rel)
            new, _, n_verdicts, newest = await db(store.window_state, f.upto if f else 0)
            if f is not None and f.key == key and f.verdicts == (n_verdicts, newest) and new < f.step:
                return f.model, f.step - new, Applied()
            applied = await self._refit(db, store, seeds, rel, key, own)
            assert self.fitted is not None
            return self.fitted.model, self.fitted.step, applied

    async def settle(self, db: StoreThread, store: SqlStore, seeds: Sequence[str], rel: RelevanceSettings,
                     own: Mapping[int, float | None] | None = None) -> Applied:
        """At a poll's end: while the model is provisional, learn it again from the whole window when the
        poll added pages since it was learned, and re-decide the provisional pages with it. The last pages
        of a poll were otherwise decided by a model that never saw them, so the corpus depended on the
        order pages arrived in (Jaccard 0.92-0.97 between two orders of one 1,500-page stream)."""
        async with self._lock:
            f = self.fitted
            if f is None or f.n >= MATURE:
                return Applied()
            new, _, _, _ = await db(store.window_state, f.upto)
            if not new:
                return Applied()
            return await self._refit(db, store, seeds, rel, model_key(seeds, rel), own, whole=True)

    async def _refit(self, db: StoreThread, store: SqlStore, seeds: Sequence[str], rel: RelevanceSettings,
                     key: tuple[str, str, float | None], own: Mapping[int, float | None] | None,
                     whole: bool = False) -> Applied:
        """Learn the model again; re-decide the provisional pages with it. ``whole`` (a poll's end): only
        if it has seen the whole window when it applies: PostgreSQL workers finish their passes in any
        order, and a model learned before another worker's last pages would otherwise have the last word
        (the last worker to commit re-decides with the whole window)."""
        ids, window, labels = await db(window_stream, store)
        _, _, n_verdicts, newest = await db(store.window_state, max(ids, default=0))
        prev = self.fitted
        # the pages decided so far were decided provisionally: by a model learned from fewer than MATURE
        # pages (on a process's first model: the window is still that small, so every model before was)
        provisional = prev.n < MATURE if prev is not None else 0 < len(ids) < MATURE
        args = (list(seeds), window, labels, rel.language, rel.threshold, provisional)
        try:
            run = asyncio.get_running_loop().run_in_executor
            model, scores = await run(self.executor, then_release, fit_window, *args)
        except Exception as exc:  # a crashed worker: learn here rather than lose the poll
            log.error("event=scoring_worker_failed error=%r", exc)
            model, scores = fit_window(*args)
        self.fitted = Fitted(model, max(ids, default=0), len(ids), (n_verdicts, newest), key)
        self.fits += 1
        th = model.threshold
        log.info("event=model_learned pages=%d verdicts=%d model=%s threshold=%.3f share=%.3f separation=%.2f",
                 len(ids), n_verdicts, th.model, th.value, th.share, th.separation)
        # what `ingest status`, the web view and the digest show of it (ingest.run.feedback.model_report)
        await db(store.put_meta, MODEL_META, json.dumps({
            "learned": self.clock(), "pages": len(ids), "model": th.model, "threshold": th.value,
            "share": th.share, "separation": th.separation, "warnings": list(th.warnings)}))
        if not provisional or not scores:
            return Applied()
        upto = max(ids, default=0)

        def apply() -> Applied:
            if whole and store.window_state(upto)[0]:
                return Applied()
            return redecide(store, ids, scores, model.threshold.value, self.clock(), own)

        applied = await db(apply)
        if applied.added or applied.withdrawn or applied.restored:
            log.info("event=redecided pages=%d joined=%d withdrawn=%d restored=%d", len(ids), len(applied.added),
                     len(applied.withdrawn), len(applied.restored))
        return applied

    async def score(self, model: Model, batch: Sequence[dict[str, int]]) -> list[Score]:
        """Scores of term counts under ``model``, in a worker process (the event loop stays free)."""
        if not batch:
            return []
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, score_with, model, list(batch))
        except Exception as exc:  # a crashed worker: score here rather than lose the poll
            log.error("event=scoring_worker_failed error=%r", exc)
            return score_with(model, batch)
