"""A small loopback web for tests: hosts on 127.0.0.x serving feeds and pages.

Each host is a real threaded HTTP server. Routes are static responses (with
ETag/Last-Modified and 304 handling) or callables. Every request is recorded,
and the server measures how many requests were in flight at once.
"""

from __future__ import annotations

import gzip
import html
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    handler: Callable | None = None  # handler(request) -> None, writes the response itself
    delay: float = 0.0


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    at: float
    method: str = "GET"
    body: bytes = b""
    peer: int = 0  # the client's port: requests on one connection share it


class Host:
    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                body = b""
                if self.command == "POST":
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with host._lock:
                    host.in_flight += 1
                    host.max_in_flight = max(host.max_in_flight, host.in_flight)
                    host.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                 time.monotonic(), self.command, body, self.client_address[1]))
                try:
                    host._serve(self)
                finally:
                    with host._lock:
                        host.in_flight -= 1

            do_POST = do_GET  # webhooks (notifications): recorded with their body

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # clients that hang up early are part of the tests

        self.server = Server((ip, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        # a short poll interval: shutdown() waits for it, once per host, at every test's end (0.5 s by default)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", status: int = 200, content_type: str = "text/html; "
            "charset=utf-8", **kw) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        route = Route(body=body, status=status, **kw)
        route.headers.setdefault("Content-Type", content_type)
        self.routes[path] = route
        return self.url(path)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        # like a real server, a query string the route does not name is ignored (?utm_source=...)
        route = self.routes.get(req.path) or self.routes.get(req.path.split("?", 1)[0])
        if route is None:
            self.respond(req, 404, b"not found", {"Content-Type": "text/plain"})
            return
        if route.delay:
            time.sleep(route.delay)
        if route.handler is not None:
            route.handler(req)
            return
        headers = dict(route.headers)
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        inm = req.headers.get("If-None-Match")
        ims = req.headers.get("If-Modified-Since")
        if route.status == 200 and ((route.etag and inm == route.etag) or
                                    (not route.etag and route.last_modified and ims == route.last_modified)):
            self.respond(req, 304, b"", {k: v for k, v in headers.items() if k in ("ETag", "Last-Modified")})
            return
        self.respond(req, route.status, route.body, headers)

    @staticmethod
    def respond(req: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            req.send_response(status)
            for k, v in headers.items():
                req.send_header(k, v)
            if "Content-Length" not in headers:
                req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Web:
    """Hosts by address; ``web.host(2)`` is 127.0.0.2."""

    def __init__(self) -> None:
        self.hosts: dict[int, Host] = {}

    def host(self, n: int = 1) -> Host:
        if n not in self.hosts:
            self.hosts[n] = Host(f"127.0.0.{n}")
        return self.hosts[n]

    def close(self) -> None:
        for h in self.hosts.values():
            h.close()


# -- content -------------------------------------------------------------------

def article_text(name: str) -> tuple[str, str]:
    """(title, body) of a fixture article."""
    raw = (FIXTURES / "articles" / f"{name}.txt").read_text(encoding="utf-8")
    title, _, body = raw.partition("\n\n")
    return title.strip(), body.strip()


def article_page(title: str, body: str, *, canonical: str | None = None, site: str = "Example News",
                 author: str = "Staff Reporter", date: str = "2026-11-20") -> str:
    """An article page with the boilerplate real news pages carry."""
    paras = "\n".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n") if p.strip())
    canon = f'<link rel="canonical" href="{html.escape(canonical)}">' if canonical else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} | {site}</title>
{canon}<meta name="author" content="{author}"><meta property="og:site_name" content="{site}">
<meta property="article:published_time" content="{date}T08:00:00Z"></head>
<body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/business">Business</a></li><li><a href="/sport">Sport</a></li></ul></nav>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div></header>
<main><article><h1>{html.escape(title)}</h1><p class="byline">By {author}, {date}</p>
{paras}
</article>
<aside class="related"><h3>Most read</h3><ul><li><a href="/a">Celebrity wedding photos</a></li>
<li><a href="/b">Ten tips for a better garden</a></li></ul></aside>
<section id="comments" class="comments"><h3>Comments</h3>
<div class="comment">Great article, subscribe to my channel for more!</div></section>
</main>
<footer><p>Copyright 2026 {site}. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>"""


def rss(title: str, items: list[dict], extra: str = "") -> str:
    out = []
    for it in items:
        guid = f"<guid isPermaLink=\"false\">{html.escape(it['guid'])}</guid>" if it.get("guid") else ""
        link = f"<link>{html.escape(it['link'])}</link>" if it.get("link") else ""
        date = f"<pubDate>{it['date']}</pubDate>" if it.get("date") else ""
        out.append(f"<item><title>{html.escape(it.get('title', ''))}</title>{link}{guid}{date}"
                   f"<description>{html.escape(it.get('summary', ''))}</description></item>")
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{html.escape(title)}'
            f"</title><link>http://example.org/</link><description>test</description>{extra}"
            + "".join(out) + "</channel></rss>")


def atom(title: str, items: list[dict]) -> str:
    out = []
    for it in items:
        out.append(f"<entry><title>{html.escape(it.get('title', ''))}</title>"
                   f"<link rel=\"alternate\" href=\"{html.escape(it['link'])}\"/>"
                   f"<id>{html.escape(it.get('guid') or it['link'])}</id>"
                   f"<updated>{it.get('iso', '2026-11-20T08:00:00Z')}</updated>"
                   f"<summary>{html.escape(it.get('summary', ''))}</summary></entry>")
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{html.escape(title)}</title><id>urn:test:{html.escape(title)}</id>"
            f"<updated>2026-11-20T08:00:00Z</updated>" + "".join(out) + "</feed>")


def rdf(title: str, items: list[dict]) -> str:
    out = []
    for it in items:
        out.append(f'<item rdf:about="{html.escape(it["link"])}"><title>{html.escape(it.get("title", ""))}'
                   f'</title><link>{html.escape(it["link"])}</link></item>')
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            ' xmlns="http://purl.org/rss/1.0/">'
            f'<channel rdf:about="http://example.org/"><title>{html.escape(title)}</title>'
            "<link>http://example.org/</link><description>test</description></channel>"
            + "".join(out) + "</rdf:RDF>")


def json_feed(title: str, items: list[dict], version: str = "1.1") -> str:
    import json

    out = []
    for i, it in enumerate(items):
        item = {"id": it.get("guid") or i, "title": it.get("title", ""), "content_text": it.get("summary", "x")}
        item["url" if version == "1.1" or i % 2 == 0 else "external_url"] = it["link"]
        if it.get("iso"):
            item["date_published"] = it["iso"]
        out.append(item)
    return json.dumps({"version": f"https://jsonfeed.org/version/{version}", "title": title,
                       "home_page_url": "http://example.org/", "items": out})


def news_sitemap(items: list[dict], name: str = "Example News") -> str:
    out = []
    for it in items:
        news = (f"<news:news><news:publication><news:name>{html.escape(name)}</news:name>"
                f"<news:language>en</news:language></news:publication>"
                f"<news:publication_date>{it.get('iso', '2026-11-20T08:00:00Z')}</news:publication_date>"
                f"<news:title>{html.escape(it.get('title', ''))}</news:title></news:news>")
        out.append(f"<url><loc>{html.escape(it['link'])}</loc><lastmod>{it.get('iso', '2026-11-20')}</lastmod>"
                   f"{news}</url>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + "".join(out) + "</urlset>")


def sitemap_index(children: list[tuple[str, str]]) -> str:
    body = "".join(f"<sitemap><loc>{html.escape(u)}</loc><lastmod>{d}</lastmod></sitemap>" for u, d in children)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/'
            'sitemap/0.9">' + body + "</sitemapindex>")


def redirect(to: str, status: int = 302):
    """A route handler answering with a redirect to ``to``."""
    def handler(req):
        Host.respond(req, status, b"", {"Location": to})
    return handler


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


class Proxy:
    """A forward HTTP proxy on loopback (absolute-form GET, as httpx sends to an http:// proxy):
    records what passes through it and relays it to the origin."""

    def __init__(self, ip: str = "127.0.0.90") -> None:
        import urllib.error
        import urllib.request

        self.requests: list[Request] = []
        proxy = self
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy of its own

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                headers = {k.lower(): v for k, v in self.headers.items()}
                proxy.requests.append(Request(self.path, headers, time.monotonic()))
                fwd = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "host",
                                                                                   "proxy-authorization")}
                try:
                    with opener.open(urllib.request.Request(self.path, headers=fwd), timeout=10) as resp:
                        status, body, out = resp.status, resp.read(), dict(resp.headers.items())
                except urllib.error.HTTPError as exc:
                    status, body, out = exc.code, exc.read(), dict(exc.headers.items())
                out = {k: v for k, v in out.items() if k.lower() not in ("transfer-encoding", "connection",
                                                                         "content-length")}
                Host.respond(self, status, body, out)

        self.server = ThreadingHTTPServer((ip, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{ip}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
