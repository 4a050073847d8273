"""A feed's history as backfill walks it (ingest.sources.feed_history), over a real loopback server:
RFC 5005 archives (one linking back to a page already read), rel="next" pages, WordPress ?paged=N
pages ending in a 404, and a since date that ends the walk."""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime

from ingest.config import FetchSettings
from ingest.sources.feed_history import history
from ingest.sources.fetch import Fetcher
from tests.support.web import rss


def _atom(title: str, items: list[tuple[str, str]], links: dict[str, str]) -> str:
    rels = "".join(f'<link rel="{r}" href="{html.escape(h)}"/>' for r, h in links.items())
    entries = "".join(f'<entry><title>{t}</title><link rel="alternate" href="{html.escape(u)}"/><id>{u}</id>'
                      f"<updated>{d}</updated></entry>" for u, t, d in
                      [(u, t, f"2024-0{1 + i % 9}-10T08:00:00Z") for i, (u, t) in enumerate(items)])
    return (f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>'
            f"<id>urn:{title}</id><updated>2026-01-01T00:00:00Z</updated>{rels}{entries}</feed>")


def _walk(url: str, since: datetime | None = None):
    async def run():
        async with Fetcher(FetchSettings(allow_private_networks=True, host_delay=0.0, robots=False)) as fetcher:
            return await history(url, fetcher, since)

    return asyncio.run(run())


def test_rfc_5005_archives_are_followed_and_a_loop_ends_the_walk(web):
    h = web.host(73)
    pages = {p: [(h.url(f"/{p}/{i}"), f"{p} {i}") for i in range(3)] for p in ("now", "a2", "a1")}
    h.add("/feed.xml", _atom("now", pages["now"], {"prev-archive": h.url("/archive/2.xml")}),
          content_type="application/atom+xml")
    h.add("/archive/2.xml", _atom("a2", pages["a2"], {"prev-archive": "/archive/1.xml"}),
          content_type="application/atom+xml")
    h.add("/archive/1.xml", _atom("a1", pages["a1"], {"prev-archive": h.url("/archive/2.xml")}),  # a loop
          content_type="application/atom+xml")
    hist = _walk(h.url("/feed.xml"))
    assert hist.how == "prev-archive"
    assert [e.url for e in hist.entries] == [u for p in ("now", "a2", "a1") for u, _ in pages[p]]
    assert len(h.hits("/archive/2.xml")) == 1 and hist.requests == 3


def test_next_pages_and_wordpress_paged_feeds_until_they_end(web):
    h = web.host(74)
    h.add("/list.xml", _atom("p1", [(h.url("/x/1"), "x1")], {"next": h.url("/list.xml?page=2")}),
          content_type="application/atom+xml")
    h.add("/list.xml?page=2", _atom("p2", [(h.url("/x/2"), "x2")], {}), content_type="application/atom+xml")
    nxt = _walk(h.url("/list.xml"))
    assert nxt.how == "next" and [e.url for e in nxt.entries] == [h.url("/x/1"), h.url("/x/2")]
    for n in (1, 2, 3):
        items = [{"title": f"wp {n}-{i}", "link": h.url(f"/wp/{n}-{i}"), "guid": f"{n}-{i}",
                  "date": f"0{4 - n} Jan 2024 08:00:00 GMT"} for i in range(2)]  # page 1 newest
        h.add("/feed/" if n == 1 else f"/feed/?paged={n}", rss("WP", items), content_type="application/rss+xml")
    h.add("/feed/?paged=4", "Page not found", status=404, content_type="text/html")  # what WordPress answers
    wp = _walk(h.url("/feed/"))
    assert wp.how == "paged" and len(wp.entries) == 6
    assert "404" in wp.read[-1][1] and wp.read[-1][0].endswith("paged=4")
    # since: the walk stops at the page whose entries are all older
    recent = _walk(h.url("/feed/"), since=datetime(2024, 1, 2, tzinfo=UTC))
    assert sorted(e.title for e in recent.entries) == ["wp 1-0", "wp 1-1", "wp 2-0", "wp 2-1"]
    assert recent.read[-1][0].endswith("paged=3") and recent.read[-1][1] == "0 entries"  # no page 4 asked for
