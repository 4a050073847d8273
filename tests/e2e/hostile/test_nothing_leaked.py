"""Secrets and hostile URLs in every output: credentials redacted everywhere a URL is shown,
sent only to the host they were given for; URLs encoded so they cannot break out of
Markdown or HTML; IDN hosts as punycode; connections go to the address that was checked."""

from __future__ import annotations

import asyncio
import base64
import json
import re

import feedparser
import httpx

from ingest.config import FetchSettings
from ingest.sources.fetch import Fetcher
from ingest.sources.urls import display, normalize, redact, redact_text
from tests.conftest import run_cli, write_config
from tests.support.web import article_page, article_text, redirect, rss

SECRETS = ("PaSS-Word", "SECRET1", "SECRET2", "SECRET3")


def test_credentials_never_appear_in_outputs_and_never_follow_a_redirect(tmp_path, seeds_dir, web):
    h2, h3, h4 = web.host(2), web.host(3), web.host(4)
    ta, a = article_text("on_hyesan_gold")
    tb, b = article_text("on_sanctions_gold")
    h2.add("/a.html", article_page(ta, a))
    h3.add("/b.html", handler=redirect(h4.url("/c.html")))
    h4.add("/c.html", article_page(tb, b))
    items = [{"title": ta, "link": h2.url("/a.html?id=7&api_key=SECRET2"), "guid": "a"},
             {"title": tb, "link": f"http://u2:SECRET3@127.0.0.3:{h3.port}/b.html", "guid": "b"}]
    h2.add("/feed.xml?token=SECRET1", rss("F", items), content_type="application/rss+xml")
    h2.add("/dead.xml?token=SECRET1", "no", status=500, content_type="text/plain")
    feed = f"http://user:PaSS-Word@127.0.0.2:{h2.port}/feed.xml?token=SECRET1"
    dead = f"http://user:PaSS-Word@127.0.0.2:{h2.port}/dead.xml?token=SECRET1"
    cfg = write_config(tmp_path, [feed, dead], "[relevance]\nthreshold = 0\n")
    log = tmp_path / "ingest.log"
    outputs = []
    r = run_cli("--config", str(cfg), "--log-file", str(log), "--log-level", "DEBUG", "poll", "--json")
    assert r.code == 0 and r.json()["kept"] == 2
    outputs.append(r.out + r.err)
    for args in (("status",), ("status", "--json"), ("export",), ("review", "--json"), ("poll",),
                 *(("digest", "--since", "1d", "--format", f) for f in ("markdown", "html", "json", "atom")),
                 ("digest",)):
        r = run_cli("--config", str(cfg), "--log-file", str(log), *args)
        assert r.code == 0, (args, r.err)
        outputs.append(r.out + r.err)
    outputs.append(log.read_text(encoding="utf-8"))
    outputs += [p.read_text(encoding="utf-8") for p in (tmp_path / "store" / "digests").iterdir()]
    everything = "\n".join(outputs)
    for secret in SECRETS:
        assert secret not in everything, secret
    assert "REDACTED" in everything and "id=7" in everything  # redacted, not dropped
    # the request itself carried them, exactly as written (case kept)
    feed_hit = [r for r in h2.requests if r.path.startswith("/feed.xml")][0]
    assert feed_hit.path == "/feed.xml?token=SECRET1"
    assert feed_hit.headers["authorization"] == "Basic " + base64.b64encode(b"user:PaSS-Word").decode()
    assert h3.hits("/b.html")[0].headers["authorization"] == "Basic " + base64.b64encode(b"u2:SECRET3").decode()
    # ... and not to the host a redirect led to
    assert "authorization" not in h4.hits("/c.html")[0].headers


