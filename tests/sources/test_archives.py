"""A site's captures in a web archive's index (ingest.sources.archives), over a loopback server speaking
the Wayback CDX JSON format and Common Crawl's one-object-per-line format: HTML pages of the site's own
host with status 200, each once; a malformed answer is reported, not raised."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from ingest.config import FetchSettings
from ingest.sources.archives import captures
from ingest.sources.fetch import Fetcher


def _ask(site: str, endpoint: str, archive: str, since: datetime | None = None):
    async def run():
        async with Fetcher(FetchSettings(allow_private_networks=True, host_delay=0.0, robots=False)) as fetcher:
            return await captures(site, fetcher, archive, endpoint, since)

    return asyncio.run(run())


def test_wayback_cdx_json_gives_the_sites_html_pages_once(web):
    cdx = web.host(75)
    rows = [["original", "timestamp", "statuscode", "mimetype"],
            ["http://news.example/2021/gold-mine", "20210314101010", "200", "text/html"],
            ["http://news.example/2021/gold-mine", "20220101000000", "200", "text/html"],  # again: once
            ["http://www.news.example/about", "20210314101010", "200", "text/html"],
            ["http://news.example/logo.png", "20210314101010", "200", "image/png"],
            ["http://news.example/gone", "20210314101010", "404", "text/html"],
            ["http://elsewhere.example/x", "20210314101010", "200", "text/html"]]
    cdx.add("/cdx/search/cdx", json.dumps(rows), content_type="application/json")
    found = _ask("http://news.example/", cdx.url("/cdx/search/cdx"), "wayback", datetime(2021, 1, 1, tzinfo=UTC))
    assert [c.url for c in found.captures] == ["http://news.example/2021/gold-mine", "http://www.news.example/about"]
    assert found.captures[0].date == datetime(2021, 3, 14, 10, 10, 10, tzinfo=UTC)
    asked = parse_qs(urlsplit(cdx.requests[-1].path).query)
    assert asked["url"] == ["news.example/*"] and asked["filter"] == ["statuscode:200"]
    assert asked["from"] == ["20210101"] and asked["collapse"] == ["urlkey"]
    assert found.read[0][1] == "2 captures"


def test_common_crawl_lines_and_a_malformed_answer(web):
    cc = web.host(76)
    lines = [{"url": "https://news.example/a", "timestamp": "20240101000000", "status": "200", "mime": "text/html"},
             {"url": "https://news.example/b", "timestamp": "20240102000000", "status": "301", "mime": "text/html"}]
    cc.add("/CC-index", "\n".join(json.dumps(x) for x in lines), content_type="text/plain")
    found = _ask("https://news.example/", cc.url("/CC-index"), "commoncrawl")
    assert [c.url for c in found.captures] == ["https://news.example/a"]
    cc.add("/broken", "<html>rate limited</html>", content_type="text/html")
    broken = _ask("https://news.example/", cc.url("/broken"), "wayback")
    assert broken.captures == [] and "not a CDX index answer" in broken.read[0][1]
