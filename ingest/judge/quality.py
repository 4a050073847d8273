"""What the model is and how well it does, as the user can see it (`ingest status`, the web
view, the digest): the last model learned, the verdicts so far, and precision and recall
estimated from them.

The estimates judge the model's own decisions: each verdict records whether the model had
kept or rejected the page when the user judged it (never the corpus after the user's earlier
verdicts), so they are out of sample. `ingest review` asks about the pages nearest the
threshold, the hardest ones: on them the model errs more than on the whole corpus, so both
figures are pessimistic. The interval is Wilson's 95 % score interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from ingest.judge.relevance import CANNOT_SEPARATE


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float  # 95 % interval
    high: float
    n: int  # verdicts it rests on

    def __str__(self) -> str:
        return f"{self.value:.0%} (95 % interval {self.low:.0%}-{self.high:.0%}, {self.n} verdicts)"


def wilson(k: int, n: int, z: float = 1.96) -> Estimate | None:
    """k successes in n trials: the share with Wilson's score interval; None without trials."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(round(p, 4), round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4), n)


# fewer verdicts than this say nothing worth printing: 1 verdict makes "precision 0 %", 5 an interval of 0-52 %
MIN_VERDICTS = 10


def judged_counts(outcomes: Iterable[tuple[bool, str]]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) among the model's judged decisions."""
    tp = fp = fn = 0
    for relevant, decided in outcomes:
        kept = decided == "kept"
        tp += relevant and kept
        fp += (not relevant) and kept
        fn += relevant and not kept
    return tp, fp, fn


def estimates(outcomes: Iterable[tuple[bool, str]]) -> tuple[Estimate | None, Estimate | None]:
    """(precision, recall) from (relevant?, the model's decision) pairs: precision among the kept
    pages judged, recall among the pages judged relevant; None where fewer than MIN_VERDICTS."""
    tp, fp, fn = judged_counts(outcomes)
    return (wilson(tp, tp + fp) if tp + fp >= MIN_VERDICTS else None,
            wilson(tp, tp + fn) if tp + fn >= MIN_VERDICTS else None)


@dataclass(frozen=True)
class ModelReport:
    learned: float | None  # when the model was last learned (None: not yet)
    pages: int  # window pages it learned from
    model: str  # "logistic", "cosine", or "none" before the first poll
    threshold: float | None
    share: float  # estimated on-topic share of the stream
    separation: float  # share of what it keeps that scores clearly above the threshold
    warnings: tuple[str, ...]
    relevant: int  # verdicts so far
    irrelevant: int
    precision: Estimate | None
    recall: Estimate | None
    judged_kept: int = 0  # verdicts on pages the model had kept (what precision rests on)
    judged_relevant: int = 0  # pages judged relevant (what recall rests on)

    def precision_text(self) -> str:
        return str(self.precision) if self.precision else \
            f"n/a (needs {MIN_VERDICTS} verdicts on kept pages, has {self.judged_kept})"

    def recall_text(self) -> str:
        return str(self.recall) if self.recall else \
            f"n/a (needs {MIN_VERDICTS} pages judged relevant, has {self.judged_relevant})"

    @property
    def separable(self) -> bool:
        head = CANNOT_SEPARATE.split("(", 1)[0]
        return not any(w.startswith(head) for w in self.warnings)

    def as_dict(self) -> dict:
        return asdict(self)
