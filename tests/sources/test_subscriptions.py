"""`ingest feeds add/remove/list/import/export`: discovery from HTML pages over the loopback
web, config.toml edited in place (comments kept, nothing half-written), OPML round trips."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.config import load_config
from tests.conftest import run_cli
from tests.support.web import FIXTURES, atom, json_feed, rss

ITEMS = [{"title": "Gold mine", "link": "http://127.0.0.50/a.html", "guid": "a",
          "date": "Fri, 20 Nov 2026 08:00:00 GMT", "iso": "2026-11-20T08:00:00Z"},
         {"title": "Older", "link": "http://127.0.0.50/b.html", "guid": "b", "date": "Thu, 19 Nov 2026 08:00:00 GMT",
          "iso": "2026-11-19T08:00:00Z"}]

CONFIG = """# my seed-ingest setup
[paths]
seeds = "seeds"   # the examples
store = "store"

[fetch]
allow_private_networks = true
host_delay = 0
timeout = 10

# --- feeds I follow ---
[[feeds]]
url = "https://www.dailynk.com/english/feed/"
name = "Daily NK"   # specialist news

[web]
# no web view in tests
listen = ""
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def _page(links: str = "", body: str = "") -> str:
    return f"<!DOCTYPE html><html><head><title>Site</title>{links}</head><body><p>{body}Hello</p></body></html>"


def test_add_finds_the_feed_a_page_advertises(cfg, web):
    h = web.host(50)
    h.add("/comments/feed/", rss("Comments", ITEMS), content_type="application/rss+xml")
    feed = h.add("/feed/", rss("Gold News", ITEMS), content_type="application/rss+xml")
    h.add("/", _page('<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments/feed/">'
                     '<link rel="alternate" type="application/rss+xml" title="Gold News" href="/feed/">'))
    r = run_cli("--config", str(cfg), "feeds", "add", h.url("/"), "--name", "Gold", "--category", "Mining")
    assert r.code == 0, r.err
    assert "Gold News" in r.out and "2 entries" in r.out and "2026-11-20" in r.out
    text = cfg.read_text(encoding="utf-8")
    for comment in ("# my seed-ingest setup", "# the examples", "# --- feeds I follow ---", "# specialist news",
                    "# no web view in tests"):
        assert comment in text  # the user's file stays the user's file
    feeds = load_config(cfg).feeds
    assert [(f.url, f.name, f.category) for f in feeds][-1] == (feed, "Gold", "Mining")
    # placed after the last [[feeds]] table, before the next section
    assert text.index("# specialist news") < text.index(feed) < text.index("[web]")
    assert load_config(cfg).web.listen == ""
    # the same feed again (by the page, or by a variant of its URL) is refused, the file untouched
    before = cfg.read_bytes()
    for again in (h.url("/"), feed + "?utm_source=x"):
        r = run_cli("--config", str(cfg), "feeds", "add", again)
        assert r.code == 1 and "already in" in r.err
    assert cfg.read_bytes() == before


def test_add_tries_common_paths_and_json_feed(cfg, web):
    h = web.host(51)
    h.add("/", _page())  # links nothing
    h.add("/feed.json", json_feed("J", ITEMS), content_type="application/feed+json")
    r = run_cli("--config", str(cfg), "feeds", "add", h.url("/"))
    assert r.code == 0, r.err
    assert "json" in r.out and load_config(cfg).feeds[-1].url == h.url("/feed.json")
    # a feed URL given directly
    a = web.host(52).add("/atom.xml", atom("Atom!", ITEMS), content_type="application/atom+xml")
    r = run_cli("--config", str(cfg), "feeds", "add", a)
    assert r.code == 0 and "Atom!" in r.out


