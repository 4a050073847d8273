"""The model now: the window's scores under the model learned from the seeds and every verdict as
they are at this moment, and the threshold that applies to each page (a feed's own threshold where
the page came from one; ingest.judge.decide), computed once and read by every surface that shows a
score: the web view's pages, the digests, `review`, `export`, `status`. The same page therefore has
the same numbers on every screen at the same moment; the score a page was first decided at stays
in the store as its history (``pages.score``, ``articles.score``).

Three phases, as rescore's: ``read`` takes what it needs from the store, ``learn`` is pure CPU
(a thread or a worker process), ``Standing`` answers lookups.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.judge.quality import ModelReport
from ingest.run.feedback import own_thresholds, page_thresholds

if TYPE_CHECKING:
    from ingest.config import Config
    from ingest.judge.model import Score, Scored
    from ingest.out.histogram import Distribution
    from ingest.store import SqlStore


@dataclass(frozen=True)
class Window:
    """What learning the model now needs from the store (phase 1)."""

    ids: list[int]
    counts: list[bytes]
    labels: list[bool | None]
    own: dict[int, float] = field(default_factory=dict)  # page id -> its feeds' own threshold (lowest)
    articles: dict[int, int] = field(default_factory=dict)  # article id -> its kept page in the window


def read(store: SqlStore, config: Config) -> Window:
    window = store.stream()
    verdicts = store.verdicts()
    ids = [pid for pid, _ in window]
    rows = store.pages_by_ids(ids)
    articles = {r["article_id"]: pid for pid, r in rows.items() if r["article_id"] is not None
                and r["outcome"] == "kept"}
    return Window(ids, [b for _, b in window], [verdicts.get(pid) for pid in ids],
                  own_thresholds(store, config, ids), articles)


@dataclass(frozen=True)
class Standing:
    """Every window page's score under the model learned now, and the threshold that applies to it."""

    learned: float
    window: Window
    scored: Scored
    picture: Distribution

    @property
    def threshold(self) -> float:
        """The model's own threshold (a page from a feed with its own threshold: ``page_threshold``)."""
        return self.scored.threshold.value

    def page_threshold(self, pid: int) -> float:
        return page_thresholds([pid], self.threshold, self.window.own)[0]

    def page(self, pid: int) -> tuple[Score, float] | None:
        """(score, the threshold that applies) of a window page, or None for a page outside the window."""
        i = self._index.get(pid)
        return None if i is None else (self.scored.scores[i], self.page_threshold(pid))

    def article(self, aid: int) -> tuple[float, float] | None:
        pid = self.window.articles.get(aid)
        found = self.page(pid) if pid is not None else None
        return None if found is None else (found[0].score, found[1])

    def by_article(self) -> dict[int, tuple[float, float]]:
        """Article id -> (score, threshold) for the kept articles of the window."""
        return {aid: found for aid in self.window.articles if (found := self.article(aid)) is not None}

    def report(self, report: ModelReport) -> ModelReport:
        """The model box: the store's record of verdicts and estimates, with this model's state."""
        th = self.scored.threshold
        return dataclasses.replace(report, threshold=th.value, model=th.model, share=th.share, pages=th.stream_n,
                                   learned=self.learned, warnings=th.warnings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {pid: i for i, pid in enumerate(self.window.ids)})

    _index: Mapping[int, int] = field(default_factory=dict, init=False, repr=False, compare=False)


def learn(seeds: Sequence[str], window: Window, language: str, fixed: float | None, now: float) -> Standing:
    """Phase 2, pure CPU: the model learned from the seeds, the window and the verdicts (as
    rescore learns it), the window's scores under it, and what the histogram draws."""
    from ingest.out.histogram import window_picture

    scored, picture = window_picture(seeds, window.counts, window.labels, language, fixed)
    return Standing(now, window, scored, picture)


def standing(store: SqlStore, seeds: Sequence[str], config: Config, now: float | None = None) -> Standing:
    """All three phases in this process (the CLI's commands)."""
    rel = config.relevance
    return learn(seeds, read(store, config), rel.language, rel.threshold, time.time() if now is None else now)
