"""The store contract: what the rest of seed-ingest may ask of a store, whatever the backend.

``ingest.store.sqlite.Store`` implements it (mypy checks that it does: see the
end of that module); a PostgreSQL backend must implement the same methods with
the same meaning, and pass the same contract tests (tests/store/test_store.py).
Rows come back as :class:`Record`: read by column name (``row["title"]``),
which sqlite3.Row and psycopg's dict rows both are; feeds come back typed
(:class:`FeedRow`). Nothing outside the store writes SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ingest.store.rows import CheckReport, Decision, FeedRow, Health, NewArticle, PageDoc, SearchHit, Source


class Record(Protocol):
    """A row read by column name."""

    def __getitem__(self, key: str | int, /) -> Any: ...
    def keys(self) -> list[str]: ...


class StoreContract(Protocol):
    root: Path
    corpus: Path

    def add_article(self, art: NewArticle, url: str, sources: Sequence[Source], now: float, final_url: str | None,
                    counts: dict[str, int] | None = None) -> tuple[int, str]:
        """Store a new article: corpus file + rows, atomically. Returns (id, path)."""
        ...

    def announce(self, command: str, web: str = "") -> None:
        """Say which command holds the store (SQLite); nothing on a shared store."""
        ...

    def article(self, article_id: int) -> Record:
        ...

    def article_by(self, *, canonical_url: str | None = None, text_hash: str | None = None) -> int | None:
        ...

    def article_by_url(self, url: str, key: str) -> int | None:
        """The article first fetched from ``url``, or stored under the identity ``key``."""
        ...

    def article_copies(self, article_id: int) -> Sequence[Record]:
        """The other pages found to be this article's story (duplicates), newest first."""
        ...

    def article_file(self, art: Record) -> Path:
        """Where an article's file is now: the corpus folder, withdrawn/ (the user took it out) or
        dropped/ (a re-decision of the model did)."""
        ...

    def article_page(self, article_id: int) -> Record | None:
        """The page row that made this article (its verdict target)."""
        ...

    def article_sources(self, article_id: int) -> Sequence[Record]:
        ...

    def article_text(self, article_id: int) -> str | None:
        """An article's text as its corpus file holds it (None when the file is gone)."""
        ...

    def articles(self) -> Iterator[Record]:
        """The articles in the corpus folder (not the withdrawn ones), in file order."""
        ...

    def articles_between(self, since: float, until: float) -> Sequence[Record]:
        """Articles kept, or changed in place, in (since, until]."""
        ...

    def check(self, repair: bool = False) -> CheckReport:
        """Compare the index with the folder: database integrity, every row's file, every file's"""
        ...

    def close(self) -> None:
        ...

    def defer_page(self, url: str, link: str, sources: Sequence[Source], now: float, until: float, reason: str) -> bool:
        """A page not fetched because its host said not now: queue it for ``until`` without counting"""
        ...

    def digest_rows(self) -> Sequence[Record]:
        ...

    def digests_by_ids(self, ids: Sequence[int]) -> Sequence[Record]:
        ...

    def due_deferred(self, now: float, limit: int = 10000) -> list[tuple[str, str, list[Source]]]:
        """Deferred pages whose time has come: (key, link as given, sources)."""
        ...

    def due_feeds(self, now: float) -> list[FeedRow]:
        """Pollable feeds whose next poll time has come (never-polled feeds have one set by the service)."""
        ...

    def expire_rejected_texts(self, before: float) -> int:
        """Drop the kept texts of rejected pages fetched before ``before`` (score and terms stay)."""
        ...

    def feed_counts(self) -> dict[int, tuple[int, int]]:
        """feed id -> (entries seen, articles kept)."""
        ...

    def feeds(self, active_only: bool = True) -> list[FeedRow]:
        ...

    def finish_run(self, run_id: int, now: float, stats: dict) -> None:
        ...

    def health(self, now: float, default_interval: float) -> Health:
        """Is ingestion alive? Unhealthy when no poll has succeeded within twice the longest"""
        ...

    def host_memory(self, now: float, hosts: Collection[str] | None = None
                    ) -> tuple[dict[str, float], dict[str, tuple[float, str, str | None]]]:
        """(host -> quiet until, origin -> (expires, state, robots.txt)): what has not expired; with
        ``hosts``, only theirs."""
        ...

    def in_stream(self, page_id: int) -> bool:
        ...

    def last_digest_id(self) -> int | None:
        ...

    def last_digest_until(self) -> float | None:
        ...

    def verdict_outcomes(self) -> list[tuple[bool, str]]:
        """(relevant?, the model's decision it judged) for each verdict that recorded the decision."""
        ...

    def put_meta(self, key: str, value: str) -> None:
        """A small named value (the model's last report) in the meta table."""
        ...

    def get_meta(self, key: str) -> str | None:
        ...

    def window_state(self, after: int) -> tuple[int, int, int, float]:
        """(window pages with an id above ``after``, the highest id in the window, how many verdicts,
        when the newest was given)."""
        ...

    def learning_counts(self) -> tuple[int, int, int, int]:
        """(pages in the model's window, relevant verdicts, irrelevant verdicts, verdicts not applied yet)."""
        ...

    def list_articles(self, *, before: tuple[str, int] | None = None, limit: int = 50, feed_id: int | None = None,
                      site: str | None = None, since: float | None = None, until: float | None = None,
                      min_score: float | None = None) -> Sequence[Record]:
        """Corpus articles newest first by the day they were published (fetched when unknown), ``before``
        the (day, id) of the last one shown, for stable pagination."""
        ...

    def metrics_snapshot(self) -> dict:
        """What /metrics reads from the store at scrape time."""
        ...

    def near_candidates(self, keys: Sequence[int]) -> list[tuple[int, bytes]]:
        """Articles sharing an LSH band key, with their signatures."""
        ...

    def near_misses(self, limit: int = 50) -> Sequence[Record]:
        """Rejected pages whose text is kept, scored at least half their threshold, newest first:"""
        ...

    def next_due(self, exclude: Iterable[int] = ()) -> float | None:
        """The earliest next poll time of the active feeds not in ``exclude``."""
        ...

    def next_page_due(self, exclude: Collection[str] = ()) -> float | None:
        """When the earliest waiting page not in ``exclude`` may be fetched."""
        ...

    def page(self, url: str) -> Record | None:
        ...

    def page_by_id(self, page_id: int) -> Record | None:
        ...

    def page_doc(self, row: Record) -> PageDoc | None:
        """The page's text and metadata: its corpus file for a kept article, else the kept rejected text."""
        ...

    def page_sources(self, page_id: int) -> list[Source]:
        ...

    def pages_by_ids(self, ids: Sequence[int]) -> Mapping[int, Record]:
        ...

    def feed_entries(self, feed_id: int, limit: int = 50) -> Sequence[Record]:
        """The feed's newest entries with what became of each (outcome, score, threshold, reason, article)."""
        ...

    def add_candidates(self, site: str, found: Iterable[tuple[str, str, str, datetime | None, str]],
                       now: float) -> int:
        """Record backfill candidates (link, source, found_in, date, title); returns how many are new."""
        ...

    def set_prescores(self, scores: Iterable[tuple[int, float]]) -> None:
        ...

    def pending_candidates(self, site: str, limit: int = 100) -> Sequence[Record]:
        """The site's candidates not fetched yet, best pre-score first."""
        ...

    def candidate_counts(self, site: str) -> dict[str, int]:
        ...

    def mark_candidates_fetched(self, ids: Sequence[int], now: float) -> None:
        ...

    def feed_history(self, feed_id: int, limit: int = 20) -> Sequence[Record]:
        """The feed's latest changes of state and interval (at, state, interval, reason), newest first."""
        ...

    def poll_feeds_now(self, now: float, feed_ids: Collection[int] | None = None) -> int:
        """Make these feeds (all pollable ones with None) due now; returns how many."""
        ...

    def feeds_of_pages(self, ids: Sequence[int]) -> Mapping[int, list[int]]:
        """Page id -> the ids of the feeds that listed it."""
        ...

    def pages_by_urls(self, urls: Sequence[str]) -> Mapping[str, Record]:
        ...

    def pages_since(self, since: float) -> Sequence[Record]:
        """Kept and rejected pages fetched since ``since`` (the ones rescore can re-decide)."""
        ...

    def pending_verdicts(self) -> Sequence[Record]:
        ...

    def pollable_feeds(self, now: float) -> list[FeedRow]:
        """Active feeds that may be fetched now: not disabled, no Retry-After pending."""
        ...

    def record_delivery(self, digest_id: int, target: str, now: float, error: str | None) -> None:
        ...

    def record_digest(self, since: float, until: float, items: int, path: str | None) -> int:
        ...

    def record_entries(self, sources: Sequence[Source], page_id: int | None, now: float,
                       article_id: int | None = None) -> None:
        """Remember entries as seen (and, for an article, as its sources)."""
        ...

    def record_page(self, url: str, sources: Sequence[Source], now: float, *, outcome: str, reason: str = "",
                    final_url: str | None = None, score: float | None = None, article_id: int | None = None,
                    counts: dict[str, int] | None = None, decision: Decision | None = None,
                    doc: PageDoc | None = None) -> int:
        """One page that will not become a new article (rejected, duplicate, empty, error)."""
        ...

    def recover(self) -> dict[str, int]:
        """Finish or undo corpus writes that a crash interrupted."""
        ...

    def restore_article(self, article_id: int) -> None:
        """Bring a withdrawn article back to the corpus folder, under the same file name."""
        ...

    def review_state(self) -> tuple:
        """Changes whenever what `review` would pick can change (the window, the verdicts)."""
        ...

    def rolling_since(self, n: int) -> float | None:
        """A time just before the n-th newest article was fetched (None: no articles)."""
        ...

    def save_host_memory(self, quiet: dict[str, float], robots: dict[str, tuple[float, str, str | None]],
                         now: float) -> None:
        ...

    def search(self, query: str, *, limit: int = 20, offset: int = 0, rejected: bool = False,
               feed_id: int | None = None, site: str | None = None, since: float | None = None,
               until: float | None = None, min_score: float | None = None) -> list[SearchHit]:
        """Full-text search (FTS5 syntax: words, "phrases", prefix*, AND/OR/NOT, NEAR), best first"""
        ...

    def seen_entries(self, feed_id: int, keys: Sequence[str]) -> dict[str, str | None]:
        """The keys among ``keys`` this feed has recorded, with each one's stored ``updated`` date."""
        ...

    def set_verdict(self, page_id: int, url: str, relevant: bool, now: float, counts: dict[str,
                    int] | None = None, decided: str | None = None) -> None:
        """Record a verdict (the newest one for a page wins); the corpus follows in apply_verdicts."""
        ...

    def sites(self) -> list[str]:
        ...

    def start_run(self, kind: str, now: float) -> int:
        ...

    def state_key(self) -> tuple:
        """Cheap to read, and different whenever the corpus, the feeds' counts or the verdicts may"""
        ...

    def stream(self) -> list[tuple[int, bytes]]:
        """The model's window: (page id, packed term counts), oldest first."""
        ...

    def sync_feeds(self, feeds: Iterable[tuple[str, str] | tuple[str, str, bool]]) -> None:
        """Make the feeds table match the config: (url, name[, enabled]). Add new feeds, mark removed"""
        ...

    def undelivered_digests(self, target: str, since: float) -> list[int]:
        """Digests created after ``since`` whose delivery to ``target`` was tried and failed."""
        ...

    def update_article(self, article_id: int, title: str, text: str, text_hash: str, minhash: bytes | None, url: str,
                       sources: Sequence[Source], now: float) -> str:
        """The article changed in place: rewrite its file and row (same path), count the revision."""
        ...

    def update_feed(self, feed_id: int, **fields: object) -> None:
        """Set some of a feed's columns; the names are checked against FEED_COLUMNS (never SQL from data)."""
        ...

    def verdict_applied(self, verdict_id: int, now: float) -> None:
        ...

    def verdicts(self) -> dict[int, bool]:
        """page id -> the user's verdict (True: relevant)."""
        ...

    def withdraw_article(self, article_id: int, by: str, now: float) -> None:
        """Take an article out of the corpus folder: the row says so first, then the file moves to"""
        ...
