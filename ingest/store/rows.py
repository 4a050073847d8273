"""The store contract's typed values: what goes in (NewArticle, PageDoc, Decision, Source)
and what comes out (FeedRow, SearchHit, Health, CheckReport), the same for every backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class StoreError(Exception):
    """The store cannot be used (unwritable folder, corrupt or newer database)."""


class StoreBusy(StoreError):
    """Another process holds the store's writer lock; ``holder`` says who, when it recorded it."""

    def __init__(self, message: str, holder: Any = None) -> None:
        super().__init__(message)
        self.holder = holder  # ingest.store.holder.Holder | None


class SearchError(Exception):
    """A query the full-text engine cannot read."""


@dataclass
class CheckReport:
    """What `ingest check` found (and, with --repair, did)."""

    integrity: list[str] = field(default_factory=list)  # SQLite integrity_check problems
    missing: list[str] = field(default_factory=list)  # rows whose file is gone (deleted by hand?)
    orphans: list[str] = field(default_factory=list)  # files no row knows
    misplaced: list[str] = field(default_factory=list)  # in corpus/ vs withdrawn/ against their row
    temp_files: list[str] = field(default_factory=list)  # left by an interrupted write
    archive: list[str] = field(default_factory=list)  # archived records that are not whole (ingest.store.archive)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.integrity or self.missing or self.orphans or self.misplaced or self.temp_files
                    or self.archive)


@dataclass(frozen=True)
class SearchHit:
    kind: str  # "article" (kept) or "page" (rejected, text still kept)
    id: int  # articles.id or pages.id
    title: str
    url: str
    site: str
    published: str | None
    fetched: float
    score: float | None
    snippet: str  # matched terms between \x02 and \x03 (the caller marks them up)
    rank: float  # bm25: lower is better


@dataclass(frozen=True)
class Health:
    ok: bool
    last_success: float | None  # newest successful feed poll
    last_success_age: float | None  # seconds
    feeds: dict[str, int]  # feeds by state (new, ok, error, failing, disabled)
    store_writable: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class FeedRow:
    id: int
    config_url: str
    url: str
    name: str
    title: str
    active: bool
    enabled: bool
    state: str
    state_reason: str
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    last_poll: float | None
    last_success: float | None
    last_error: str | None
    last_error_at: float | None
    consecutive_errors: int
    errors_since: float | None
    next_poll: float | None
    interval: float | None
    retry_after: float | None


FEED_COLUMNS = frozenset(f for f in FeedRow.__dataclass_fields__ if f != "id")  # what update_feed may set


def feed_row(r: Any) -> FeedRow:
    """A feeds row (any mapping by column name) as a FeedRow: each field named, none taken blindly."""
    return FeedRow(id=r["id"], config_url=r["config_url"], url=r["url"], name=r["name"], title=r["title"],
                   active=bool(r["active"]), enabled=bool(r["enabled"]), state=r["state"],
                   state_reason=r["state_reason"], etag=r["etag"], last_modified=r["last_modified"],
                   content_hash=r["content_hash"], last_poll=r["last_poll"], last_success=r["last_success"],
                   last_error=r["last_error"], last_error_at=r["last_error_at"],
                   consecutive_errors=r["consecutive_errors"], errors_since=r["errors_since"],
                   next_poll=r["next_poll"], interval=r["interval"], retry_after=r["retry_after"])


@dataclass(frozen=True)
class NewArticle:
    url: str
    canonical_url: str
    title: str
    author: str
    site: str
    language: str
    published: str | None
    text: str
    text_hash: str
    score: float
    threshold: float
    terms: tuple[str, ...]
    minhash: bytes | None = None


@dataclass(frozen=True)
class Decision:
    """What the model said of a page."""

    threshold: float
    terms: tuple[str, ...]


@dataclass(frozen=True)
class PageDoc:
    """A page's extracted text and metadata, enough to make it an article later."""

    url: str
    canonical_url: str
    title: str
    text: str
    author: str
    site: str
    language: str
    published: str | None
    text_hash: str


@dataclass(frozen=True)
class Source:
    """One feed entry that led to a page."""

    feed_id: int
    key: str
    link: str
    title: str
    published: str | None
    updated: str | None = None
