"""What a host asked for outlives the process: a cron-driven `ingest poll` keeps a host's
Retry-After window and reuses its robots.txt (both kept in the store)."""

from __future__ import annotations

import sqlite3

from tests.conftest import ON, run_cli, write_config
from tests.support.web import article_page, article_text, rss


def _item(host, name, guid):
    title, body = article_text(name)
    link = host.add(f"/{guid}.html", article_page(title, body))
    return {"title": title, "link": link, "guid": guid, "date": "Fri, 20 Nov 2026 08:00:00 GMT"}


def test_retry_after_is_respected_by_the_next_run(tmp_path, seeds_dir, web):
    h = web.host(80)
    first = _item(h, ON[0], "a")
    h.add("/a.html", "slow down", status=429, content_type="text/plain", headers={"Retry-After": "3600"})
    feed = h.add("/feed.xml", rss("H", [first]), content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed])
    r = run_cli("--config", str(cfg), "poll", "--json")
    # "later", with a time: deferred, not an error of the page (fetched once the hour is over)
    assert r.code == 0 and r.json()["page_errors"] == 0 and r.json()["deferred"] == 1
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    (until,) = db.execute("SELECT quiet_until FROM hosts WHERE name = '127.0.0.80'").fetchone()
    assert until > 0
    # a new process: it must not contact the host before the hour is over, feed included
    db.execute("UPDATE feeds SET next_poll = 0, retry_after = NULL")
    db.commit()
    before = len(h.requests)
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0
    assert len(h.requests) == before  # not one request
    assert r.json()["feeds_failed"] == 0  # deferred, not failed


def test_robots_txt_is_reused_by_the_next_run(tmp_path, seeds_dir, web):
    h = web.host(81)
    h.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    items = [_item(h, ON[0], "a")]
    h.add("/feed.xml", rss("H", items), content_type="application/rss+xml")
    cfg = write_config(tmp_path, [h.url("/feed.xml")])
    cfg.write_text(cfg.read_text().replace("robots = false", "robots = true"))
    assert run_cli("--config", str(cfg), "poll").code == 0
    assert len(h.hits("/robots.txt")) == 1
    items.append(_item(h, ON[1], "b"))
    h.add("/feed.xml", rss("H", items), content_type="application/rss+xml")
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0 and r.json()["pages_fetched"] == 1
    assert len(h.hits("/robots.txt")) == 1  # remembered for a day, across processes
    assert len(h.hits("/b.html")) == 1
