"""Feed parsing onto the common Entry model, on fixtures and captured real feeds."""

from __future__ import annotations

import gzip
import json

import feedparser
import pytest

from ingest.sources.feeds import parse_feed
from tests.conftest import SHARED
from tests.support.web import atom, rdf, rss

REALWORLD = SHARED / "data" / "feeds" / "realworld"
SYNTHETIC = SHARED / "data" / "feeds" / "feedparser-tests"


def test_rss_atom_rdf_map_to_entries():
    items = [{"title": "A & B", "link": "http://e.org/a?utm_source=x#top", "guid": "g1",
              "date": "Fri, 20 Nov 2026 08:00:00 GMT"},
             {"title": "Rel", "link": "/rel", "guid": ""}]
    p = parse_feed(rss("T", items).encode(), "http://e.org/feed.xml")
    assert [e.key for e in p.entries] == ["g1", "http://e.org/rel"]
    # the link is fetched as the feed gives it; its normalised form is only its identity
    assert p.entries[0].link == "http://e.org/a?utm_source=x#top" and p.entries[0].title == "A & B"
    assert p.entries[0].published.isoformat() == "2026-11-20T08:00:00+00:00"
    a = parse_feed(atom("T", [{"title": "x", "link": "http://e.org/x"}]).encode(), "http://e.org/atom")
    assert a.entries[0].link == "http://e.org/x" and a.title == "T"
    r = parse_feed(rdf("T", [{"title": "y", "link": "http://e.org/y"}]).encode(), "http://e.org/rdf")
    assert r.entries[0].link == "http://e.org/y"


def test_unsafe_link_schemes_are_dropped():
    p = parse_feed(rss("T", [{"title": "x", "link": "javascript:alert(1)", "guid": "g"}]).encode(), "http://e.org/")
    assert p.entries[0].link == ""


def test_html_page_is_not_a_feed_and_names_its_feed():
    page = (b'<html><head><link rel="alternate" type="application/rss+xml" href="/feed.rss"></head>'
            b"<body>hi</body></html>")
    p = parse_feed(page, "http://e.org/news")
    assert p.error == "not a feed: got an HTML page; it links a feed at http://e.org/feed.rss"


def test_ttl_and_syndication_hints():
    extra = ('<ttl>90</ttl>')
    p = parse_feed(rss("T", [], extra=extra).encode(), "http://e.org/f")
    assert p.ttl == 90


@pytest.mark.skipif(not REALWORLD.exists(), reason="shared data absent")
@pytest.mark.slow
def test_captured_real_world_feeds():
    """Every captured feed parses; every feedparser entry with an id or a link is kept."""
    for line in (REALWORLD / "index.jsonl").read_text().splitlines():
        row = json.loads(line)
        body = (REALWORLD / row["path"]).read_bytes()
        if body[:2] == b"\x1f\x8b":  # served with Content-Encoding: gzip; httpx decodes it
            body = gzip.decompress(body)
        parsed = parse_feed(body, "http://127.0.0.1/feed")
        raw = feedparser.parse(body)
        usable = sum(1 for e in raw.entries if e.get("id") or e.get("link"))  # enclosures alone are not articles
        assert len(parsed.entries) == usable or parsed.error, row["path"]
        if usable:
            assert parsed.entries and parsed.error is None, row["path"]


@pytest.mark.skipif(not SYNTHETIC.exists(), reason="shared data absent")
def test_feedparser_suite_never_raises():
    files = sorted(p for p in SYNTHETIC.rglob("*") if p.is_file())
    assert len(files) > 2000
    for path in files:
        parsed = parse_feed(path.read_bytes(), "http://127.0.0.1/f")
        # an error means nothing usable came out; entries mean no error; every entry is usable
        if parsed.error:
            assert not parsed.entries and not parsed.title, path
        for e in parsed.entries:
            assert e.key and (e.link == "" or e.link.startswith(("http://", "https://"))), path
