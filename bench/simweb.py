"""A simulated web on loopback for benchmarks: H hosts x F feeds x E entries.

Each host is an asyncio HTTP/1.1 server (keep-alive) on its own address,
127.1.x.y:8080-ish, answering after a configurable latency (default 100 ms,
like a real round trip; with ``latency_max`` each answer waits a time drawn
between the two, from a seeded generator: slow and fast sites mixed). Feeds are RSS 2.0 with ETag and Last-Modified (304
on a match) and gzip when asked; article pages are real saved web pages
(the 990 pages of trafilatura's evaluation set: news, blogs, magazines, with
their own boilerplate and sizes, 145 KB on average); without the shared
data, Reuters-21578 stories (or the test fixtures) wrapped in typical news
boilerplate (navigation, cookie banner, related links, comments, footer).

Control: GET /_sim/grow on any host adds one entry to every feed of every
host; GET /_sim/stats returns the request counts (total, feeds, pages, 304s)
and the highest number of requests in flight at one host.

Run it in its own process: ``SimWeb(...).start()`` returns once it listens;
``.stop()``. ``python bench/simweb.py --hosts 4`` serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import html
import json
import multiprocessing
import random
import sys
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REUTERS = ROOT.parent / "shared" / "data" / "reuters" / "articles.jsonl.gz"
EVAL_PAGES = ROOT.parent / "shared" / "data" / "extraction" / "trafilatura-eval" / "pages"
BASE_TIME = 1_790_000_000  # entry dates count back from here


def load_texts(limit: int = 5000, seed: int = 1) -> list[tuple[str, str]]:
    """(title, body) pairs: Reuters stories with a body of 100+ words."""
    if REUTERS.exists():
        out = []
        with gzip.open(REUTERS, "rt", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                if d["title"] and len(d["body"].split()) >= 100:
                    paras = [p.strip() for p in d["body"].replace("\n    ", "\n\n").split("\n\n") if p.strip()]
                    out.append((d["title"].title(), "\n\n".join(" ".join(p.split()) for p in paras)))
        random.Random(seed).shuffle(out)
        return out[:limit]
    folder = ROOT / "tests" / "fixtures" / "articles"
    return [tuple(p.read_text().split("\n\n", 1)) for p in sorted(folder.glob("*.txt"))]


def load_pages(limit: int = 1000) -> list[bytes]:
    """Real saved news/blog pages (trafilatura's evaluation set), as served: realistic
    sizes and boilerplate. Empty when the shared data is absent."""
    if not EVAL_PAGES.exists():
        return []
    return [gzip.decompress(p.read_bytes()) for p in sorted(EVAL_PAGES.glob("*.html.gz"))[:limit]]


def page_html(title: str, body: str, site: str) -> bytes:
    paras = "\n".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n"))
    nav = "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(12))
    related = "".join(f'<li><a href="/related/{i}">Related story number {i} you may like</a></li>' for i in range(8))
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | {site}</title>
<meta property="og:site_name" content="{site}"><meta name="author" content="Staff">
<script>window.analytics = {{id: "UA-000"}};</script><style>body{{font-family:serif}}</style></head>
<body><header><nav><ul>{nav}</ul></nav><div class="cookie">We use cookies. Accept all cookies?</div></header>
<main><article><h1>{html.escape(title)}</h1><p class="byline">By Staff, {site}</p>{paras}</article>
<aside><h3>Related</h3><ul>{related}</ul></aside>
<section class="comments"><h3>Comments</h3><div class="comment">First! Great read.</div>
<div class="comment">Subscribe to my channel.</div></section></main>
<footer><p>Copyright {site}. All rights reserved.</p><a href="/privacy">Privacy</a></footer></body></html>""".encode()


class _Host:
    def __init__(self, sim: _Server, index: int, ip: str) -> None:
        self.sim, self.index, self.ip = sim, index, ip
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                path = line.decode("latin-1").split(" ")[1] if line.count(b" ") >= 2 else "/"
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    await asyncio.sleep(self.sim.delay())
                    status, resp_headers, body = self.sim.respond(self, path, headers)
                finally:
                    self.in_flight -= 1
                head = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'X'}", f"Content-Length: {len(body)}"]
                head += [f"{k}: {v}" for k, v in resp_headers.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class _Server:
    def __init__(self, hosts: int, feeds: int, entries: int, latency: float, port: int, seed: int,
                 real_pages: bool) -> None:
        self.n_hosts, self.n_feeds, self.entries, self.latency, self.port = hosts, feeds, entries, latency, port
        self.texts = load_texts(seed=seed)
        self.pages = load_pages() if real_pages else []
        self.grown = 0  # entries added to every feed by /_sim/grow
        self.stats = {"requests": 0, "feeds": 0, "pages": 0, "not_modified": 0, "robots": 0}
        self.hosts = [_Host(self, i, host_ip(i)) for i in range(hosts)]
        self.page_cache: dict[str, bytes] = {}
        self.latency_range: tuple[float, float] | None = None  # (min, max): a latency drawn per request
        self.rng = random.Random(seed)

    def delay(self) -> float:
        if self.latency_range is None:
            return self.latency
        return self.rng.uniform(*self.latency_range)

    def feed_xml(self, host: int, feed: int) -> tuple[bytes, str, str]:
        n = self.entries + self.grown
        items = []
        for e in range(n - 1, -1, -1):
            t = BASE_TIME + e * 3600
            title = self.texts[self._text_index(host, feed, e)][0]
            items.append(f"<item><title>{html.escape(title)}</title>"
                         f"<link>http://{host_ip(host)}:{self.port}/a/{feed}/{e}.html</link>"
                         f"<guid>{host}-{feed}-{e}</guid><pubDate>{formatdate(t, usegmt=True)}</pubDate></item>")
        body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Sim {host}/{feed}'
                f"</title><link>http://{host_ip(host)}/</link><description>sim</description>"
                + "".join(items) + "</channel></rss>").encode()
        etag = '"' + hashlib.md5(body).hexdigest()[:16] + '"'
        return body, etag, formatdate(BASE_TIME + n * 3600, usegmt=True)

    def _text_index(self, host: int, feed: int, entry: int) -> int:
        return (host * 7919 + feed * 104729 + entry * 15485863) % len(self.texts)

    def respond(self, host: _Host, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.stats["requests"] += 1
        if path == "/_sim/grow":
            self.grown += 1
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if path == "/_sim/stats":
            body = json.dumps({**self.stats, "grown": self.grown,
                               "max_in_flight_per_host": max(h.max_in_flight for h in self.hosts)}).encode()
            return 200, {"Content-Type": "application/json"}, body
        if path == "/robots.txt":
            self.stats["robots"] += 1
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"
        gz = "gzip" in headers.get("accept-encoding", "")
        if path.startswith("/feed") and path.endswith(".xml"):
            self.stats["feeds"] += 1
            feed = int(path[5:-4])
            body, etag, modified = self.feed_xml(host.index, feed)
            if headers.get("if-none-match") == etag or headers.get("if-modified-since") == modified:
                self.stats["not_modified"] += 1
                return 304, {"ETag": etag, "Last-Modified": modified}, b""
            return self._body(body, {"Content-Type": "application/rss+xml", "ETag": etag,
                                     "Last-Modified": modified}, gz)
        if path.startswith("/a/"):
            self.stats["pages"] += 1
            _, _, feed, entry = path.split("/")
            key = f"{host.index}/{path}"
            body = self.page_cache.get(key)
            if body is None:
                i = self._text_index(host.index, int(feed), int(entry.split(".")[0]))
                if self.pages:
                    body = self.pages[i % len(self.pages)]
                else:
                    title, text = self.texts[i]
                    body = page_html(title, text, f"Site {host.index}")
            return self._body(body, {"Content-Type": "text/html; charset=utf-8"}, gz)
        return 404, {"Content-Type": "text/plain"}, b"not found"

    @staticmethod
    def _body(body: bytes, headers: dict[str, str], gz: bool) -> tuple[int, dict[str, str], bytes]:
        if gz:
            return 200, {**headers, "Content-Encoding": "gzip"}, gzip.compress(body, 5)
        return 200, headers, body

    async def serve(self, ready) -> None:
        servers = [await asyncio.start_server(h.handle, h.ip, self.port, backlog=1024) for h in self.hosts]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))


