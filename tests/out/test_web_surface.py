"""The web view as a user (and a hostile page) reaches it: over real sockets, with odd Host
headers, keep-alive connections, a second server, digests with credentials in their URLs."""

from __future__ import annotations

import asyncio
import http.client
import re
import signal
import socket

import httpx
import pytest

from ingest.out.web import bind, host_allowed
from tests.conftest import build_news_web, run_cli, write_config
from tests.out.test_web import _csrf, _free_port, _serve
from tests.support.web import article_page, article_text, rss

LEAKS = ("<built-in", "object at 0x", "None", "{{", "{%", "Undefined")


def test_no_page_shows_python_internals_or_template_syntax(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds, "[relevance]\nthreshold = 0.1\nkeep_rejected = \"30d\"\n")
    assert run_cli("--config", str(cfg), "poll").code == 0
    assert run_cli("--config", str(cfg), "digest").code == 0
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        with httpx.Client(base_url=f"http://{listen}", timeout=10) as client:
            listing = client.get("/digests")
            assert re.search(r"· \d+ stor(y|ies)</li>", listing.text), listing.text
            digests = re.findall(r'href="(/digests/[^"]+)"', listing.text)
            assert digests
            home = client.get("/")
            articles = [f"/a/{i}" for i in re.findall(r'href="/a/(\d+)"', home.text)]
            review = client.get("/review")
            pages = re.findall(r'href="(/p/\d+)"', review.text)
            assert pages, "review items open inside the view"
            for path in ["/", "/feeds", "/review", "/near-misses", "/search?q=gold", "/search?q=%22open",
                         "/digests", *digests, *articles, *pages]:
                r = client.get(path, follow_redirects=True)
                assert r.status_code == 200, path
                for leak in LEAKS:
                    assert leak not in r.text, (path, leak)
            # a feed's state and its interval column say the same interval
            feeds = client.get("/feeds").text
            rows = [r for r in re.findall(r"<tr>(.*?)</tr>", feeds, re.S) if "ok: polled" in r]
            assert rows
            for row in rows:
                said = re.search(r"ok: polled (every [^<;]+)", row).group(1)
                assert re.search(r'data-label="next poll">[^<]*<br><span class="meta">(every [^<]+)</span>',
                                 row).group(1) == said, row
            # a digest opened from the view has a way back
            assert 'href="/digests"' in client.get(digests[0]).text
            # a search the engine cannot read is an error, not a success followed by "No match."
            bad = client.get("/search", params={"q": '"open'}).text
            assert 'class="error"' in bad and "No match." not in bad and 'class="flash"' not in bad
            # the confirmation shown is the view's own, never text from the URL
            crafted = client.get("/", params={"done": "Your account is suspended, call 555"}).text
            assert "suspended" not in crafted
            # no 404 for the icon every browser asks for
            icon = client.get("/favicon.ico")
            assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_only_the_hosts_the_view_is_reached_by_are_served(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds, '[web]\nallowed_hosts = ["ingest.example.org", "*.lan.example"]\n')
    assert run_cli("--config", str(cfg), "poll").code == 0
    port = _free_port()
    listen = f"127.0.0.1:{port}"
    proc = _serve(cfg, listen)
    try:
        with httpx.Client(base_url=f"http://{listen}", timeout=10) as client:
            target = re.findall(r'href="/a/(\d+)"', client.get("/").text)[0]
            token = _csrf(client, f"/a/{target}")
            evil = {"Host": f"rebind.attacker.example:{port}"}
            for path in ("/", f"/a/{target}", "/feeds", "/static/style.css", "/healthz", "/nothing"):
                r = client.get(path, headers=evil)
                assert r.status_code == 400, path
                assert "set-cookie" not in r.headers
            # a rebinding page that holds a cookie and a token still cannot record a verdict
            r = client.post(f"/a/{target}/verdict", data={"verdict": "irrelevant", "csrf": token}, headers=evil)
            assert r.status_code == 400
            assert f'href="/a/{target}"' in client.get("/").text  # still in the corpus
            for host in (f"localhost:{port}", f"127.0.0.1:{port}", "ingest.example.org", f"a.lan.example:{port}",
                         "LOCALHOST."):
                assert client.get("/", headers={"Host": host}).status_code == 200, host
            assert client.get("/", headers={"Host": "lan.example.evil"}).status_code == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_host_allowed_reads_every_host_header_form():
    assert host_allowed("127.0.0.1:8750", "127.0.0.1", ())
    assert host_allowed("[::1]:8750", "::1", ())
    assert host_allowed("[::1]", "127.0.0.1", ())
    assert host_allowed("localhost", "127.0.0.1", ())
    assert host_allowed("myhost:8750", "myhost", ())
    assert not host_allowed("", "127.0.0.1", ())
    assert not host_allowed("evil.example", "127.0.0.1", ())
    assert not host_allowed("localhost.evil.example", "127.0.0.1", ())
    assert host_allowed("x.example.org", "127.0.0.1", ("*.example.org",))
    assert not host_allowed("example.org.evil", "127.0.0.1", ("*.example.org",))