def test_add_refuses_what_is_no_feed_and_changes_nothing(cfg, web, tmp_path):
    h = web.host(53)
    h.add("/", _page(body="no feed here "))
    h.add("/logo.png", b"\x89PNG....", content_type="image/png")
    before = cfg.read_bytes()
    r = run_cli("--config", str(cfg), "feeds", "add", h.url("/"))
    assert r.code == 1
    assert "no feed found" in r.err and "links no feed" in r.err and "/feed.xml" in r.err
    r = run_cli("--config", str(cfg), "feeds", "add", h.url("/logo.png"))
    assert r.code == 1 and "not a feed" in r.err and "image/png" in r.err
    r = run_cli("--config", str(cfg), "feeds", "add", "http://127.0.0.54:9/")
    assert r.code == 1 and "cannot fetch" in r.err
    # an unreachable proxy
    bad = tmp_path / "proxied.toml"
    bad.write_text(CONFIG.replace("timeout = 10", 'timeout = 10\nproxy = "http://127.0.0.55:9"'), encoding="utf-8")
    feed = web.host(56).add("/feed.xml", rss("F", ITEMS), content_type="application/rss+xml")
    proxied = bad.read_bytes()
    r = run_cli("--config", str(bad), "feeds", "add", feed)
    assert r.code == 1 and "cannot connect through proxy" in r.err
    assert bad.read_bytes() == proxied
    # the private-address guard applies to what `feeds add` fetches
    guarded = tmp_path / "guarded.toml"
    guarded.write_text(CONFIG.replace("allow_private_networks = true", "allow_private_networks = false"),
                       encoding="utf-8")
    r = run_cli("--config", str(guarded), "feeds", "add", feed)
    assert r.code == 1 and "refused" in r.err
    assert cfg.read_bytes() == before


def test_remove_and_list(cfg, web):
    feed = web.host(57).add("/feed.xml", rss("F", ITEMS), content_type="application/rss+xml")
    assert run_cli("--config", str(cfg), "feeds", "add", feed, "--name", "Fifty-seven").code == 0
    listed = run_cli("--config", str(cfg), "feeds", "list", "--json").json()
    assert [f["name"] for f in listed] == ["Daily NK", "Fifty-seven"]
    assert listed[1]["state"] == "new" and listed[1]["enabled"] is True
    r = run_cli("--config", str(cfg), "feeds", "remove", "fifty-SEVEN")  # by name, any case
    assert r.code == 0 and "removed" in r.out
    r = run_cli("--config", str(cfg), "feeds", "remove", "https://www.dailynk.com/english/feed")  # by URL
    assert r.code == 0
    assert load_config(cfg).feeds == ()
    assert "# my seed-ingest setup" in cfg.read_text(encoding="utf-8")
    r = run_cli("--config", str(cfg), "feeds", "remove", "nothing-like-it")
    assert r.code == 1 and "no feed with URL or name" in r.err
    r = run_cli("--config", str(cfg), "feeds", "list")
    assert r.code == 0 and "0 feed(s)" in r.err


@pytest.mark.parametrize("name, feeds, invalid, categories", [
    ("miniflux.opml", 4, 0, {"All", "Mining"}),
    ("freshrss.opml", 3, 1, {"Uncategorized", "Korea"}),
    ("feedly.opml", 3, 0, {"World", "Korea"}),
    ("inoreader.opml", 3, 1, {"Sanctions", "Sanctions / Research", ""}),
])
def test_opml_import_export_round_trip(tmp_path, name, feeds, invalid, categories):
    src = FIXTURES / "opml" / name
    a = tmp_path / "a.toml"
    a.write_text('[paths]\nseeds = "seeds"\n', encoding="utf-8")
    r = run_cli("--config", str(a), "feeds", "import", str(src))
    assert r.code == 0, r.err
    got = load_config(a).feeds
    assert len(got) == feeds and f"{invalid} invalid" in r.out
    assert {f.category for f in got} == categories
    twice = int(re.search(r"(\d+) duplicate\(s\) skipped", r.out).group(1))  # a feed listed twice in the file
    assert twice == (1 if name == "feedly.opml" else 0)
    # again: everything is a duplicate, nothing is written twice
    r = run_cli("--config", str(a), "feeds", "import", str(src))
    assert "imported 0 feed(s)" in r.out and f"{feeds + twice} duplicate(s) skipped" in r.out
    assert load_config(a).feeds == got
    # export and import into a fresh config: the same feeds, names and categories
    out = tmp_path / "out.opml"
    assert run_cli("--config", str(a), "feeds", "export", "--output", str(out)).code == 0
    assert out.read_text(encoding="utf-8").startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    b = tmp_path / "b.toml"
    b.write_text('[paths]\nseeds = "seeds"\n', encoding="utf-8")
    assert run_cli("--config", str(b), "feeds", "import", str(out)).code == 0
    assert {(f.url, f.name, f.category) for f in load_config(b).feeds} == {(f.url, f.name, f.category) for f in got}


