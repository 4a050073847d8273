"""Sources beyond RSS/Atom: JSON Feed 1.0/1.1 and sitemaps (news sitemaps, sitemap indexes),
through a full poll on the loopback web."""

from __future__ import annotations

import sqlite3

from ingest.sources.feeds import FeedKind, parse_feed
from tests.conftest import OFF, ON, run_cli, write_config
from tests.support.web import article_page, article_text, json_feed, news_sitemap, sitemap_index


def _pages(host, names, prefix="n"):
    items = []
    for i, name in enumerate(names):
        title, body = article_text(name)
        link = host.add(f"/{prefix}/{name}.html", article_page(title, body))
        items.append({"title": title, "link": link, "guid": f"{prefix}-{name}", "iso": f"2026-11-2{i}T08:00:00Z"})
    return items


def _titles(tmp_path):
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    return {r[0] for r in db.execute("SELECT title FROM articles")}


def test_json_feed_1_1_and_1_0_through_a_poll(tmp_path, seeds_dir, web):
    a, b = web.host(40), web.host(41)
    f11 = a.add("/feed.json", json_feed("J 1.1", _pages(a, [ON[0], OFF[0]])), content_type="application/feed+json",
                etag='"j1"')
    f10 = b.add("/feed.json", json_feed("J 1.0", _pages(b, [ON[1], OFF[1]]), version="1"),
                content_type="application/json")
    cfg = write_config(tmp_path, [f11, f10])
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert (s["feeds_ok"], s["entries_new"], s["kept"], s["rejected"]) == (2, 4, 2, 2)
    assert _titles(tmp_path) == {article_text(ON[0])[0], article_text(ON[1])[0]}
    # conditional GET applies as to any feed
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.json()["feeds_not_modified"] == 2
    assert a.hits("/feed.json")[-1].headers.get("if-none-match") == '"j1"'
    st = {f["url"]: f for f in run_cli("--config", str(cfg), "status", "--json").json()}
    assert st[f11]["name"] == "J 1.1"  # the feed title, as no name is set


def test_news_sitemap_through_a_poll(tmp_path, seeds_dir, web):
    h = web.host(42)
    sm = h.add("/news-sitemap.xml", news_sitemap(_pages(h, [ON[2], ON[3], OFF[2]])), content_type="application/xml",
               last_modified="Fri, 20 Nov 2026 08:00:00 GMT")
    cfg = write_config(tmp_path, [sm])
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert (s["feeds_ok"], s["entries_new"], s["kept"], s["rejected"]) == (1, 3, 2, 1)
    assert _titles(tmp_path) == {article_text(ON[2])[0], article_text(ON[3])[0]}
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    # the news:title is the entry's title, and the entry is remembered: no page twice
    assert article_text(OFF[2])[0] in {r[0] for r in db.execute("SELECT title FROM entries")}
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.json()["feeds_not_modified"] == 1  # If-Modified-Since answered 304
    assert len(h.hits(f"/n/{ON[2]}.html")) == 1


def test_sitemap_index_reads_its_children(tmp_path, seeds_dir, web):
    h = web.host(43)
    old = h.add("/sitemaps/2025.xml", news_sitemap(_pages(h, [OFF[3]], "old")), content_type="application/xml")
    new = h.add("/sitemaps/2026-11.xml", news_sitemap(_pages(h, [ON[0], ON[1]], "new")),
                content_type="text/xml")
    nested = h.add("/sitemaps/more.xml", sitemap_index([(h.url("/sitemaps/deep.xml"), "2026-11-01")]),
                   content_type="application/xml")
    h.add("/sitemaps/deep.xml", news_sitemap(_pages(h, [OFF[0]], "deep")), content_type="application/xml")
    broken = h.url("/sitemaps/missing.xml")
    index = h.add("/sitemap.xml", sitemap_index([(old, "2025-01-01"), (new, "2026-11-20"), (nested, "2026-10-01"),
                                                 (broken, "2026-11-19")]), content_type="application/xml")
    cfg = write_config(tmp_path, [index])
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert s["feeds_ok"] == 1 and s["entries_new"] == 4  # 2 + 1 + 1 (nested), the 404 child skipped
    assert s["kept"] == 2
    # newest first: the 2026-11 child was asked for before the 2025 one
    order = [q.path for q in h.requests if q.path.startswith("/sitemaps/")]
    assert order.index("/sitemaps/2026-11.xml") < order.index("/sitemaps/2025.xml")
    # the next poll reads the index and its children again (they change without it) but fetches no page twice
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.json()["entries_new"] == 0 and len(h.hits("/sitemaps/2026-11.xml")) == 2
    assert len(h.hits(f"/new/{ON[0]}.html")) == 1


def test_sitemap_bounds_and_hostile_documents():
    many = "".join(f"<url><loc>https://e.org/{i}</loc></url>" for i in range(60_000))
    doc = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{many}</urlset>'.encode()
    assert len(parse_feed(doc, "https://e.org/s.xml").entries) == 50_000
    bomb = (b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://e.org/&b;</loc></url>'
            b'</urlset>')
    parsed = parse_feed(bomb, "https://e.org/s.xml")
    assert all("aaaaaaaa" not in e.link for e in parsed.entries)  # entities are not expanded
    assert parse_feed(b'<urlset><url><loc>javascript:alert(1)</loc></url></urlset>', "https://e.org/").entries == ()
    bad = parse_feed(b'{"version": "1", "items": []}', "https://e.org/feed.json")
    assert bad.error and "JSON Feed" in bad.error
    assert parse_feed(b"{not json", "https://e.org/feed.json").error.startswith("not a feed: invalid JSON")
    idx = parse_feed(sitemap_index([("https://e.org/a.xml", "2026-01-01"), ("/b.xml", "2026-02-01")]).encode(),
                     "https://e.org/sitemap.xml")
    assert idx.kind is FeedKind.SITEMAP_INDEX and idx.sitemaps == ("https://e.org/b.xml", "https://e.org/a.xml")


def test_hostile_json_feeds_and_external_entities():
    deep = b'{"version":"https://jsonfeed.org/version/1.1","items":' + b"[" * 100000 + b"]" * 100000 + b"}"
    assert parse_feed(deep, "https://e.org/f.json").error.startswith("not a feed: invalid JSON")
    weird = (b'{"version":"https://jsonfeed.org/version/1.1","title":{"a":1},"items":[{"id":{"x":1},"url":5,'
             b'"title":["t"]},{"id":"ok","url":"javascript:alert(1)"},{"id":"z","url":"https://e.org/a",'
             b'"date_published":"not a date"}, 7, null]}')
    parsed = parse_feed(weird, "https://e.org/f.json")
    assert parsed.error is None and parsed.title == ""
    assert [(e.key, e.link, e.published) for e in parsed.entries] == [("ok", "", None), ("z", "https://e.org/a", None)]
    xxe = (b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://e.org/&x;</loc></url>'
           b"</urlset>")
    assert all("root:" not in e.link for e in parse_feed(xxe, "https://e.org/s.xml").entries)
