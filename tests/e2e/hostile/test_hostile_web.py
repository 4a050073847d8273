"""Every kind of broken or hostile feed and page, served next to healthy feeds.

One `ingest poll` (a real subprocess) runs over all of them. The healthy feeds
must be fully ingested in that same poll, each fault recorded against its own
feed or page with a clear reason, memory bounded and the run finished in
bounded time.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import REPO, run_cli, write_config
from tests.support.web import article_page, article_text, atom, http_date, redirect, rss

from . import webs

TIMEOUT = 8  # [fetch] timeout for this suite, seconds: the silent and dripping hosts must hit it, while a
# healthy page or a 10 MB gzip bomb read on a saturated machine (two CPU-bound processes beside it) must not


def _items(urls_titles, **extra):
    return [{"title": t, "link": u, "guid": u, **extra} for u, t in urls_titles]


@pytest.fixture
def hostile(web, tmp_path, seeds_dir):
    """Build the web; return (config path, {case: feed url}, healthy page urls, page cases)."""
    feeds: dict[str, str] = {}
    # -- healthy feeds, on their own hosts --------------------------------------
    healthy_pages = []
    for n, names in ((20, ["on_hyesan_gold", "on_forced_labour_report"]), (21, ["on_sanctions_gold"])):
        h = web.host(n)
        pairs = []
        for name in names:
            title, body = article_text(name)
            url = h.add(f"/{name}.html", article_page(title, body))
            healthy_pages.append(url)
            pairs.append((url, title))
        feeds[f"healthy{n}"] = h.add("/feed.xml", rss("Healthy", _items(pairs)), content_type="application/rss+xml")
    ok_feed = rss("Fine", [])
    # -- feed-level faults, one host each where timing matters ---------------------
    h = web.host(2)
    for status in (500, 502, 404, 410):
        feeds[f"http{status}"] = h.add(f"/s{status}.xml", f"status {status}", status=status,
                                       content_type="text/plain")
    feeds["429"] = web.host(3).add("/busy.xml", "slow down", status=429, content_type="text/plain",
                                   headers={"Retry-After": "120"})
    feeds["503date"] = web.host(4).add("/busy.xml", "maintenance", status=503, content_type="text/plain",
                                       headers={"Retry-After": http_date(time.time() + 3600)})
    target = h.add("/moved-here.xml", ok_feed, content_type="application/rss+xml")
    feeds["301"] = h.add("/old.xml", handler=redirect(target, 301))
    for i in range(12):
        h.add(f"/chain{i}.xml", handler=redirect(h.url(f"/chain{i + 1}.xml")))
    feeds["chain"] = h.url("/chain0.xml")
    h.add("/loopA.xml", handler=redirect(h.url("/loopB.xml")))
    h.add("/loopB.xml", handler=redirect(h.url("/loopA.xml")))
    feeds["loop"] = h.url("/loopA.xml")
    for scheme, to in (("file", "file:///etc/passwd"), ("ftp", "ftp://example.org/feed.xml"),
                       ("javascript", "javascript:alert(1)")):
        feeds[f"to_{scheme}"] = h.add(f"/to-{scheme}.xml", handler=redirect(to))
    feeds["metadata"] = h.add("/to-metadata.xml", handler=redirect("http://169.254.169.254/latest/"))
    feeds["silent"] = web.host(5).add("/feed.xml", handler=webs.never_answers)
    feeds["drip"] = web.host(6).add("/feed.xml", handler=webs.drip)
    feeds["huge"] = web.host(7).add("/feed.xml", handler=webs.huge)
    feeds["gzip_bomb"] = web.host(8).add("/feed.xml", handler=webs.bomb("gzip"))
    feeds["deflate_bomb"] = web.host(9).add("/feed.xml", handler=webs.bomb("deflate"))
    feeds["lying_length"] = web.host(10).add("/feed.xml", handler=webs.lying_length)
    # -- document-level faults ----------------------------------------------------
    x = web.host(11)
    good = x.add("/good.html", article_page(*article_text("on_mine_collapse")))
    broken = rss("Broken", _items([(good, "Mine & collapse <b>bold")])).replace("<title>Mine &amp;", "<title>Mine &")
    feeds["salvageable"] = x.add("/broken.xml", broken.replace("</channel>", "<unclosed></channel>"),
                                 content_type="application/rss+xml")
    full = rss("Trunc", _items([(x.url(f"/t{i}.html"), f"t{i}") for i in range(3)]))
    feeds["truncated"] = x.add("/truncated.xml", full[: len(full) - 60], content_type="application/rss+xml")
    feeds["billion_laughs"] = x.add("/laughs.xml", webs.BILLION_LAUGHS, content_type="application/rss+xml")
    feeds["xxe"] = x.add("/xxe.xml", webs.EXTERNAL_ENTITY, content_type="application/rss+xml")
    cp = rss("Caf\u00e9 news", _items([(x.url("/cp.html"), "Caf\u00e9 \u201cquotes\u201d")]))
    feeds["cp1252_as_utf8"] = x.add("/cp1252.xml", cp.encode("cp1252"), content_type="application/rss+xml")
    latin = rss("Gr\u00fc\u00dfe", _items([(x.url("/latin.html"), "Gr\u00fc\u00dfe")])).replace(
        'encoding="utf-8"', 'encoding="iso-8859-1"')
    feeds["utf8_as_latin1"] = x.add("/latin1.xml", latin.encode("utf-8"), content_type="application/rss+xml")
    u16 = rss("UTF-16", _items([(x.url("/u16.html"), "sixteen")])).replace('encoding="utf-8"', 'encoding="utf-16"')
    feeds["utf16"] = x.add("/utf16.xml", u16.encode("utf-16"), content_type="application/rss+xml")
    for path in ("/cp.html", "/latin.html", "/u16.html"):
        x.add(path, "<html><body><p>A page with little text.</p></body></html>")
    feeds["html_page"] = x.add("/page.html", '<html><head><link rel="alternate" type="application/rss+xml" '
                                             'href="/real-feed.xml"></head><body><p>Hello</p></body></html>')
    feeds["empty"] = x.add("/empty.xml", rss("Empty", []), content_type="application/rss+xml")
    now = datetime.now(UTC)
    many = [{"title": f"e{i}", "link": x.url(f"/many/{i}.html"), "guid": f"m{i}",
             "date": http_date((now - timedelta(minutes=i)).timestamp())} for i in range(20_000)]
    feeds["20k_entries"] = x.add("/many.xml", rss("Many", many), content_type="application/rss+xml")
    odd = [{"title": "no link", "guid": "nolink"},
           {"title": "relative", "link": "/rel.html", "guid": "rel"},
           {"title": "dup 1", "link": x.url("/dup1.html"), "guid": "dup"},
           {"title": "dup 2", "link": x.url("/dup2.html"), "guid": "dup"},
           {"title": "future", "link": x.url("/future.html"), "guid": "fut", "date": "Mon, 01 Jan 2120 00:00:00 GMT"},
           {"title": "bad date", "link": x.url("/baddate.html"), "guid": "bad", "date": "the day after tomorrow"}]
    feeds["odd_entries"] = x.add("/odd.xml", rss("Odd", odd), content_type="application/rss+xml")
    # -- hostile article pages, listed by one otherwise healthy feed --------------------
    p = web.host(12)
    title, body = article_text("on_smuggling_arrests")
    pages = {
        "404": p.add("/missing.html", "gone", status=404),
        "pdf_as_html": p.add("/doc.html", b"%PDF-1.4\n" + bytes(range(256)) * 100),
        "image": p.add("/img.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 50, content_type="image/png"),
        "no_text": p.add("/empty.html", "<html><body><div><img src='a.png'></div></body></html>"),
        "wrong_charset": p.add("/charset.html", article_page(*article_text("off_weather")).encode("cp1252")),
        "nested": p.add("/nested.html", "<html><body>" + "<div>" * 200_000 + "deep" + "</div>" * 200_000
                        + "</body></html>"),
        "hostile_title": p.add("/evil.html", article_page(
            '<script>alert("t")</script>\u202e\u0007' + title + " x" * 3000, body)),
    }
    feeds["pages"] = p.add("/feed.xml", rss("Pages", _items([(u, k) for k, u in pages.items()])),
                           content_type="application/rss+xml")
    cfg = write_config(tmp_path, list(feeds.values()), "[schedule]\nmin_interval = \"1m\"\n")
    cfg.write_text(cfg.read_text().replace("timeout = 10", f"timeout = {TIMEOUT}"))
    return cfg, feeds, healthy_pages, pages


def test_hostile_web_is_isolated_per_feed(hostile, tmp_path):
    cfg, feeds, healthy_pages, pages = hostile

    def x_url(path):
        return feeds["truncated"].rsplit("/", 1)[0] + path

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ingest", "--config", str(cfg), "poll", "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    seconds = time.monotonic() - started
    peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert seconds < 120, f"poll took {seconds:.0f}s"
    assert peak_mb < 800, f"peak RSS {peak_mb:.0f} MB"

    # the healthy feeds were fully ingested in the same poll
    exported = run_cli("--config", str(cfg), "export").jsonl()
    kept_urls = {a["url"] for a in exported}
    import sqlite3
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    healthy = {u: db.execute("SELECT outcome, reason, score, threshold FROM pages WHERE url = ?", (u,)).fetchone()
               for u in healthy_pages}
    assert set(healthy_pages) <= kept_urls, (healthy, proc.stderr[-3000:])

    status = {f["config_url"]: f for f in run_cli("--config", str(cfg), "status", "--json").json()}

    def err(case):
        return status[feeds[case]]["last_error"] or ""

    for code in (500, 502, 404):
        assert err(f"http{code}") == f"HTTP {code}"
    assert status[feeds["http410"]]["state"] == "disabled"
    assert err("429") == "HTTP 429" and status[feeds["429"]]["retry_after"]
    assert err("503date") == "HTTP 503" and status[feeds["503date"]]["retry_after"]
    assert status[feeds["301"]]["state"] == "ok" and status[feeds["301"]]["moved_to"].endswith("/moved-here.xml")
    assert "more than 10 redirects" in err("chain")
    assert "redirect loop" in err("loop")
    for scheme in ("file", "ftp"):
        assert f"scheme {scheme}:" in err(f"to_{scheme}")
    assert "invalid URL or redirect target" in err("to_javascript")  # httpx refuses to parse it
    assert "metadata address" in err("metadata")
    assert "timed out" in err("silent") and "timed out" in err("drip")
    for case in ("huge", "gzip_bomb", "deflate_bomb"):
        assert "exceeds max_bytes" in err(case), (case, err(case))
    assert err("lying_length")  # a connection closed early is an error, not a feed
    assert status[feeds["salvageable"]]["state"] == "ok" and status[feeds["salvageable"]]["entries_seen"] == 1
    assert status[feeds["truncated"]]["state"] == "ok"  # salvaged: the entries before the cut are followed
    assert status[feeds["billion_laughs"]]["state"] in ("ok", "error")
    for case in ("cp1252_as_utf8", "utf8_as_latin1", "utf16"):
        assert status[feeds[case]]["state"] == "ok" and status[feeds[case]]["entries_seen"] == 1, case
    assert err("html_page").startswith("not a feed: got an HTML page; it links a feed at ")
    assert err("html_page").endswith("/real-feed.xml")
    assert status[feeds["empty"]]["state"] == "ok" and status[feeds["empty"]]["entries_seen"] == 0
    page_urls = {r[0] for r in db.execute("SELECT url FROM pages")}
    assert sum("/many/" in u for u in page_urls) == 200  # [fetch] max_entries_per_poll
    assert {x_url(f"/many/{i}.html") for i in range(200)} <= page_urls  # the newest 200
    assert db.execute("SELECT COUNT(*) FROM entries WHERE key='nolink'").fetchone()[0] == 1
    assert x_url("/rel.html") in page_urls  # resolved against the feed URL
    assert (x_url("/dup1.html") in page_urls) != (x_url("/dup2.html") in page_urls)  # one guid, one entry
    assert {x_url("/future.html"), x_url("/baddate.html")} <= page_urls
    assert summary["feeds_failed"] >= 19  # every fault above; the healthy and salvageable feeds are ok

    # nothing from an external entity leaked into any stored text
    assert not any("root:" in (a["text"] or "") + a["title"] for a in exported)

    # hostile pages: recorded, never stored as garbage
    outcome = dict(db.execute("SELECT url, outcome || ': ' || reason FROM pages").fetchall())
    assert outcome[pages["404"]].startswith("error: HTTP 404")
    assert outcome[pages["pdf_as_html"]].startswith("empty: not an HTML page")
    assert outcome[pages["image"]].startswith("empty: not an HTML page (image/png)")
    assert outcome[pages["no_text"]].startswith("empty")
    assert pages["nested"] in outcome
    assert outcome[x_url("/t0.html")].startswith("error: HTTP 404")
    evil = next(a for a in exported if a["url"] == pages["hostile_title"])
    # plain text may say "<script>"; control and bidi characters go, the length is bounded,
    # and the digests escape it
    assert "\u202e" not in evil["title"] and "\u0007" not in evil["title"] and len(evil["title"]) <= 300
    page = run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "html").out
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert evil["path"].startswith("corpus/") and evil["path"][7:10].isdigit()
    for f in (tmp_path / "store" / "corpus").iterdir():
        first = f.read_text(encoding="utf-8").split("\n", 1)[0]
        assert all(c.isprintable() for c in first), f.name


def test_large_feed_continues_newest_first(web, tmp_path, seeds_dir):
    x = web.host(2)
    now = datetime.now(UTC)
    many = [{"title": f"e{i}", "link": x.url(f"/m/{i}.html"), "guid": f"m{i}",
             "date": http_date((now - timedelta(minutes=i)).timestamp())} for i in range(450)]
    for i in range(450):
        x.add(f"/m/{i}.html", f"<html><body><p>Entry {i} of a very long feed.</p></body></html>")
    import random
    random.Random(1).shuffle(many)  # document order must not matter: newest first
    feed = x.add("/many.xml", rss("Many", many), content_type="application/rss+xml", etag='"v1"')
    cfg = write_config(tmp_path, [feed], "[relevance]\nthreshold = 0\n")
    first = run_cli("--config", str(cfg), "poll", "--json").json()
    assert first["entries_new"] == 200
    import sqlite3
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    keys = {r[0] for r in db.execute("SELECT key FROM entries")}
    assert keys == {f"m{i}" for i in range(200)}  # the 200 newest
    # the feed is unchanged, but the poll was capped: validators were not saved, so it continues
    second = run_cli("--config", str(cfg), "poll", "--json").json()
    third = run_cli("--config", str(cfg), "poll", "--json").json()
    assert (second["entries_new"], third["entries_new"]) == (200, 50)
    fourth = run_cli("--config", str(cfg), "poll", "--json").json()  # complete now: a conditional GET
    assert x.hits("/many.xml")[-1].headers.get("if-none-match") == '"v1"' and fourth["feeds_not_modified"] == 1


def test_private_addresses_refused_from_feed_content(web, tmp_path, seeds_dir):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    inside = web.host(3).add("/internal.html", article_page(title, body))
    feed = h.add("/feed.xml", rss("F", [{"title": title, "link": inside, "guid": "a"},
                                        {"title": "meta", "link": "http://169.254.169.254/latest/", "guid": "b"},
                                        {"title": "v6", "link": "http://[::1]:1/x", "guid": "c"}]),
                 content_type="application/rss+xml")
    moved = h.add("/moved.xml", handler=redirect(web.host(4).add("/f.xml", rss("x", []))))
    cfg = write_config(tmp_path, [feed, moved])
    cfg.write_text(cfg.read_text().replace("allow_private_networks = true", "allow_private_networks = false"))
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 0 and s["page_errors"] == 3 and not web.host(3).requests
    status = {f["config_url"]: f for f in run_cli("--config", str(cfg), "status", "--json").json()}
    assert "private" in status[moved]["last_error"] and not web.host(4).requests
    import sqlite3
    reasons = [r[0] for r in sqlite3.connect(tmp_path / "store" / "ingest.db").execute("SELECT reason FROM pages")]
    assert sum("private" in r for r in reasons) == 2 and sum("metadata" in r for r in reasons) == 1


def test_atom_and_rss_with_unsafe_markup_in_titles(web, tmp_path, seeds_dir):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/p.html", article_page(title, body))
    feed = h.add("/feed.xml", atom("<b>F</b>", [{"title": "<script>x</script>\u202e", "link": page}]),
                 content_type="application/atom+xml")
    cfg = write_config(tmp_path, [feed])
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 1
    out = run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "html").out
    assert "<script>x" not in out
