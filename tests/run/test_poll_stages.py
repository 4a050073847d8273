"""The stages of a poll, each alone with its typed input and output: reading a feed
(FeedReader -> FeedRead), fetching a page (PageFetcher -> Analysed | Skipped | Deferred) and
deciding a chunk (ChunkDecider -> Decided), against a real loopback web and a real SQLite store;
and the pure parts (which entries are new, what a feed's row learns)."""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from ingest.config import FetchSettings, ScheduleSettings, load_config
from ingest.judge.decide import Deferred, Outcome, Skipped
from ingest.run.chunk import ChunkDecider
from ingest.run.feed_read import FeedReader, FeedStatus, FeedUpdate, feed_fields, select_entries
from ingest.run.model_keeper import ModelKeeper
from ingest.run.page_fetch import PageFetcher, PageJob
from ingest.run.schedule import FeedOutcome
from ingest.sources.feeds import Entry
from ingest.sources.fetch import NO_OPTIONS, Fetcher
from ingest.store import FeedRow, Source, Store, StoreThread
from ingest.text.analysis import Analysed, analyse
from ingest.text.seeds import load_seeds
from tests.conftest import write_config
from tests.support.web import article_page, article_text, rss

OPEN = FetchSettings(allow_private_networks=True, host_delay=0, timeout=5)


def _entry(key: str, published: str | None = None, updated: str | None = None) -> Entry:
    when = datetime.fromisoformat(published) if published else None
    return Entry(key=key, link=f"http://x.test/{key}", title=key, summary="", published=when,
                 updated=datetime.fromisoformat(updated) if updated else None)


def test_select_entries_newest_first_once_each_and_believes_few_updates():
    entries = [_entry("a", "2026-01-01T00:00:00+00:00"), _entry("b", "2026-03-01T00:00:00+00:00"),
               _entry("a", "2026-05-01T00:00:00+00:00"), _entry("c"),
               _entry("d", updated="2026-02-02T00:00:00+00:00")]
    new, refreshed = select_entries("f", entries, {"d": "2026-01-01T00:00:00+00:00"})
    assert [e.key for e in new] == ["b", "a", "c"]  # a guid twice: the first wins; undated last
    assert [e.key for e in refreshed] == ["d"]  # its updated date moved on
    stamped = [_entry(f"e{i}", updated="2026-06-01T00:00:00+00:00") for i in range(12)]
    _, refreshed = select_entries("f", stamped, {e.key: "2026-01-01T00:00:00+00:00" for e in stamped})
    assert refreshed == []  # every entry "updated" at once: a feed stamping the request time


def _row(**kw: object) -> FeedRow:
    fields = dict.fromkeys(FeedRow.__dataclass_fields__)
    fields.update(id=1, url="http://x.test/f", config_url="http://x.test/f", name="", active=True, interval=1800.0,
                  consecutive_errors=0, state="ok", next_poll=None)
    fields.update(kw)
    return FeedRow(**fields)  # type: ignore[arg-type]


def test_feed_fields_keep_the_schedule_of_a_deferral_and_drop_validators_after_a_failed_page():
    rng = random.Random(1)
    row = _row()
    deferred = FeedUpdate(row, FeedOutcome(ok=False), {}, 1000.0, deferred_until=5000.0)
    assert feed_fields(deferred, ScheduleSettings(), None, False, rng) == {"next_poll": 5000.0,
                                                                            "retry_after": 5000.0}
    ok = FeedUpdate(row, FeedOutcome(ok=True, status=200, changed=True), {"etag": '"e"', "title": "T"}, 1000.0)
    fields = feed_fields(ok, ScheduleSettings(), None, False, rng)
    assert fields["etag"] == '"e"' and fields["title"] == "T" and fields["last_poll"] == 1000.0
    assert fields["next_poll"] > 1000.0 and fields["errors_since"] is None
    assert "etag" not in feed_fields(ok, ScheduleSettings(), None, True, rng)  # read whole next time
    floor = feed_fields(ok, ScheduleSettings(poll_interval=60, min_interval=60), 7200.0, False, rng)
    assert floor["next_poll"] - 1000.0 >= 7200.0 * 0.8  # a feed's own poll_interval is a floor
    failed = FeedUpdate(row, FeedOutcome(ok=False, status=500, error="HTTP 500"), {}, 1000.0)
    fields = feed_fields(failed, ScheduleSettings(), None, False, rng)
    assert fields["last_error"] == "HTTP 500" and fields["errors_since"] == 1000.0


