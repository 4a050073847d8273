"""The model's CPU work in calls a worker process can run (arguments and results pickle small:
packed term counts and a Model in, a Model or scores out)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from ingest.blobs import unpack
from ingest.judge.model import Model, Score
from ingest.judge.relevance import Scored, TermStats, learn_model, score_stream


def fit_window(seeds: Sequence[str], window: Sequence[bytes], labels: Sequence[bool | None], language: str,
               fixed: float | None, rescore: bool = False) -> tuple[Model, list[Score]]:
    """Learn the model from the window (packed term counts, as stored) and the user's verdicts on it;
    with ``rescore``, also the window's own scores under it (to re-decide provisional pages)."""
    counts = Unpacked(window)
    model = learn_model(seeds, counts, labels, stats=TermStats(language), fixed=fixed)
    return model, model.score(counts) if rescore else []


class Unpacked(Sequence[dict[str, int]]):
    """Packed term counts read as a sequence of dicts, each unpacked when it is read: the model
    goes through a window of thousands of pages without holding them all as dicts."""

    def __init__(self, packed: Sequence[bytes]) -> None:
        self.packed = packed

    def __len__(self) -> int:
        return len(self.packed)

    @overload
    def __getitem__(self, i: int) -> dict[str, int]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, int]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, int] | list[dict[str, int]]:
        if isinstance(i, slice):
            return [unpack(b) for b in self.packed[i]]
        return unpack(self.packed[i])

    def __iter__(self) -> Iterator[dict[str, int]]:
        return (unpack(b) for b in self.packed)


def score_with(model: Model, batch: Sequence[dict[str, int]]) -> list[Score]:
    """Scores of a batch of term counts under a learned model."""
    return model.score(batch)


def score_packed(seeds: Sequence[str], window: Sequence[bytes], labels: Sequence[bool | None], language: str,
                 fixed: float | None, batch: Sequence[dict[str, int]] = ()) -> Scored:
    """Score the window (packed as stored) followed by ``batch`` (term counts) as one stream.
    Pure CPU: may run in a worker process."""
    counts = [unpack(b) for b in window] + list(batch)
    return score_stream(seeds, counts, list(labels) + [None] * len(batch), stats=TermStats(language), fixed=fixed)
