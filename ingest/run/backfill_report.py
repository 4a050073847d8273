"""What a backfill reports: per run (``ingest backfill``'s output, the service's log) and per site as
the store holds it (``ingest status``, the web view's feeds page)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from ingest.store import SqlStore

STOP_REASONS = ("yield", "budget", "exhausted", "deferred")
STOP_WORDS = {"yield": "yield: its recent fetches kept no more than a random draw of its pages would",
              "budget": "budget: the run's page budget was spent", "exhausted": "exhausted: every candidate fetched",
              "deferred": "deferred: the host asked to wait (Retry-After, robots.txt unreachable)"}


@dataclass(frozen=True)
class Ranked:
    """A dry run's view of one candidate."""

    url: str
    prescore: float
    words: tuple[str, ...]
    source: str


@dataclass
class SiteReport:
    site: str
    candidates: int = 0  # known for the site (all sources, fetched or not)
    by_source: dict[str, int] = field(default_factory=dict)
    discovery_requests: int = 0  # this run
    fetched: int = 0  # article pages requested this run
    kept: int = 0
    rejected: int = 0
    duplicates: int = 0
    errors: int = 0  # error, empty or blocked (robots.txt)
    stopped: str | None = None
    best: list[Ranked] = field(default_factory=list)  # a dry run's best-ranked candidates


@dataclass
class BackfillReport:
    per_site: list[SiteReport]
    dry_run: bool = False
    interrupted: str | None = None  # the signal that cut the run short

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.per_site)

    @property
    def stopped(self) -> str | None:
        """The reason that ended the run, when one did: the budget, or the one reason every site stopped for."""
        reasons = {s.stopped for s in self.per_site}
        if "budget" in reasons:
            return "budget"
        return reasons.pop() if len(reasons) == 1 else None

    def as_dict(self) -> dict:
        return {"sites": len(self.per_site), "candidates": self.total("candidates"),
                "discovery_requests": self.total("discovery_requests"), "fetched": self.total("fetched"),
                "kept": self.total("kept"), "rejected": self.total("rejected"),
                "duplicates": self.total("duplicates"), "errors": self.total("errors"),
                "stopped": self.stopped, "dry_run": self.dry_run,
                "per_site": [{k: v for k, v in asdict(s).items() if k != "best" or self.dry_run}
                             for s in self.per_site]}


class BackfillProgress(Protocol):
    def start(self, budget: int | None, pending: int) -> None: ...
    def found(self, n: int) -> None: ...
    def fetched(self, kept: bool) -> None: ...



@dataclass(frozen=True)
class SiteState:
    """A site's backfill as the store holds it (`ingest status`, the web view's feeds page)."""

    site: str
    candidates: int
    pending: int
    fetched: int
    kept: int
    rejected: int
    stopped: str | None
    discovered: float | None

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def stopped_text(self) -> str:
        """Why the site's last run stopped, in words (the web view)."""
        return STOP_WORDS.get(self.stopped or "", self.stopped or "not stopped yet")

    def summary(self) -> str:
        return (f"{self.candidates} candidates, fetched {self.fetched}, kept {self.kept}, rejected {self.rejected}; "
                f"stopped: {self.stopped or 'not yet run'}")


def site_states(store: SqlStore) -> list[SiteState]:
    out = []
    for row in store.backfill_sites():
        counts = store.candidate_counts(row["site"])
        outcomes = store.backfill_outcomes(row["site"])
        total = sum(v for k, v in counts.items() if k != "fetched")
        out.append(SiteState(row["site"], total, total - counts["fetched"], counts["fetched"], outcomes.get("kept", 0),
                             outcomes.get("rejected", 0), row["stopped"], row["discovered"]))
    return out