def test_feed_reader_reports_changed_not_modified_failed_and_deferred(web):
    h = web.host(2)
    feed_url = h.add("/feed.xml", rss("News", [{"title": "A", "link": h.url("/a"), "guid": "a"}]),
                     content_type="application/rss+xml", etag='"v1"')
    bad = h.add("/bad.xml", "nope", status=500)
    quiet = web.host(3).add("/feed.xml", "busy", status=503, headers={"Retry-After": "3600"})

    async def go():
        async with Fetcher(OPEN) as fetcher:
            reader = FeedReader(fetcher, ThreadPoolExecutor(1), time.time)
            first = await reader.read(_row(url=feed_url), NO_OPTIONS)
            again = await reader.read(_row(url=feed_url, etag='"v1"'), NO_OPTIONS)
            failed = await reader.read(_row(url=bad), NO_OPTIONS)
            busy = await reader.read(_row(url=quiet), NO_OPTIONS)
            later = await reader.read(_row(url=quiet), NO_OPTIONS)
            return first, again, failed, busy, later

    first, again, failed, busy, later = asyncio.run(go())
    assert first.status is FeedStatus.CHANGED and [e.key for e in first.parsed.entries] == ["a"]
    assert first.validators["etag"] == '"v1"' and first.update.fields == {"title": "News"}
    assert again.status is FeedStatus.NOT_MODIFIED and again.update.outcome.status == 304
    assert failed.status is FeedStatus.FAILED and "500" in (failed.error or "")
    assert busy.status is FeedStatus.FAILED and busy.update.outcome.retry_after is not None
    assert later.status is FeedStatus.DEFERRED and later.update.deferred_until > time.time() + 3000
    assert len(web.host(3).hits("/feed.xml")) == 1  # the deferral sent nothing


def test_page_fetcher_returns_a_page_a_skip_or_a_deferral(web):
    h = web.host(4)
    title, body = article_text("on_hyesan_gold")
    good = h.add("/a.html", article_page(title, body))
    pdf = h.add("/r.pdf", b"%PDF-1.4 ...", content_type="application/pdf")
    gone = h.add("/gone.html", "no", status=404)
    busy = h.add("/busy.html", "later", status=429, headers={"Retry-After": "120"})
    h.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    private = h.add("/private/x.html", article_page(title, body))
    fetched: list[str] = []

    async def go():
        async with Fetcher(OPEN) as fetcher:
            pages = PageFetcher(fetcher, ThreadPoolExecutor(1), time.time, robots=True,
                                on_fetched=lambda job: fetched.append(job.key))
            jobs = {url: PageJob(url, url, [], {1}) for url in (good, pdf, gone, busy, private)}
            results = {url: await pages.fetch(job) for url, job in jobs.items()}
            return jobs, results

    jobs, r = asyncio.run(go())
    assert isinstance(r[good], Analysed) and r[good].title == title and jobs[good].fetched
    assert isinstance(r[pdf], Skipped) and r[pdf].outcome is Outcome.EMPTY
    assert isinstance(r[gone], Skipped) and r[gone].outcome is Outcome.ERROR
    assert isinstance(r[busy], Deferred) and r[busy].until > time.time() + 60
    assert isinstance(r[private], Skipped) and r[private].outcome is Outcome.BLOCKED
    assert h.hits("/private/x.html") == [] and len(fetched) == 2  # the page and the PDF were fetched


def test_chunk_decider_decides_and_commits_each_page(tmp_path, seeds_dir, web):
    cfg = load_config(write_config(tmp_path, [], "[relevance]\nthreshold = 0\n"))
    store = Store.open(tmp_path / "store")
    store.sync_feeds([("http://127.0.0.5/feed.xml", "f")])
    feed_id = store.feeds()[0].id
    title, body = article_text("on_hyesan_gold")
    page = analyse(article_page(title, body).encode(), "http://127.0.0.5/a.html")
    copy = analyse(article_page(title, body).encode(), "http://127.0.0.6/copy.html")
    assert page is not None and copy is not None

    def job(url: str) -> PageJob:
        return PageJob(url, url, [Source(feed_id, url, url, "t", None)], {feed_id})

    chunk = [(job("http://127.0.0.5/a.html"), page), (job("http://127.0.0.6/copy.html"), copy),
             (job("http://127.0.0.5/gone.html"), Skipped(Outcome.ERROR, "HTTP 404")),
             (job("http://127.0.0.5/later.html"), Deferred(time.time() + 60, "HTTP 429 with Retry-After"))]
    seeds = [s.text for s in load_seeds(seeds_dir)]
    db = StoreThread()
    try:
        decider = ChunkDecider(cfg, store, seeds, ModelKeeper(ThreadPoolExecutor(1), clock=time.time), db,
                               clock=time.time, settings={},
                               warned=set())
        decided = asyncio.run(decider.decide(chunk))
    finally:
        db.close()
    s = decided.summary
    assert (s.kept, s.duplicates, s.page_errors, s.deferred, s.rejected) == (1, 1, 1, 1, 0)
    assert s.threshold == 0 and decided.retry_feeds == {feed_id} and decided.alerts == []
    assert store.page("http://127.0.0.5/a.html")["outcome"] == "kept"
    assert store.page("http://127.0.0.6/copy.html")["outcome"] == "duplicate"
    assert store.page("http://127.0.0.5/later.html")["outcome"] == "deferred"
    assert len(list((tmp_path / "store" / "corpus").glob("*.txt"))) == 1
    store.close()
