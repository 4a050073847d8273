"""Per-feed settings ([[feeds]] user_agent, headers, cookie, proxy, enabled, poll_interval,
threshold) and [fetch] proxy / trust_env, seen from the loopback servers."""

from __future__ import annotations

import sqlite3

import pytest

from ingest.config import ConfigError, load_config
from tests.conftest import OFF, ON, run_cli
from tests.support.web import Proxy, article_page, article_text, rss


def _site(web, n: int, names: list[str], *, other=None):
    """A feed on 127.0.0.n listing pages on its own host (and on ``other``, if given)."""
    host = web.host(n)
    items = []
    for i, name in enumerate(names):
        title, body = article_text(name)
        where = other if (other is not None and i % 2) else host
        link = where.add(f"/n{n}/{name}.html", article_page(title, body))
        items.append({"title": title, "link": link, "guid": f"{n}-{name}", "date": "Fri, 20 Nov 2026 08:00:00 GMT"})
    return host, host.add("/feed.xml", rss(f"Site {n}", items), content_type="application/rss+xml")


def _config(tmp_path, feeds: str, extra: str = ""):
    path = tmp_path / "config.toml"
    path.write_text('[paths]\nseeds = "seeds"\nstore = "store"\n'
                    "[fetch]\nallow_private_networks = true\nhost_delay = 0\ntimeout = 10\nrobots = false\n"
                    + extra + "\n" + feeds, encoding="utf-8")
    return path


def test_headers_cookie_and_user_agent_reach_the_feeds_host_only(tmp_path, seeds_dir, web):
    other = web.host(21)
    host, feed = _site(web, 20, ON[:2] + OFF[:2], other=other)
    cfg = _config(tmp_path, f'[[feeds]]\nurl = "{feed}"\nuser_agent = "Special/1.0 (+mailto:me@example.org)"\n'
                            f'cookie = "session=s3cr3t-cookie"\n'
                            f'headers = {{ Authorization = "Bearer s3cr3t-token", X-Edition = "intl" }}\n')
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    assert r.json()["pages_fetched"] == 4
    own = list(host.requests)
    assert own and all(q.headers.get("authorization") == "Bearer s3cr3t-token" and
                       q.headers.get("cookie") == "session=s3cr3t-cookie" and q.headers.get("x-edition") == "intl"
                       and q.headers["user-agent"].startswith("Special/1.0") for q in own)
    theirs = other.requests
    assert theirs, "half of the pages live on another host"
    for q in theirs:  # the feed's user agent goes along, its secrets do not
        assert q.headers["user-agent"].startswith("Special/1.0")
        assert "authorization" not in q.headers and "cookie" not in q.headers and "x-edition" not in q.headers
    out = r.out + r.err + run_cli("--config", str(cfg), "feeds", "list", "--json").out
    assert "s3cr3t" not in out


def test_proxy_per_feed_and_in_fetch(tmp_path, seeds_dir, web):
    proxy = Proxy()
    try:
        host, feed = _site(web, 22, ON[:1])
        _, plain = _site(web, 23, ON[1:2])
        cfg = _config(tmp_path, f'[[feeds]]\nurl = "{feed}"\nproxy = "{proxy.url}"\n\n[[feeds]]\nurl = "{plain}"\n')
        r = run_cli("--config", str(cfg), "poll", "--json")
        assert r.code == 0, r.err
        assert r.json()["kept"] == 2
        through = {q.path for q in proxy.requests}
        assert feed in through and any(p.endswith(f"/n22/{ON[0]}.html") for p in through)
        assert not any("127.0.0.23" in p for p in through)  # the other feed goes direct

        # [fetch] proxy: everything through it
        _, third = _site(web, 24, OFF[:1])
        cfg = _config(tmp_path, f'[[feeds]]\nurl = "{third}"\n', extra=f'proxy = "{proxy.url}"\n')
        assert run_cli("--config", str(cfg), "poll").code == 0
        assert any("127.0.0.24" in q.path for q in proxy.requests)
    finally:
        proxy.close()


