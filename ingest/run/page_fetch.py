"""Fetching one page of a poll: robots.txt, the request (the fetcher's politeness), deferral when
the host asks for quiet, and extraction in a worker process. The result is what the chunk's
decisions need: the analysed page, a skip with its reason, or a deferral with its time."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.judge.decide import Deferred, Outcome, Skipped
from ingest.sources.fetch import NO_OPTIONS, ROBOTS_UNREACHABLE, Fetcher, RequestOptions
from ingest.sources.related import related_links
from ingest.store import Source
from ingest.store.archive import Built, build_records
from ingest.text.analysis import Analysed, analyse

if TYPE_CHECKING:
    from ingest.run.metrics import Metrics  # the service's, made with its web view

HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "")

PageResult = Analysed | Skipped | Deferred


@dataclass(frozen=True)
class Linked(Analysed):
    """An analysed page with the related-story links it holds: (URL, link text)."""

    links: tuple[tuple[str, str], ...] = ()


def analyse_linked(html: bytes, url: str, content_type: str = "") -> Linked | None:
    """``analyse`` and the page's related-story links, in one pass of a worker process."""
    a = analyse(html, url, content_type)
    if a is None:
        return None
    links = tuple(related_links(html, url)) if "html" in content_type.lower() or not content_type else ()
    return Linked(**{f.name: getattr(a, f.name) for f in dataclasses.fields(Analysed)}, links=links)


@dataclass
class PageJob:
    """One page of a poll, fetched once whatever the number of feeds listing it."""

    key: str  # identity (normalised link): the pages row
    link: str  # as the feed gave it: what is fetched
    sources: list[Source]
    feed_ids: set[int]
    options: RequestOptions = NO_OPTIONS  # of the first feed that listed it
    task: asyncio.Future | None = None
    refresh: bool = False  # a known entry whose "updated" date moved: the article may have changed
    fetched: bool = False  # the request is done (extraction may still run)
    holds_room: bool = False  # holds one of the poll's places (two chunks' worth)
    extracting: bool = False  # fetched, with a body for the extraction processes (counted in the poll's backlog)
    # False: the page is decided but does not join the model's window (a backfill's best-first page: not a
    # random sample of its site, see ingest.run.backfill)
    window: bool = True
    published: str | None = None  # the date its listing gave (a sitemap's), when the page gives none
    links: bool = False  # extraction also returns the page's related-story links (ingest.sources.related)
    warc: Built | None = None  # the fetch's hops as WARC records, for the archive ([archive] enabled)


class PageFetcher:
    """Fetches and extracts pages through the poll's fetcher and worker processes."""

    def __init__(self, fetcher: Fetcher, executor: Executor, clock: Callable[[], float], *, robots: bool,
                 metrics: Metrics | None = None, on_fetched: Callable[[PageJob], None] = lambda job: None,
                 record: bool = False) -> None:
        self.fetcher, self.executor, self.clock, self.robots = fetcher, executor, clock, robots
        self.metrics, self.on_fetched, self.record = metrics, on_fetched, record

    async def fetch(self, job: PageJob) -> PageResult:
        link = job.link
        if self.robots:
            reason = await self.fetcher.robots_reason(link, job.options)
            if reason == ROBOTS_UNREACHABLE:  # not the page's fault: no attempt counted, asked again soon
                return Deferred(self.fetcher.robots_retry_at(link), f"not fetched: {reason}")
            if reason:
                return Skipped(Outcome.BLOCKED, f"not fetched: {reason}")
        res = await self.fetcher.fetch(link, options=job.options, record=self.record)
        if res.exchanges and res.ok:  # digests and gzip in a thread: not on the loop, not in the store's thread
            job.warc = await asyncio.to_thread(build_records, res.exchanges)
        if self.metrics is not None and res.deferred_until is None:
            self.metrics.fetch_seconds.observe(res.elapsed)
        job.fetched = True  # from here on only extraction is left: an abort lets it finish
        if res.deferred_until is not None:
            return Deferred(res.deferred_until, res.error or "deferred")
        if res.status in (429, 503) and (quiet := self.fetcher.host_quiet_until(res.final_url)) > self.clock():
            # "later", with a time (Retry-After): not the page's failure; fetched once the time has come
            return Deferred(quiet, f"HTTP {res.status} with Retry-After")
        if res.error:
            return Skipped(Outcome.ERROR, res.error or f"HTTP {res.status}", res.final_url)
        self.on_fetched(job)
        ctype = res.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in HTML_TYPES or res.body[:5] == b"%PDF-":
            return Skipped(Outcome.EMPTY, f"not an HTML page ({ctype or 'no content type'})", res.final_url)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            analysed = await loop.run_in_executor(self.executor, analyse_linked if job.links else analyse, res.body,
                                                  res.final_url, res.headers.get("content-type", ""))
        except Exception as exc:  # a crashed worker must not end the poll
            return Skipped(Outcome.ERROR, f"extraction failed: {exc!r}", res.final_url)
        finally:
            if self.metrics is not None:
                self.metrics.extract_seconds.observe(time.monotonic() - started)
        return analysed if analysed is not None else Skipped(Outcome.EMPTY, "no extractable text", res.final_url)