def test_hostile_urls_cannot_break_out_of_the_digest(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    link = h.url('/p.html?x=>)<img src=x onerror=alert(1)>&y="quoted"')
    raw_path = httpx.URL(link).raw_path.decode()
    h.add(raw_path, article_page("Click [here](javascript:alert(1)) " + title, body))
    feed = h.add("/f.xml", rss("F", [{"title": title, "link": link, "guid": "p"}]),
                 content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed], "[relevance]\nthreshold = 0\n")
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 1
    md = run_cli("--config", str(cfg), "digest", "--since", "1d").out
    html_out = run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "html").out
    atom = run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "atom").out
    targets = re.findall(r"\]\(<([^>]*)>\)", md)
    assert targets and all(not set(t) & set("<>()\"' ") for t in targets)
    assert "<img" not in md and "<img" not in html_out and "javascript:" not in html_out.replace("javascript:alert", "")
    assert "onerror=alert(1)>" not in html_out
    (entry,) = feedparser.parse(atom).entries
    assert "<" not in entry.link and entry.link.startswith(h.base)


def test_display_redacts_encodes_and_shows_punycode():
    hostile = "http://x>)<img src=x onerror=alert(1)>@example.org/p"
    assert "<" not in display(hostile) and "img" not in display(hostile)
    assert display("https://пример.рф/путь a(b)") == "https://xn--e1afmkfd.xn--p1ai/" \
        "%D0%BF%D1%83%D1%82%D1%8C%20a%28b%29"
    assert display("http://USER:Pw@Example.org:80/x?token=t&q=1") == "http://REDACTED@example.org/x?token=REDACTED&q=1"
    assert redact("https://h/p?X-Amz-Signature=s&keyword=k") == "https://h/p?X-Amz-Signature=REDACTED&keyword=k"
    assert redact_text("failed: GET http://a:b@h/x?sig=1 (timeout)") == \
        "failed: GET http://REDACTED@h/x?sig=REDACTED (timeout)"
    # identity keeps credentials exactly (they are part of what is fetched), never lower-cased
    assert normalize("http://User:PaSS@Host/p?b=2&a=1#f") == "http://User:PaSS@host/p?a=1&b=2"


def test_a_name_is_checked_and_connected_to_at_the_checked_address(web):
    h = web.host(1)  # 127.0.0.1, where "localhost" points
    h.add("/x", "hello", content_type="text/plain")

    async def go():
        strict = FetchSettings(allow_private_networks=False, host_delay=0)
        async with Fetcher(strict) as f:
            # the name path of the guard: "localhost" resolves to loopback and is refused
            refused = await f.fetch(f"http://localhost:{h.port}/x")
        loose = FetchSettings(allow_private_networks=True, host_delay=0)
        async with Fetcher(loose) as f:
            ok = await f.fetch(f"http://localhost:{h.port}/x")
            pinned = dict(f._pins)
        async with Fetcher(loose) as f:
            # a pinned name is connected to at its checked address, with no second lookup:
            # this name has no DNS answer at all, yet the request reaches 127.0.0.1
            f._pins["pinned.invalid"] = ("127.0.0.1",)
            via_pin = await f.fetch(f"http://pinned.invalid:{h.port}/x", trusted=True)
        return refused, ok, pinned, via_pin

    refused, ok, pinned, via_pin = asyncio.run(go())
    assert refused.error and "loopback" in refused.error and not refused.status
    assert ok.ok and ok.body == b"hello" and set(pinned["localhost"]) <= {"127.0.0.1", "::1"}
    assert via_pin.ok and via_pin.body == b"hello"
    assert h.hits("/x")[-1].headers["host"] == f"pinned.invalid:{h.port}"  # the name is still what is asked for


def test_status_json_shows_no_secret_from_a_moved_feed(tmp_path, seeds_dir, web):
    h = web.host(2)
    h.add("/old.xml", handler=redirect(h.url("/new.xml?key=SECRET1"), 301))
    h.add("/new.xml", rss("F", []), content_type="application/rss+xml")
    cfg = write_config(tmp_path, [h.url("/old.xml")])
    run_cli("--config", str(cfg), "poll")
    out = run_cli("--config", str(cfg), "status", "--json").out + run_cli("--config", str(cfg), "status").out
    assert "SECRET1" not in out and "key=REDACTED" in out
    assert json.loads(run_cli("--config", str(cfg), "status", "--json").out)[0]["moved_to"].endswith("key=REDACTED")
