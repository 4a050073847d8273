"""A site's sitemaps as backfill discovers them (ingest.sources.sitemaps), over a real loopback server:
robots.txt's Sitemap lines, an index that lists itself, gzipped and plain sitemaps (a BOM, another
namespace), a news sitemap's titles and dates, a gzip bomb, an HTML page served as a sitemap, a 404."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime

from ingest.config import FetchSettings
from ingest.sources.fetch import Fetcher
from ingest.sources.sitemaps import MAX_INFLATED, discover, inflate


def _urlset(urls: list[str], ns: str = "http://www.sitemaps.org/schemas/sitemap/0.9") -> str:
    items = "".join(f"<url><loc>{u}</loc><lastmod>2025-0{1 + i % 9}-15</lastmod></url>" for i, u in enumerate(urls))
    return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="{ns}">{items}</urlset>'


def _fetcher() -> Fetcher:
    return Fetcher(FetchSettings(allow_private_networks=True, host_delay=0.0, robots=False))


def test_a_sites_sitemaps_give_its_articles_once_and_bounded(web):
    h = web.host(70)
    other = web.host(71)
    index = h.url("/sitemap_index.xml")
    children = ["/sitemap_index.xml", "/2025-01.xml.gz", "/2025-02.xml", "/news.xml", "/bomb.xml.gz", "/page.xml",
                "/missing.xml"]
    h.add("/robots.txt", f"User-agent: *\nDisallow: /private/\nSitemap: {index}\n", content_type="text/plain")
    h.add("/sitemap_index.xml", '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
          + "".join(f"<sitemap><loc>{h.url(c)}</loc></sitemap>" for c in children) + "</sitemapindex>",
          content_type="application/xml")
    january = [h.url(f"/2025/01/gold-mine-{i}") for i in range(30)]
    h.add("/2025-01.xml.gz", gzip.compress(_urlset(january + [other.url("/elsewhere")]).encode()),
          content_type="application/gzip")
    february = [h.url(f"/2025/02/story-{i}") for i in range(20)]
    h.add("/2025-02.xml", b"\xef\xbb\xbf" + _urlset(february + january[:5], ns="http://www.google.com/schemas/"
                                                    "sitemap/0.84").encode(), content_type="text/xml")
    h.add("/news.xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
          'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url><loc>' + h.url("/news/1") + "</loc>"
          "<news:news><news:publication><news:name>Site</news:name></news:publication>"
          "<news:publication_date>2026-12-06T08:00:00Z</news:publication_date>"
          "<news:title>Gold smugglers held at Dandong</news:title></news:news></url></urlset>",
          content_type="application/xml")
    h.add("/bomb.xml.gz", gzip.compress(b"<" + b" " * (MAX_INFLATED + 10)), content_type="application/gzip")
    h.add("/page.xml", "<!DOCTYPE html><html><body>Not found, but 200</body></html>", content_type="text/html")

    async def run():
        async with _fetcher() as fetcher:
            return await discover(h.url("/some/article"), fetcher)

    maps = asyncio.run(run())
    urls = [c.url for c in maps.candidates]
    assert sorted(urls) == sorted(january + february + [h.url("/news/1")])  # each once, no other host
    news = next(c for c in maps.candidates if c.url.endswith("/news/1"))
    assert news.title == "Gold smugglers held at Dandong" and news.date == datetime(2026, 12, 6, 8, tzinfo=UTC)
    answers = dict(maps.read)
    assert "1 Sitemap line" in answers[h.url("/robots.txt")]
    assert "index of 7" in answers[index] and len(h.hits("/sitemap_index.xml")) == 1  # the loop read once
    assert "not read" in answers[h.url("/bomb.xml.gz")]
    assert answers[h.url("/page.xml")] == "an HTML page, not a sitemap"
    assert "404" in answers[h.url("/missing.xml")]
    assert maps.requests == 1 + 7  # robots.txt and each document once
    # since: what is dated before it is left out
    async def since():
        async with _fetcher() as fetcher:
            return await discover(h.url("/"), fetcher, since=datetime(2025, 6, 1, tzinfo=UTC))

    recent = asyncio.run(since())
    assert all(c.date is None or c.date >= datetime(2025, 6, 1, tzinfo=UTC) for c in recent.candidates)
    assert h.url("/news/1") in [c.url for c in recent.candidates]


def test_without_sitemap_lines_the_common_paths_are_tried(web):
    h = web.host(72)
    h.add("/robots.txt", "User-agent: *\nDisallow:\n", content_type="text/plain")
    h.add("/sitemap.xml", _urlset([h.url("/a"), h.url("/b")]), content_type="application/xml")

    async def run():
        async with _fetcher() as fetcher:
            return await discover(h.url("/"), fetcher)

    maps = asyncio.run(run())
    assert sorted(c.url for c in maps.candidates) == [h.url("/a"), h.url("/b")]
    assert [u for u, _ in maps.read] == [h.url(p) for p in ("/robots.txt", "/", "/sitemap.xml",
                                                            "/sitemap_index.xml", "/news-sitemap.xml")]


def test_the_home_pages_sitemap_link_and_a_conditional_get_the_next_time(web):
    """No Sitemap: line; the home page names its sitemap with <link rel="sitemap">. Read again with the
    validators it answered with, an unchanged sitemap answers 304 and lists nothing again."""
    h = web.host(73)
    h.add("/robots.txt", "User-agent: *\nDisallow:\n", content_type="text/plain")
    h.add("/", '<html><head><link rel="alternate" href="/feed"><link href="maps/site.xml" rel="sitemap" '
               'type="application/xml"></head><body>home</body></html>')
    h.add("/maps/site.xml", _urlset([h.url("/a"), h.url("/b")]), content_type="application/xml",
          etag='"v1"')

    async def run(validators=None):
        async with _fetcher() as fetcher:
            return await discover(h.url("/"), fetcher, validators=validators)

    first = asyncio.run(run())
    assert sorted(c.url for c in first.candidates) == [h.url("/a"), h.url("/b")]
    assert first.validators == {h.url("/maps/site.xml"): ('"v1"', None)}
    again = asyncio.run(run(first.validators))
    assert again.candidates == [] and (h.url("/maps/site.xml"), "not modified since the last discovery") in again.read
    assert h.hits("/maps/site.xml")[-1].headers.get("if-none-match") == '"v1"'
    assert again.validators == first.validators  # kept for the time after


def test_inflate_refuses_a_bomb_and_reads_a_sitemap():
    assert inflate(gzip.compress(b"x" * 1000), limit=2000) == b"x" * 1000
    assert inflate(gzip.compress(b"x" * 5000), limit=2000) is None
    assert inflate(b"not gzip") is None


def test_an_image_sitemaps_title_and_caption_describe_an_opaque_page(web):
    h = web.host(74)
    h.add("/robots.txt", f"Sitemap: {h.url('/images.xml')}\n", content_type="text/plain")
    h.add("/images.xml", '<?xml version="1.0" encoding="UTF-8"?>\n'
          '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
          'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">'
          f"<url><loc>{h.url('/p/4411')}</loc><image:image><image:loc>{h.url('/i.jpg')}</image:loc>"
          "<image:title>Hyesan gold mine</image:title><image:caption>Miners at the shaft</image:caption>"
          f"</image:image></url><url><loc>{h.url('/p/4412')}</loc></url></urlset>",
          content_type="application/xml")

    async def run():
        async with _fetcher() as fetcher:
            return await discover(h.url("/"), fetcher)

    found = {c.url: c.title for c in asyncio.run(run()).candidates}
    assert found == {h.url("/p/4411"): "Hyesan gold mine Miners at the shaft", h.url("/p/4412"): ""}