def test_opml_export_leaves_secrets_out(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[feeds]]\nurl = "https://e.org/feed"\nname = "E"\ncategory = "A / B"\n'
                   'cookie = "sid=topsecret"\nheaders = { Authorization = "Bearer topsecret" }\n', encoding="utf-8")
    r = run_cli("--config", str(cfg), "feeds", "export")
    assert r.code == 0 and "topsecret" not in r.out
    assert '<outline text="A" title="A">' in r.out and 'xmlUrl="https://e.org/feed"' in r.out


def test_malformed_opml_changes_nothing(cfg, tmp_path):
    before = cfg.read_bytes()
    bad = tmp_path / "bad.opml"
    for content in (b"this is not xml at all", b"<html><body><p>hello</p></body></html>", b""):
        bad.write_bytes(content)
        r = run_cli("--config", str(cfg), "feeds", "import", str(bad))
        assert r.code == 1 and "not an OPML subscription list" in r.err
    r = run_cli("--config", str(cfg), "feeds", "import", str(tmp_path / "missing.opml"))
    assert r.code == 2 and "cannot read" in r.err
    assert cfg.read_bytes() == before


def test_an_edit_that_would_break_the_config_is_not_written(cfg):
    from ingest.config import FeedSettings
    from ingest.sources.subscriptions import FeedListError, add_feeds

    before = cfg.read_bytes()
    with pytest.raises(FeedListError) as err:
        add_feeds(cfg, [FeedSettings(url="ftp://example.org/feed")], load_config(cfg).feeds)
    assert "nothing changed" in str(err.value) and str(cfg) in str(err.value) and "feeds[1].url" in str(err.value)
    assert cfg.read_bytes() == before and not list(cfg.parent.glob(".config-*"))


def test_opml_external_entities_are_not_read():
    from ingest.sources.subscriptions import FeedListError, read_opml

    xxe = (b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<opml version="2.0"><head><title>t</title></head><body>'
           b'<outline text="&x;" title="&x;" xmlUrl="https://e.org/feed"/></body></opml>')
    # an attribute that refers to an external entity is not well-formed XML: refused, the file never read
    with pytest.raises(FeedListError) as refused:
        read_opml(xxe, "x.opml")
    assert "external entity" in str(refused.value) and "root:" not in str(refused.value)
    inner = xxe.replace(b' title="&x;"', b"").replace(b'text="&x;"', b'text="t"').replace(
        b"<title>t</title>", b"<title>&x;</title>")
    feeds = read_opml(inner, "x.opml").feeds  # an entity in text content: never resolved
    assert {f.url for f in feeds} == {"https://e.org/feed"}
    assert all("root:" not in f.name + f.category for f in feeds)


