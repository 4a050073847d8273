"""The model's CPU work in calls a worker process can run (arguments and results pickle small:
packed term counts and a Model in, a Model or scores out)."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.blobs import unpack
from ingest.judge.model import Model, Score
from ingest.judge.relevance import Scored, TermStats, learn_model, score_stream


def fit_window(seeds: Sequence[str], window: Sequence[bytes], labels: Sequence[bool | None], language: str,
               fixed: float | None, rescore: bool = False) -> tuple[Model, list[Score]]:
    """Learn the model from the window (packed term counts, as stored) and the user's verdicts on it;
    with ``rescore``, also the window's own scores under it (to re-decide provisional pages)."""
    counts = [unpack(b) for b in window]
    model = learn_model(seeds, counts, labels, stats=TermStats(language), fixed=fixed)
    return model, model.score(counts) if rescore else []


def score_with(model: Model, batch: Sequence[dict[str, int]]) -> list[Score]:
    """Scores of a batch of term counts under a learned model."""
    return model.score(batch)


def score_packed(seeds: Sequence[str], window: Sequence[bytes], labels: Sequence[bool | None], language: str,
                 fixed: float | None, batch: Sequence[dict[str, int]] = ()) -> Scored:
    """Score the window (packed as stored) followed by ``batch`` (term counts) as one stream.
    Pure CPU: may run in a worker process."""
    counts = [unpack(b) for b in window] + list(batch)
    return score_stream(seeds, counts, list(labels) + [None] * len(batch), stats=TermStats(language), fixed=fixed)
