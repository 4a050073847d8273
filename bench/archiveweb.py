"""A simulated web of news sites with years of history, on loopback, for bench/backfill.py.

Each site is an asyncio HTTP/1.1 server (bench.simweb's host handler: keep-alive, a latency per
answer) on its own address, serving:

- ``/robots.txt`` with a ``Sitemap:`` line for ``/sitemap_index.xml``;
- the index: one sitemap per month (the older ones gzipped, ``.xml.gz``) and ``/news-sitemap.xml``
  (the last two days, with ``news:title`` and ``news:publication_date``);
- ``/feed/``: RSS 2.0 of the newest 20 articles; on a WordPress-style site ``/feed/?paged=N`` pages
  through the whole history (20 a page);
- article pages: the story wrapped in a news page's furniture, with five related-story links
  (three to stories sharing its first Reuters topic, two to recent ones, as a "related" box
  would), linked by the other story's title.

An article's URL is a dated slug of its title (``/2024/03/05/gold-output-rises/``) or opaque
(``/news/12345``, ``/?p=991``), per the site's share of slugs. ``/_sim/stats`` returns request
counts by kind.
"""

from __future__ import annotations

import asyncio
import gzip
import html
import json
import multiprocessing
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from bench.simweb import _Host, host_ip

START = datetime(2023, 1, 1, tzinfo=UTC)
DAYS = 3 * 365


@dataclass
class Story:
    title: str
    body: str
    topics: list[str]


def slug(title: str) -> str:
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "-".join(words[:10]) or "story"


class _Site:
    def __init__(self, index: int, port: int, stories: list[dict], slug_share: float, paged_feed: bool,
                 seed: int) -> None:
        self.index, self.port, self.paged_feed = index, port, paged_feed
        self.origin = f"http://{host_ip(index)}:{port}"
        rng = random.Random(seed * 1000 + index)
        n = len(stories)
        self.stories = stories
        self.dates = [START + timedelta(days=DAYS * i / max(1, n - 1), hours=rng.randrange(24)) for i in range(n)]
        self.paths: list[str] = []
        for i, s in enumerate(stories):
            d = self.dates[i]
            if rng.random() < slug_share:
                self.paths.append(f"/{d:%Y/%m/%d}/{slug(s['title'])}-{i}/")
            else:
                self.paths.append(f"/news/{10_000 + i}" if i % 2 else f"/?p={10_000 + i}")
        self.by_path = {p: i for i, p in enumerate(self.paths)}
        by_topic: dict[str, list[int]] = {}
        for i, s in enumerate(stories):
            if s["topics"]:
                by_topic.setdefault(s["topics"][0], []).append(i)
        self.related: list[list[int]] = []
        for i, s in enumerate(stories):
            same = [j for j in by_topic.get(s["topics"][0], []) if j != i] if s["topics"] else []
            picks = rng.sample(same, min(3, len(same)))
            recent = [j for j in range(max(0, i - 40), i) if j not in picks]
            picks += rng.sample(recent, min(5 - len(picks), len(recent)))
            self.related.append(picks)
        self.months = sorted({f"{d:%Y-%m}" for d in self.dates})
        self.stats = {"requests": 0, "pages": 0, "sitemaps": 0, "feeds": 0, "robots": 0}

    def url(self, i: int) -> str:
        return self.origin + self.paths[i]

    def page(self, i: int) -> bytes:
        s = self.stories[i]
        paras = "\n".join(f"<p>{html.escape(p)}</p>" for p in s["body"].split("\n\n"))
        rel = "".join(f'<li><a href="{self.paths[j]}">{html.escape(self.stories[j]["title"])}</a></li>'
                      for j in self.related[i])
        nav = "".join(f'<li><a href="/section/{k}">Section {k}</a></li>' for k in range(8))
        name = f"Site {self.index}"
        return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(s['title'])} | {name}</title><meta property="og:site_name" content="{name}">