# exports as other readers write them: OPML 1.0 type/url outlines, other encodings, folders with a
# "/" in their name, feeds without a URL, a feed listed twice, a truncated file
OPML_READERS = {
    "netnewswire": b'''<?xml version="1.0" encoding="UTF-8"?>
<!-- OPML generated by NetNewsWire -->
<opml version="1.1"><head><title>Subscriptions-OnMyMac.opml</title></head><body>
<outline text="News/Politics" title="News/Politics">
<outline text="Daily NK" title="Daily NK" description="" type="rss" version="RSS" htmlUrl="https://www.dailynk.com/"
 xmlUrl="https://www.dailynk.com/english/feed/"/></outline>
<outline text="38 North" title="38 North" type="rss" version="RSS" htmlUrl="https://www.38north.org/"
 xmlUrl="https://www.38north.org/feed/"/>
</body></opml>''',
    "opml10": b'''<?xml version="1.0"?>
<opml version="1.0"><head><title>old reader</title></head><body>
<outline text="Korea JoongAng" type="rss" url="https://koreajoongangdaily.joins.com/rss"/>
<outline text="Broken" type="rss" url=""/>
<outline text="Lost feed"/>
<outline text="Empty folder" type="folder"/>
</body></opml>''',
    "latin1": '''<?xml version="1.0" encoding="ISO-8859-1"?>
<opml version="2.0"><head><title>Tiny Tiny RSS</title></head><body>
<outline text="Économie" title="Économie"><outline text="Café Babel" title="Café Babel" type="rss"
 xmlUrl="https://www.cafebabel.com/feed/"/></outline>
<outline text="No URL" title="No URL" type="rss"/>
<outline text="Empty URL" title="Empty URL" type="rss" xmlUrl=""/>
<outline text="Twice" title="Twice" type="rss" xmlUrl="https://www.38north.org/feed/"/>
</body></opml>'''.encode("latin-1"),
}


def test_opml_from_other_readers(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[paths]\nseeds = "seeds"\n', encoding="utf-8")
    reports = {}
    for name, data in OPML_READERS.items():
        src = tmp_path / f"{name}.opml"
        src.write_bytes(data)
        r = run_cli("--config", str(cfg), "feeds", "import", str(src))
        assert r.code == 0, r.err
        reports[name] = r.out
    feeds = {f.url: f for f in load_config(cfg).feeds}
    assert feeds["https://www.dailynk.com/english/feed/"].category == "News/Politics"
    assert feeds["https://koreajoongangdaily.joins.com/rss"].name == "Korea JoongAng"  # OPML 1.0 type/url
    babel = feeds["https://www.cafebabel.com/feed/"]
    assert babel.name == "Café Babel" and babel.category == "Économie"  # the declared encoding
    assert "Café Babel" in cfg.read_text(encoding="utf-8")
    assert "2 invalid" in reports["opml10"] and "2 invalid" in reports["latin1"]
    assert "Lost feed" in reports["opml10"] and "Empty folder" not in reports["opml10"]
    assert "No URL" in reports["latin1"] and "Empty URL" in reports["latin1"]
    assert "1 duplicate(s) skipped" in reports["latin1"]
    assert "added: Café Babel  https://www.cafebabel.com/feed/  [Économie]" in reports["latin1"]
    # a folder with "/" in its name survives export and import
    out = tmp_path / "out.opml"
    assert run_cli("--config", str(cfg), "feeds", "export", "--output", str(out)).code == 0
    again = tmp_path / "again.toml"
    again.write_text('[paths]\nseeds = "seeds"\n', encoding="utf-8")
    assert run_cli("--config", str(again), "feeds", "import", str(out)).code == 0
    assert {(f.url, f.name, f.category) for f in load_config(again).feeds} == \
        {(f.url, f.name, f.category) for f in feeds.values()}
    # a truncated export changes nothing and fails
    before = cfg.read_bytes()
    cut = tmp_path / "cut.opml"
    cut.write_bytes(OPML_READERS["netnewswire"][:300])
    r = run_cli("--config", str(cfg), "feeds", "import", str(cut))
    assert r.code == 1 and "not well-formed" in r.err and cfg.read_bytes() == before


def test_add_takes_every_feed_a_page_links_named_by_title_and_says_what_is_not_a_feed(cfg, web):
    h = web.host(57)
    h.add("/world/feed/", rss("World", ITEMS), content_type="application/rss+xml")
    feed = h.add("/feed/", rss("Gold  News\n Daily", ITEMS), content_type="application/rss+xml")
    h.add("/", _page('<link rel="alternate" type="application/rss+xml" title="Gold" href="/feed/">'
                     '<link rel="alternate" type="application/rss+xml" title="World" href="/world/feed/">'))
    r = run_cli("--config", str(cfg), "feeds", "add", h.url("/"))
    assert r.code == 0, r.err
    # each feed the page links, named by its title unless --name, in the page's order
    assert [f.name for f in load_config(cfg).feeds[-2:]] == ["Gold News Daily", "World"]
    listed = run_cli("--config", str(cfg), "feeds", "list").out
    assert "Gold News Daily" in listed
    assert f"added: World  {h.url('/world/feed/')}" in r.out
    # no service holds the store: nothing says one will pick the change up
    assert "running service" not in r.err and "next `ingest run`" in r.err
    h.add("/report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", content_type="application/pdf")
    r = run_cli("--config", str(cfg), "feeds", "add", h.url("/report.pdf"))
    assert r.code == 1
    line = r.err.strip()
    assert "PDF document" in line and "Exception" not in line and "(not a feed" not in line
    assert line.count("\n") == 0 and feed in load_config(cfg).feeds[-2].url


def test_opml_export_warns_of_credentials_in_urls_and_redacts_on_request(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[feeds]]\nurl = "https://user:hunter2@e.org/feed"\n[[feeds]]\n'
                   'url = "https://f.org/rss?token=abc123"\n[[feeds]]\nurl = "https://g.org/rss"\n', encoding="utf-8")
    r = run_cli("--config", str(cfg), "feeds", "export")
    assert r.code == 0 and "hunter2" in r.out  # a backup to re-import: as written, but said
    assert "2 feed URL(s) carry credentials" in r.err and "--redact" in r.err
    r = run_cli("--config", str(cfg), "feeds", "export", "--redact")
    assert r.code == 0 and "hunter2" not in r.out and "abc123" not in r.out and "https://g.org/rss" in r.out
    assert "carry credentials" not in r.err


