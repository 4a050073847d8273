"""Adaptive, polite polling: the schedule policy and its effect on real polls."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from ingest.config import ScheduleSettings, load_config
from ingest.run.poll import Poll
from ingest.run.schedule import FeedOutcome, FeedState, backoff, first_poll, hint_from, plan, publishing_interval
from ingest.sources.fetch import Fetcher
from ingest.store import Store
from ingest.text.seeds import load_seeds
from tests.conftest import write_config
from tests.support.web import http_date, redirect, rss

S = ScheduleSettings()  # poll 30m, min 5m, max 24h, max_errors 10
NOW = 1_800_000_000.0


def test_publishing_interval_from_entry_dates():
    dates = [datetime.fromtimestamp(NOW, UTC) - timedelta(hours=6 * i) for i in range(28)]  # 4 a day
    assert publishing_interval(dates, NOW) == pytest.approx(6 * 3600, rel=0.05)
    old = [datetime(2020, 1, 1, tzinfo=UTC)]
    assert publishing_interval(old, NOW) == 7 * 86400  # dated, but nothing this week
    assert publishing_interval([], NOW) is None


def test_plan_success_uses_publishing_rate_and_feed_hints():
    dates = [datetime.fromtimestamp(NOW - 120 * i, UTC) for i in range(100)]  # one entry every 2 minutes
    state = FeedState(None, 0, None)
    fields = plan(state, FeedOutcome(ok=True, changed=True, entry_dates=dates), S, NOW, random.Random(1))
    assert fields["interval"] == S.min_interval  # clamped to min_interval
    hinted = plan(state, FeedOutcome(ok=True, changed=True, entry_dates=dates, hint_seconds=7200), S, NOW,
                  random.Random(1))
    assert hinted["interval"] == 7200  # the feed asked for 2 h (ttl, sy:update*, max-age)
    unchanged = plan(FeedState(3600, 0, None), FeedOutcome(ok=True), S, NOW, random.Random(1))
    assert unchanged["interval"] == 3600 and unchanged["next_poll"] == NOW + 3600


def test_hints_from_ttl_syndication_and_headers():
    assert hint_from({}, 60, None, NOW) == 3600
    assert hint_from({"cache-control": "public, max-age=900"}, None, None, NOW) == 900
    assert hint_from({"expires": http_date(NOW + 1200)}, None, None, NOW) == pytest.approx(1200)
    assert hint_from({}, None, 86400.0, NOW) == 86400
    assert hint_from({}, None, None, NOW) is None


def test_backoff_grows_with_jitter_and_is_capped():
    rng = random.Random(7)
    delays = [backoff(n, S, rng) for n in range(1, 12)]
    for n, d in enumerate(delays, start=1):
        base = min(S.max_interval, S.min_interval * 2 ** (n - 1))
        assert 0.8 * base <= d <= 1.2 * base


def test_failing_after_max_errors_spanning_three_days_then_daily():
    state = FeedState(1800, 9, NOW - 4 * 86400)
    fields = plan(state, FeedOutcome(ok=False, status=500, error="HTTP 500"), S, NOW, random.Random(1))
    assert fields["state"] == "failing" and fields["next_poll"] == NOW + 86400
    young = plan(FeedState(1800, 9, NOW - 3600), FeedOutcome(ok=False, status=500, error="HTTP 500"), S,
                 NOW, random.Random(1))
    assert young["state"] == "error"  # ten quick failures are not three days of failure


def test_gone_disables_and_retry_after_is_a_floor():
    gone = plan(FeedState(1800, 0, None), FeedOutcome(ok=False, status=410, error="HTTP 410"), S, NOW,
                random.Random(1))
    assert gone["state"] == "disabled" and gone["next_poll"] is None
    busy = plan(FeedState(1800, 0, None),
                FeedOutcome(ok=False, status=503, error="HTTP 503", retry_after=NOW + 7200), S, NOW, random.Random(1))
    assert busy["next_poll"] == NOW + 7200


def test_first_polls_are_staggered_and_stable():
    urls = [f"http://h{i}.example/feed" for i in range(200)]
    starts = [first_poll(u, 200, S, NOW) for u in urls]
    assert len({int(s) for s in starts}) > 50  # not all in the same second
    assert all(NOW <= s <= NOW + S.poll_interval for s in starts)
    assert starts == [first_poll(u, 200, S, NOW) for u in urls]


# -- the policy applied by real polls, with an injected clock --------------------

class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def poll(cfg_path, clock: Clock, feeds=None):
    config = load_config(cfg_path)
    seeds = [s.text for s in load_seeds(config.paths.seeds)]

    async def go():
        with Store.open(config.paths.store) as store, ThreadPoolExecutor(2) as ex:
            store.sync_feeds((f.url, f.name) for f in config.feeds)
            async with Fetcher(config.fetch, clock=clock) as fetcher:
                summary = await Poll(config, store, seeds, fetcher, ex, clock=clock, rng=random.Random(3)).run(feeds)
            return summary, {f.config_url: f for f in store.feeds(active_only=False)}
    return asyncio.run(go())


def test_backoff_grows_then_resets_on_success(tmp_path, seeds_dir, web):
    h = web.host(2)
    url = h.add("/feed.xml", "down", status=500, content_type="text/plain")
    cfg = write_config(tmp_path, [url])
    clock = Clock()
    gaps = []
    for _ in range(4):
        _, feeds = poll(cfg, clock)
        f = feeds[url]
        gaps.append(f.next_poll - clock.t)
        clock.t = f.next_poll
    for gap, minutes in zip(gaps, [5, 10, 20, 40], strict=True):  # doubling, +-20 % jitter
        assert 0.8 * minutes * 60 <= gap <= 1.2 * minutes * 60
    assert f.consecutive_errors == 4 and f.state == "error" and f.last_error == "HTTP 500"
    h.add("/feed.xml", rss("Back", []), content_type="application/rss+xml")
    _, feeds = poll(cfg, clock)
    f = feeds[url]
    assert f.consecutive_errors == 0 and f.state == "ok" and f.errors_since is None
    assert f.next_poll - clock.t == f.interval >= S.min_interval


@pytest.mark.parametrize("header", ["7200", "http-date"])
def test_retry_after_is_respected(tmp_path, seeds_dir, web, header):
    h = web.host(2)
    clock = Clock(datetime.now(UTC).timestamp())
    value = "7200" if header == "7200" else http_date(clock.t + 7200)
    url = h.add("/feed.xml", "busy", status=503, content_type="text/plain", headers={"Retry-After": value})
    cfg = write_config(tmp_path, [url])
    _, feeds = poll(cfg, clock)
    assert feeds[url].next_poll >= clock.t + 7190
    clock.t += 3600
    summary, _ = poll(cfg, clock)  # `ingest poll` also skips a feed whose server asked to wait
    assert len(h.hits("/feed.xml")) == 1 and summary.feeds_failed == 0
    clock.t += 3700
    poll(cfg, clock)
    assert len(h.hits("/feed.xml")) == 2


def test_retry_after_is_not_capped_by_max_interval(tmp_path, seeds_dir, web):
    """A server's Retry-After is its request, not a schedule setting: with max_interval = 1m a 503 asking
    for 120 s and a 429 asking for an hour are each left alone that long (at most 30 days is believed)."""
    h, h2, h3 = web.host(2), web.host(3), web.host(4)  # a host's Retry-After quiets the whole host
    clock = Clock(datetime.now(UTC).timestamp())
    busy = h.add("/busy.xml", "busy", status=503, content_type="text/plain", headers={"Retry-After": "120"})
    slow = h2.add("/slow.xml", "slow down", status=429, content_type="text/plain", headers={"Retry-After": "3600"})
    absurd = h3.add("/absurd.xml", "later", status=503, content_type="text/plain",
                    headers={"Retry-After": str(400 * 86400)})
    cfg = write_config(tmp_path, [busy, slow, absurd], extra='[schedule]\nmin_interval = "1m"\nmax_interval = "1m"\n')
    _, feeds = poll(cfg, clock)
    assert feeds[busy].next_poll >= clock.t + 119 and feeds[slow].next_poll >= clock.t + 3599
    assert feeds[absurd].next_poll <= clock.t + 30 * 86400 + 1
    clock.t += 61
    poll(cfg, clock)
    assert len(h.hits("/busy.xml")) == 1 and len(h2.hits("/slow.xml")) == 1
    clock.t += 60
    poll(cfg, clock)
    assert len(h.hits("/busy.xml")) == 2 and len(h2.hits("/slow.xml")) == 1


def test_gone_disables_the_feed(tmp_path, seeds_dir, web):
    h = web.host(2)
    url = h.add("/feed.xml", "gone", status=410, content_type="text/plain")
    cfg = write_config(tmp_path, [url])
    clock = Clock()
    _, feeds = poll(cfg, clock)
    assert feeds[url].state == "disabled" and "410" in feeds[url].state_reason
    clock.t += 10 * 86400
    poll(cfg, clock)
    assert len(h.hits("/feed.xml")) == 1


@pytest.mark.parametrize("status,moves", [(301, True), (308, True), (302, False), (307, False)])
def test_permanent_redirect_updates_the_stored_url(tmp_path, seeds_dir, web, status, moves):
    h = web.host(2)
    new = h.add("/new.xml", rss("Moved", []), content_type="application/rss+xml")
    old = h.add("/old.xml", handler=redirect(new, status))
    cfg = write_config(tmp_path, [old])
    _, feeds = poll(cfg, Clock())
    assert feeds[old].url == (new if moves else old)
    assert feeds[old].config_url == old  # the config file is not rewritten
    poll(cfg, Clock(NOW + 86400))
    assert len(h.hits("/old.xml")) == (1 if moves else 2)


def test_broken_validators_detected_by_body_hash(tmp_path, seeds_dir, web):
    h = web.host(2)
    counter = {"n": 0}
    body = rss("Same", [{"title": "x", "link": h.url("/p.html"), "guid": "1"}]).encode()
    h.add("/p.html", "<html><body><p>tiny</p></body></html>")

    def changing_etag(req):
        counter["n"] += 1
        h.respond(req, 200, body, {"Content-Type": "application/rss+xml", "ETag": f'"v{counter["n"]}"'})
    url = h.add("/feed.xml", handler=changing_etag)
    cfg = write_config(tmp_path, [url])
    first, _ = poll(cfg, Clock())
    second, _ = poll(cfg, Clock(NOW + 3600))
    assert first.feeds_ok == 1 and second.feeds_not_modified == 1 and second.pages_fetched == 0


def test_per_host_limit_holds_for_feeds_and_pages(tmp_path, seeds_dir, web):
    h = web.host(2)
    feeds = []
    for i in range(6):
        items = [{"title": f"t{i}{j}", "link": h.url(f"/p{i}-{j}.html"), "guid": f"{i}-{j}"} for j in range(3)]
        for j in range(3):
            h.add(f"/p{i}-{j}.html", f"<html><body><p>page {i} {j}</p></body></html>", delay=0.05)
        feeds.append(h.add(f"/f{i}.xml", rss(f"F{i}", items), content_type="application/rss+xml", delay=0.05))
    cfg = write_config(tmp_path, feeds, "")
    summary, _ = poll(cfg, Clock())
    assert summary.feeds_ok == 6 and summary.pages_fetched == 18
    assert h.max_in_flight == 2  # [fetch] per_host default
