"""What a poll did, counted: the figure ``ingest poll --json`` prints and the service logs."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field


@dataclass
class PollSummary:
    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    entries_new: int = 0
    pages_fetched: int = 0
    page_errors: int = 0
    empty: int = 0
    blocked: int = 0  # robots.txt said no
    deferred: int = 0  # not fetched yet: the host asked for quiet (Retry-After) or robots.txt was unreadable
    kept: int = 0
    updated: int = 0  # articles whose text changed in place
    rejected: int = 0
    duplicates: int = 0
    redecided_kept: int = 0  # provisional decisions re-made by a better model: pages that joined the corpus
    redecided_withdrawn: int = 0  # ... and kept articles that left it (to withdrawn/)
    threshold: float | None = None
    corpus_articles: int | None = None  # articles in corpus/ when the poll ended (the files the user finds)
    seconds: float = 0.0
    interrupted: str | None = None  # the signal that cut the poll short
    failures: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the model's, for the user (a topic it cannot separate)

    @property
    def corpus_change(self) -> int:
        """What the poll did to corpus/, in files: kept, plus joined, minus left on re-decision."""
        return self.kept + self.redecided_kept - self.redecided_withdrawn

    def as_dict(self) -> dict:
        return {**asdict(self), "corpus_change": self.corpus_change}

    def add(self, other: PollSummary) -> None:
        """Count ``other`` (another pass of the same poll, or one chunk's decisions) in: every
        counter summed, failures joined."""
        for f in dataclasses.fields(self):
            if f.type == "int":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.threshold = other.threshold if other.threshold is not None else self.threshold
        self.interrupted = self.interrupted or other.interrupted
        self.failures += other.failures
        self.warnings += [w for w in other.warnings if w not in self.warnings]