def test_add_resolves_a_pages_links_against_the_page_and_reports_each_feed(cfg, web):
    """A section page's relative <link> and a directory listing's bare file names resolve against the
    page itself (not the site's root); with one of a page's three feeds followed already, the other two
    are added and each of the three is reported; a page whose feeds all fail names each URL and its answer."""
    h = web.host(58)
    latest = h.add("/sec/world/latest.xml", rss("World latest", ITEMS), content_type="application/rss+xml")
    h.add("/sec/world/", _page('<link rel="alternate" type="application/rss+xml" href="latest.xml">'))
    r = run_cli("--config", str(cfg), "feeds", "add", h.url("/sec/world/"))
    assert r.code == 0, r.err
    assert f"added: World latest  {latest}" in r.out and load_config(cfg).feeds[-1].url == latest
    # a directory listing: three feeds, one of them followed already
    feeds = {n: h.add(f"/feeds/{n}.xml", rss(n.title(), ITEMS), content_type="application/rss+xml")
             for n in ("business", "politics", "sport")}
    h.add("/feeds/", "<html><body><h1>Index of /feeds/</h1><ul>" + "".join(
        f'<li><a href="{n}.xml">{n}.xml</a></li>' for n in feeds) + "</ul></body></html>", content_type="text/html")
    assert run_cli("--config", str(cfg), "feeds", "add", feeds["politics"]).code == 0
    r = run_cli("--config", str(cfg), "feeds", "add", h.url("/feeds/"))
    assert r.code == 0, r.err
    assert f"already followed: {feeds['politics']}" in r.out
    assert f"added: Business  {feeds['business']}" in r.out and f"added: Sport  {feeds['sport']}" in r.out
    urls = [f.url for f in load_config(cfg).feeds]
    assert all(urls.count(u) == 1 for u in feeds.values())
    # every feed the page links fails: each is named with its answer
    h.add("/broken/", _page('<link rel="alternate" type="application/rss+xml" href="gone.xml">'
                            '<link rel="alternate" type="application/atom+xml" href="/broken/page.html">'))
    h.add("/broken/page.html", _page(""))
    before = cfg.read_bytes()
    r = run_cli("--config", str(cfg), "feeds", "add", h.url("/broken/"))
    assert r.code == 1 and cfg.read_bytes() == before
    assert f"{h.url('/broken/gone.xml')} (HTTP 404" in r.err, r.err
    assert f"{h.url('/broken/page.html')} (an HTML page, not a feed)" in r.err