def host_ip(i: int) -> str:
    return f"127.1.{i // 250}.{i % 250 + 2}"


def _run(args, ready) -> None:
    *server_args, latency_max = args
    server = _Server(*server_args)
    if latency_max is not None:
        server.latency_range = (server.latency, latency_max)
    asyncio.run(server.serve(ready))


class SimWeb:
    def __init__(self, hosts: int = 20, feeds: int = 5, entries: int = 20, latency: float = 0.1,
                 port: int = 18080, seed: int = 1, real_pages: bool = True,
                 latency_max: float | None = None) -> None:
        self.hosts, self.feeds, self.entries, self.latency, self.port = hosts, feeds, entries, latency, port
        self.args = (hosts, feeds, entries, latency, port, seed, real_pages, latency_max)
        self.proc: multiprocessing.Process | None = None

    def start(self) -> SimWeb:
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        self.proc = ctx.Process(target=_run, args=(self.args, ready), daemon=True)
        self.proc.start()
        if not ready.wait(60):
            raise RuntimeError("simulated web did not start")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.join(10)

    def feed_urls(self) -> list[str]:
        return [f"http://{host_ip(h)}:{self.port}/feed{f}.xml" for h in range(self.hosts) for f in range(self.feeds)]

    def control(self, what: str) -> dict | str:
        import httpx

        r = httpx.get(f"http://{host_ip(0)}:{self.port}/_sim/{what}", timeout=30)
        return r.json() if what == "stats" else r.text


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--feeds", type=int, default=5)
    ap.add_argument("--entries", type=int, default=20)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--port", type=int, default=18080)
    a = ap.parse_args()
    web = SimWeb(a.hosts, a.feeds, a.entries, a.latency, a.port).start()
    print("\n".join(web.feed_urls()), file=sys.stderr)
    try:
        web.proc.join()
    except KeyboardInterrupt:
        web.stop()
