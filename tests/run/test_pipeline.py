"""End to end: `ingest poll` against a loopback web of feeds and article pages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import OFF, ON, build_news_web, run_cli, write_config
from tests.support.web import article_page, article_text, rss


def _setup(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    return news, cfg


def test_poll_keeps_on_topic_and_rejects_off_topic(tmp_path, seeds_dir, web):
    news, cfg = _setup(tmp_path, seeds_dir, web)
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert (s["feeds_ok"], s["feeds_failed"]) == (3, 2)
    assert s["kept"] == 4 and s["rejected"] == 4
    assert s["pages_fetched"] == 8  # the Hyesan page is listed twice but fetched once
    files = sorted((tmp_path / "store" / "corpus").glob("*.txt"))
    assert len(files) == 4
    titles = {f.read_text(encoding="utf-8").split("\n", 1)[0] for f in files}
    assert titles == {article_text(n)[0] for n in ON}
    for f in files:
        raw = f.read_text(encoding="utf-8")
        title, blank, rest = raw.split("\n", 2)
        assert title and blank == "" and rest.strip()
        assert not rest.startswith(title)  # the headline is not repeated as the first paragraph
        for noise in ("cookies", "Most read", "subscribe to my channel", "All rights reserved", "Privacy"):
            assert noise not in raw
    # the text is the article's own
    hyesan = next(f for f in files if "Hyesan" in f.read_text(encoding="utf-8"))
    assert "soldiers with guns stand above the dam" in hyesan.read_text(encoding="utf-8")
    # no off-topic article made it in
    assert not any(article_text(n)[0] in t for n in OFF for t in titles)


def test_provenance_in_sqlite(tmp_path, seeds_dir, web):
    news, cfg = _setup(tmp_path, seeds_dir, web)
    assert run_cli("--config", str(cfg), "poll").code == 0
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    rows = db.execute("SELECT a.canonical_url, a.path, COUNT(DISTINCT s.feed_id) FROM articles a "
                      "JOIN sources s ON s.article_id = a.id GROUP BY a.id").fetchall()
    assert len(rows) == 4
    for _url, path, _feeds in rows:
        assert (tmp_path / "store" / path).is_file()
        name = Path(path).name
        assert name[:3].isdigit() and len(name.split("_")[1]) == len("0123456789abcdef.txt")
    by_url = {u: n for u, _, n in rows}
    assert by_url[news.pages["on_hyesan_gold"]] == 2  # one article, two feeds
    outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM pages GROUP BY outcome").fetchall())
    assert outcomes == {"kept": 4, "rejected": 4}
    # rejected pages keep their score, so they are never fetched again
    assert db.execute("SELECT COUNT(*) FROM pages WHERE outcome='rejected' AND score IS NOT NULL").fetchone()[0] == 4


def test_second_poll_fetches_nothing_new(tmp_path, seeds_dir, web):
    news, cfg = _setup(tmp_path, seeds_dir, web)
    assert run_cli("--config", str(cfg), "poll").code == 0
    page_hits = sum(len(h.requests) for n, h in web.hosts.items()) - sum(
        len(h.hits(p)) for h in web.hosts.values() for p in ("/rss.xml", "/atom.xml", "/rdf.xml", "/feed.xml"))
    r = run_cli("--config", str(cfg), "poll", "--json")
    s = r.json()
    assert s["entries_new"] == 0 and s["pages_fetched"] == 0 and s["kept"] == 0
    page_hits_after = sum(len(h.requests) for h in web.hosts.values()) - sum(
        len(h.hits(p)) for h in web.hosts.values() for p in ("/rss.xml", "/atom.xml", "/rdf.xml", "/feed.xml"))
    assert page_hits_after == page_hits
    # conditional GET: the second request for each feed carries its validators
    assert web.host(2).hits("/rss.xml")[-1].headers.get("if-none-match") == '"a1"'
    assert web.host(3).hits("/atom.xml")[-1].headers.get("if-modified-since") == "Fri, 20 Nov 2026 08:00:00 GMT"
    assert s["feeds_not_modified"] == 3  # two 304s, and the RDF feed by its unchanged body
    assert len(list((tmp_path / "store" / "corpus").glob("*.txt"))) == 4


def test_new_entry_is_picked_up_and_numbered_on(tmp_path, seeds_dir, web):
    news, cfg = _setup(tmp_path, seeds_dir, web)
    assert run_cli("--config", str(cfg), "poll").code == 0
    # the RSS feed gains one on-topic entry (a copy of a fixture under a new URL and title)
    host = web.host(2)
    title, body = article_text("on_smuggling_arrests")
    url = host.add("/news/new.html", article_page(title, body))
    items = [{"title": "new", "link": url, "guid": "id-new"}] + [
        {"title": article_text(n)[0], "link": news.pages[n], "guid": f"id-{n}"}
        for n in ("on_hyesan_gold", "on_forced_labour_report", "off_football", "off_recipe")]
    host.add("/rss.xml", rss("Feed A", items), content_type="application/rss+xml", etag='"a2"')
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["entries_new"] == 1 and s["pages_fetched"] == 1 and s["kept"] == 1
    names = sorted(f.name for f in (tmp_path / "store" / "corpus").glob("*.txt"))
    assert [n[:3] for n in names] == ["000", "001", "002", "003", "004"]


def test_dead_feeds_do_not_stop_the_others(tmp_path, seeds_dir, web):
    news, cfg = _setup(tmp_path, seeds_dir, web)
    r = run_cli("--config", str(cfg), "poll")
    assert r.code == 0
    for url in news.dead:
        assert url in r.err  # logged with its URL
    status = {f["url"]: f for f in run_cli("--config", str(cfg), "status", "--json").json()}
    assert status[news.dead[0]]["last_error"] == "HTTP 500"
    assert "Connect" in status[news.dead[1]]["last_error"]
    assert status[news.dead[0]]["consecutive_errors"] == 1
    assert all(status[u]["state"] == "ok" for u in news.feeds[:3])


def test_page_error_is_retried_next_poll(tmp_path, seeds_dir, web):
    news, cfg = _setup(tmp_path, seeds_dir, web)
    host = web.host(4)
    route = host.routes["/news/on_mine_collapse.html"]
    host.add("/news/on_mine_collapse.html", "busy", status=503, content_type="text/plain")
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 3 and s["page_errors"] == 1
    host.routes["/news/on_mine_collapse.html"] = route
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 1 and s["pages_fetched"] == 1


def test_entries_without_link_or_with_relative_link(tmp_path, seeds_dir, web):
    host = web.host(7)
    title, body = article_text("on_hyesan_gold")
    host.add("/a/story.html", article_page(title, body))
    feed = host.add("/feed.xml", rss("Rel", [{"title": "no link", "guid": "x1"},
                                              {"title": title, "link": "/a/story.html", "guid": "x2"}]),
                    content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed])
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["entries_new"] == 2 and s["pages_fetched"] == 1 and s["kept"] == 1
    out = run_cli("--config", str(cfg), "export").jsonl()
    assert out[0]["url"] == host.url("/a/story.html")


def test_a_page_decided_early_is_still_a_source_of_a_feed_that_lists_it_later(tmp_path, seeds_dir, web,
                                                                                monkeypatch):
    """Pages are committed in chunks while other feeds are still being read: a feed that lists a page
    this poll has already committed records itself as a source of it, and the page is fetched once."""
    import time as _time

    import ingest.run.poll
    from tests.support.web import Host

    monkeypatch.setattr(ingest.run.poll, "CHUNK_PAGES", 1)
    a, b = web.host(70), web.host(71)
    title, body = article_text(ON[0])
    page = a.add("/story.html", article_page(title, body))
    item = [{"title": title, "link": page, "guid": "s1", "date": "Fri, 20 Nov 2026 08:00:00 GMT"}]
    feed_a = a.add("/feed.xml", rss("A", item), content_type="application/rss+xml")
    db_path = tmp_path / "store" / "ingest.db"

    def late_feed(req):  # answers once the page's row is committed: its job is decided by then
        deadline = _time.monotonic() + 90
        while _time.monotonic() < deadline:
            try:
                con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
                if con.execute("SELECT 1 FROM pages WHERE outcome='kept'").fetchone():
                    con.close()
                    break
                con.close()
            except sqlite3.Error:
                pass
            _time.sleep(0.05)
        Host.respond(req, 200, rss("B", item).encode(), {"Content-Type": "application/rss+xml"})

    b.add("/feed.xml", handler=late_feed)
    cfg = write_config(tmp_path, [feed_a, b.url("/feed.xml")])
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    assert r.json()["kept"] == 1 and len(a.hits("/story.html")) == 1
    db = sqlite3.connect(db_path)
    feeds = {row[0] for row in db.execute("SELECT f.config_url FROM sources s JOIN feeds f ON f.id = s.feed_id")}
    assert feeds == {feed_a, b.url("/feed.xml")}
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 2  # seen by both feeds


def test_a_poll_holds_a_bounded_number_of_pages(tmp_path, seeds_dir, web, monkeypatch):
    """Fetching waits for decisions: at any request, the pages requested but not yet committed
    never exceed two chunks, however many feeds the poll has."""
    import ingest.run.poll
    from tests.support.web import Host

    monkeypatch.setattr(ingest.run.poll, "CHUNK_PAGES", 2)
    monkeypatch.setattr(ingest.run.poll, "MAX_FEEDS_IN_FLIGHT", 3)
    db_path = tmp_path / "store" / "ingest.db"
    outstanding: list[int] = []
    names = ON + OFF
    feeds = []
    for i in range(12):
        h = web.host(100 + i)
        title, body = article_text(names[i % len(names)])
        html = article_page(f"{title} ({i})", body + f"\n\nEdition {i}.").encode()

        def serve(req, html=html):
            requested = sum(1 for n in range(100, 112) for r in web.host(n).requests if r.path == "/p.html")
            con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
            try:
                committed = con.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
            except sqlite3.Error:
                committed = 0
            con.close()
            outstanding.append(requested - committed)
            Host.respond(req, 200, html, {"Content-Type": "text/html; charset=utf-8"})

        h.add("/p.html", handler=serve)
        item = [{"title": title, "link": h.url("/p.html"), "guid": f"g{i}", "date": "Fri, 20 Nov 2026 08:00:00 GMT"}]
        feeds.append(h.add("/feed.xml", rss(f"F{i}", item), content_type="application/rss+xml"))
    cfg = write_config(tmp_path, feeds)
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert s["pages_fetched"] == 12 and s["kept"] + s["rejected"] + s["duplicates"] == 12
    assert len(outstanding) == 12 and max(outstanding) <= 4