<meta property="article:published_time" content="{self.dates[i].isoformat()}"></head>
<body><header><nav><ul>{nav}</ul></nav></header><main><article><h1>{html.escape(s['title'])}</h1>
<p class="byline">By Staff</p>{paras}</article>
<aside class="related"><h3>Related stories</h3><ul>{rel}</ul></aside></main>
<footer><p>Copyright {name}.</p><a href="/privacy">Privacy</a></footer></body></html>""".encode()

    def sitemap(self, month: str) -> bytes:
        rows = "".join(f"<url><loc>{html.escape(self.url(i))}</loc><lastmod>{d:%Y-%m-%d}</lastmod></url>"
                       for i, d in enumerate(self.dates) if f"{d:%Y-%m}" == month)
        return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                + rows + "</urlset>").encode()

    def news_sitemap(self) -> bytes:
        last = self.dates[-1]
        rows = "".join(
            f"<url><loc>{html.escape(self.url(i))}</loc><news:news><news:publication>"
            f"<news:name>Site {self.index}</news:name><news:language>en</news:language></news:publication>"
            f"<news:publication_date>{d.isoformat()}</news:publication_date>"
            f"<news:title>{html.escape(self.stories[i]['title'])}</news:title></news:news></url>"
            for i, d in enumerate(self.dates) if last - d <= timedelta(days=2))
        return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
                'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + rows + "</urlset>").encode()

    def index_xml(self) -> bytes:
        last_year = self.months[-1][:4]
        rows = "".join(f"<sitemap><loc>{self.origin}/sitemaps/{m}.xml{'' if m[:4] == last_year else '.gz'}</loc>"
                       f"</sitemap>" for m in self.months)
        rows += f"<sitemap><loc>{self.origin}/news-sitemap.xml</loc></sitemap>"
        return ('<?xml version="1.0" encoding="UTF-8"?><sitemapindex '
                'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + rows + "</sitemapindex>").encode()

    def feed(self, page: int) -> bytes | None:
        newest = list(range(len(self.stories) - 1, -1, -1))
        part = newest[(page - 1) * 20: page * 20]
        if not part:
            return None
        items = "".join(f"<item><title>{html.escape(self.stories[i]['title'])}</title><link>{self.url(i)}</link>"
                        f"<guid>{self.url(i)}</guid><pubDate>{format_datetime(self.dates[i], usegmt=True)}</pubDate>"
                        "</item>" for i in part)
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Site {self.index}</title>'
                f"<link>{self.origin}/</link><description>news</description>{items}</channel></rss>").encode()

    def respond(self, path: str) -> tuple[int, dict[str, str], bytes]:
        self.stats["requests"] += 1
        xml = {"Content-Type": "application/xml"}
        if path == "/_sim/stats":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.stats).encode()
        if path == "/robots.txt":
            self.stats["robots"] += 1
            robots = f"User-agent: *\nSitemap: {self.origin}/sitemap_index.xml\n"
            return 200, {"Content-Type": "text/plain"}, robots.encode()
        if path == "/sitemap_index.xml":
            self.stats["sitemaps"] += 1
            return 200, xml, self.index_xml()
        if path == "/news-sitemap.xml":
            self.stats["sitemaps"] += 1
            return 200, xml, self.news_sitemap()
        if path.startswith("/sitemaps/"):
            self.stats["sitemaps"] += 1
            month = path.split("/")[2][:7]
            body = self.sitemap(month)
            return (200, {"Content-Type": "application/gzip"}, gzip.compress(body, 5)) if path.endswith(".gz") \
                else (200, xml, body)
        if path == "/feed/" or path.startswith("/feed/?paged="):
            self.stats["feeds"] += 1
            n = int(path.partition("paged=")[2] or 1)
            body = self.feed(n) if (n == 1 or self.paged_feed) else None
            if body is None:
                return 404, {"Content-Type": "text/plain"}, b"no such page"
            return 200, {"Content-Type": "application/rss+xml"}, body
        i = self.by_path.get(path)
        if i is not None:
            self.stats["pages"] += 1
            return 200, {"Content-Type": "text/html; charset=utf-8"}, self.page(i)
        return 404, {"Content-Type": "text/plain"}, b"not found"


class _Server:
    def __init__(self, sites: list[dict], port: int, latency: float, seed: int) -> None:
        self.latency = latency
        self.sites = [_Site(i, port, s["stories"], s["slug_share"], s["paged_feed"], seed)
                      for i, s in enumerate(sites)]
        self.hosts = [_Host(self, i, host_ip(i)) for i in range(len(sites))]  # type: ignore[arg-type]
        self.port = port

    def delay(self) -> float:
        return self.latency

    def respond(self, host: _Host, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return self.sites[host.index].respond(path)

    async def serve(self, ready) -> None:
        servers = [await asyncio.start_server(h.handle, h.ip, self.port, backlog=1024) for h in self.hosts]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))


def _run(args, ready) -> None:
    asyncio.run(_Server(*args).serve(ready))


class ArchiveWeb:
    """``sites``: per site {"stories": [{"title", "body", "topics"}], "slug_share", "paged_feed"}."""

    def __init__(self, sites: list[dict], port: int = 18380, latency: float = 0.05, seed: int = 1) -> None:
        self.sites, self.port = sites, port
        self.args = (sites, port, latency, seed)
        self.proc: multiprocessing.Process | None = None
        # the same URLs the server makes (same seed), for the benchmark's truth
        self.view = [_Site(i, port, s["stories"], s["slug_share"], s["paged_feed"], seed) for i, s in enumerate(sites)]

    def start(self) -> ArchiveWeb:
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        self.proc = ctx.Process(target=_run, args=(self.args, ready), daemon=True)
        self.proc.start()
        if not ready.wait(120):
            raise RuntimeError("simulated archive web did not start")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.join(10)

    def stats(self) -> list[dict]:
        import httpx

        return [httpx.get(f"{s.origin}/_sim/stats", timeout=30).json() for s in self.view]