def test_trust_env_takes_the_proxy_from_the_environment(tmp_path, seeds_dir, web, monkeypatch):
    proxy = Proxy()
    try:
        for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                    "no_proxy", "NO_PROXY"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.26")
        _, feed = _site(web, 25, ON[:1])
        _, bypass = _site(web, 26, ON[1:2])
        feeds = f'[[feeds]]\nurl = "{feed}"\n\n[[feeds]]\nurl = "{bypass}"\n'
        # off by default: the environment is ignored
        assert run_cli("--config", str(_config(tmp_path, feeds)), "poll").code == 0
        assert proxy.requests == []
        tmp2 = tmp_path / "b"
        tmp2.mkdir()
        (tmp2 / "seeds").symlink_to(seeds_dir)
        assert run_cli("--config", str(_config(tmp2, feeds, extra="trust_env = true\n")), "poll").code == 0
        through = {q.path for q in proxy.requests}
        assert feed in through and not any("127.0.0.26" in p for p in through)  # NO_PROXY honoured
    finally:
        proxy.close()


def test_unreachable_proxy_is_a_clear_feed_error(tmp_path, seeds_dir, web):
    _, feed = _site(web, 27, ON[:1])
    cfg = _config(tmp_path, f'[[feeds]]\nurl = "{feed}"\nproxy = "http://user:pw-secret@127.0.0.91:9"\n')
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0
    s = r.json()
    assert s["feeds_failed"] == 1
    assert "cannot connect through proxy" in s["failures"][0]["error"]
    assert "pw-secret" not in r.out + r.err


def test_enabled_false_pauses_a_feed(tmp_path, seeds_dir, web):
    host, feed = _site(web, 28, ON[:1])
    cfg = _config(tmp_path, f'[[feeds]]\nurl = "{feed}"\nenabled = false\n')
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0 and r.json()["feeds_ok"] == 0
    assert host.requests == []
    st = run_cli("--config", str(cfg), "status", "--json").json()
    assert "paused" in st[0]["summary"]


def test_poll_interval_is_a_floor_and_threshold_overrides(tmp_path, seeds_dir, web):
    _, trusted = _site(web, 29, OFF[:2])  # off-topic pages, but this feed keeps everything
    _, normal = _site(web, 30, OFF[2:4])
    cfg = _config(tmp_path, f'[[feeds]]\nurl = "{trusted}"\nthreshold = 0\npoll_interval = "6h"\n\n'
                            f'[[feeds]]\nurl = "{normal}"\n', extra='[schedule]\nmax_interval = "2h"\n')
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert s["kept"] == 2 and s["rejected"] == 2
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    rows = dict(db.execute("SELECT config_url, interval FROM feeds").fetchall())
    assert rows[trusted] >= 6 * 3600 and rows[normal] < 6 * 3600
    kept = {r[0] for r in db.execute("SELECT title FROM articles")}
    assert kept == {article_text(n)[0] for n in OFF[:2]}
    thresholds = {r[0] for r in db.execute("SELECT threshold FROM articles")}
    assert thresholds == {0.0}


@pytest.mark.parametrize("table, message", [
    ('headers = { Host = "x" }', "feeds[0].headers.Host"),
    ('headers = { X-A = "line\\nbreak" }', "feeds[0].headers.X-A"),
    ('proxy = "ftp://proxy:21"', "feeds[0].proxy"),
    ('threshold = 2', "feeds[0].threshold"),
    ('poll_interval = "often"', "feeds[0].poll_interval"),
    ('enabled = "yes"', "feeds[0].enabled"),
    ('cookies = "a=b"', "did you mean 'cookie'"),
])
def test_bad_feed_settings_name_the_key(tmp_path, table, message):
    cfg = _config(tmp_path, f'[[feeds]]\nurl = "https://example.org/feed"\n{table}\n')
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert str(cfg) in str(err.value) and message in str(err.value)


def test_a_bad_fetch_proxy_is_not_echoed(tmp_path):
    cfg = _config(tmp_path, "", extra='proxy = "gopher://u:hunter2@proxy"\n')
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "fetch.proxy" in str(err.value) and "hunter2" not in str(err.value)
