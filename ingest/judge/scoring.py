"""Scoring a batch of pages with the model's window, in one call a worker process can run
(arguments and result pickle small: packed term counts in, scores out)."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.blobs import unpack
from ingest.judge.relevance import Scored, TermStats, score_stream


def score_window(seeds: Sequence[str], window: Sequence[bytes], batch: Sequence[dict[str, int]],
                 labels: Sequence[bool | None], language: str, fixed: float | None) -> Scored:
    """Score the model's window (packed term counts, as stored) and a batch in one stream;
    returns the batch's scores. CPU work (a fraction of a second for 3,000 texts): runs in a worker."""
    scored = score_packed(seeds, window, labels, language, fixed, batch)
    return Scored(scored.scores[len(window):], scored.threshold)


def score_packed(seeds: Sequence[str], window: Sequence[bytes], labels: Sequence[bool | None], language: str,
                 fixed: float | None, batch: Sequence[dict[str, int]] = ()) -> Scored:
    """Score the window (packed as stored) followed by ``batch`` (term counts) as one stream.
    Pure CPU: may run in a worker process."""
    counts = [unpack(b) for b in window] + list(batch)
    return score_stream(seeds, counts, list(labels) + [None] * len(batch), stats=TermStats(language), fixed=fixed)