def test_the_listening_socket_gives_accepted_connections_tcp_nodelay():
    """asyncio sets TCP_NODELAY only on sockets whose proto is TCP; without it each response after the
    first on a keep-alive connection waits for the client's delayed ACK (~40 ms)."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        async def accepted(reader, writer) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert seen == [1]


def test_keep_alive_requests_are_answered_without_a_delayed_ack_stall(tmp_path, seeds_dir, web):
    """Through the real server: the 2nd..20th request on one connection. A stall is ~40 ms each; the
    bar is the median, far above a loaded machine's jitter and far below the stall."""
    import statistics
    import time

    cfg = write_config(tmp_path, [])
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        conn = http.client.HTTPConnection(*listen.split(":"), timeout=10)
        times = []
        for _ in range(21):
            started = time.perf_counter()
            conn.request("GET", "/static/style.css")
            resp = conn.getresponse()
            resp.read()
            times.append(time.perf_counter() - started)
            assert resp.status == 200
        conn.close()
        assert statistics.median(times[1:]) < 0.030, times
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_a_second_serve_says_who_holds_the_store_and_where(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [])
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        r = run_cli("--config", str(cfg), "serve", "--listen", f"127.0.0.1:{_free_port()}")
        assert r.code == 1
        assert "`ingest serve`" in r.err and f"http://{listen}/" in r.err and str(proc.pid) in r.err
        assert "ingest run" not in r.err
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.parametrize("userinfo", ["user:S3cretPW", "x>)<img src=x onerror=alert(1)>:S3cretPW"])
def test_digests_label_sites_by_host_alone(tmp_path, seeds_dir, web, userinfo):
    h = web.host(2)
    base = f"http://{userinfo}@{h.ip}:{h.port}"
    items = []
    for i, name in enumerate(["on_hyesan_gold", "on_sanctions_gold"]):
        title, body = article_text(name)
        h.add(f"/a{i}.html", article_page(title, body, site=""))
        items.append({"title": title, "link": f"{base}/a{i}.html", "guid": f"g{i}"})
    h.add("/feed.xml", rss("F", items), content_type="application/rss+xml")
    feed = f"{base}/feed.xml"
    cfg = write_config(tmp_path, [], "[relevance]\nthreshold = 0.05\n")
    cfg.write_text(cfg.read_text() + f"[[feeds]]\nurl = '{feed}'\n")
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 2
    outputs = [run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", f).out
               for f in ("markdown", "html", "atom", "json")]
    assert run_cli("--config", str(cfg), "digest").code == 0
    outputs += [p.read_text() for p in (tmp_path / "store" / "digests").iterdir() if p.is_file()]
    assert len(outputs) >= 6
    for text in outputs:
        assert "S3cretPW" not in text and "<img" not in text and "onerror=" not in text
        assert h.ip in text


def test_a_verdict_recorded_while_serve_holds_the_store_says_who_applies_it(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    assert run_cli("--config", str(cfg), "poll").code == 0
    (first, *_) = run_cli("--config", str(cfg), "export").jsonl()
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        r = run_cli("--config", str(cfg), "mark", f"a{first['id']}", "--irrelevant")
        assert r.code == 0
        assert "`ingest serve`" in r.err and "running service" not in r.err  # no service runs: not promised
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    corpus = tmp_path / "store" / "corpus"
    assert (corpus / first["path"].split("/")[-1]).exists()  # recorded, not applied yet
    assert run_cli("--config", str(cfg), "poll").code == 0  # the next poll applies it
    assert not (corpus / first["path"].split("/")[-1]).exists()
    assert (tmp_path / "store" / "withdrawn" / first["path"].split("/")[-1]).exists()
