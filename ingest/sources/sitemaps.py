"""A site's history as its sitemaps list it: the first discovery source of `ingest backfill` (issue 36).

Where the sitemaps are: robots.txt's ``Sitemap:`` lines, else what the home page names with
``<link rel="sitemap">`` and the common paths (``/sitemap.xml``, ``/sitemap_index.xml``,
``/news-sitemap.xml``). Sitemap indexes are followed breadth-first, newest
child first (their ``<lastmod>``), to a bounded depth and count; an index that lists itself or
another already read is read once; URLs dated before ``since`` are left out. A gzipped sitemap (by its
magic bytes, whatever the headers say) is inflated up to a bound of its own, so a gzip bomb is
refused, not inflated. An HTML page served with 200 where a sitemap was expected, an unreadable
document, an error: each is reported with its URL and answer, never raised. Every request goes
through the project's one fetcher (per-host spacing, size caps, the private-address guard).

The result is the site's candidates: each article URL once, with where it was found, its date
(``<lastmod>``, or a news sitemap's publication date) and any title (``news:title``), for the
ranking that decides what is fetched first. A sitemap read before is asked for with its validators
(conditional GET): an unchanged one costs a 304 and lists nothing again.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from ingest.sources.feeds import FeedKind, parse_sitemap
from ingest.sources.fetches import Fetches
from ingest.sources.urls import display, normalize, scheme_reason, site_host

COMMON_PATHS = ("/sitemap.xml", "/sitemap_index.xml", "/news-sitemap.xml")
MAX_DEPTH = 3  # index -> index -> index -> sitemap
MAX_SITEMAPS = 500  # documents read per site
MAX_INFLATED = 50_000_000  # a gzipped sitemap inflates to at most this (the protocol allows 50 MB)
ACCEPT = "application/xml, text/xml;q=0.9, application/gzip;q=0.8, */*;q=0.5"
_SITEMAP_LINE = re.compile(r"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""\b(rel|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    """An article URL a sitemap lists."""

    url: str
    found_in: str  # the sitemap that lists it
    date: datetime | None  # its <lastmod>, or a news sitemap's publication date
    title: str = ""  # news:title, when the sitemap gives one


@dataclass
class SiteMaps:
    """What a site's sitemaps gave: the candidates, and every document asked for with its answer."""

    site: str
    candidates: list[Candidate] = field(default_factory=list)
    read: list[tuple[str, str]] = field(default_factory=list)  # (sitemap URL, "n URLs" / "index of n" / why not)
    validators: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # sitemap -> ETag, L-M

    @property
    def requests(self) -> int:
        return len(self.read)


def inflate(body: bytes, limit: int = MAX_INFLATED) -> bytes | None:
    """A gzip body inflated, or None when it would exceed ``limit`` (a bomb) or is not gzip."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error:
        return None
    if len(out) > limit or d.unconsumed_tail:
        return None
    return out


async def robots_sitemaps(origin: str, fetcher: Fetches) -> tuple[list[str], str]:
    """The ``Sitemap:`` lines of the site's robots.txt (absolute URLs), and what robots.txt answered."""
    res = await fetcher.fetch(urljoin(origin, "/robots.txt"), accept="text/plain")
    if res.error:
        return [], res.error
    text = res.body[:500_000].decode("utf-8", "replace")
    urls = [urljoin(origin, u) for u in _SITEMAP_LINE.findall(text)]
    return [u for u in dict.fromkeys(urls) if not scheme_reason(u)], f"{len(urls)} Sitemap line(s)"


async def home_sitemaps(origin: str, fetcher: Fetches) -> tuple[list[str], str]:
    """The sitemaps the site's home page names with ``<link rel="sitemap" href=...>``."""
    res = await fetcher.fetch(urljoin(origin, "/"), accept="text/html")
    if res.error:
        return [], res.error
    urls = []
    for tag in _LINK_TAG.findall(res.body[:500_000].decode("utf-8", "replace")):
        attrs = {m[0].lower(): m[1] or m[2] or m[3] for m in _ATTR.findall(tag)}
        if "sitemap" in attrs.get("rel", "").lower().split() and attrs.get("href"):
            urls.append(urljoin(res.final_url or origin, attrs["href"].strip()))
    return [u for u in dict.fromkeys(urls) if not scheme_reason(u)], f"{len(urls)} <link rel=sitemap>"


async def discover(site_url: str, fetcher: Fetches, since: datetime | None = None,
                   validators: Mapping[str, tuple[str | None, str | None]] | None = None) -> SiteMaps:
    """Every article URL the site's sitemaps list (bounded; see the module's docstring). ``validators``:
    the ETag and Last-Modified a sitemap (not an index) answered with before; it is asked for
    conditionally, and one answering 304 Not Modified lists nothing new (its URLs are candidates
    already). The result's ``validators`` are those to keep for the next time."""
    known = validators or {}
    parts = urlsplit(site_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    host = site_host(site_url)
    out = SiteMaps(origin)
    listed, answer = await robots_sitemaps(origin, fetcher)
    out.read.append((urljoin(origin, "/robots.txt"), answer))
    if not listed:  # what the home page links, then the common paths
        linked, answer = await home_sitemaps(origin, fetcher)
        out.read.append((urljoin(origin, "/"), answer))
        listed = linked + [urljoin(origin, p) for p in COMMON_PATHS]
    queue: list[tuple[str, int]] = [(u, 0) for u in listed]
    seen: set[str] = set()
    found: dict[str, Candidate] = {}
    while queue and len(seen) < MAX_SITEMAPS:
        url, depth = queue.pop(0)
        key = normalize(url)
        if key in seen:
            continue
        seen.add(key)
        etag, modified = known.get(url, (None, None))
        res = await fetcher.fetch(url, accept=ACCEPT, etag=etag, last_modified=modified)
        if res.not_modified:
            out.read.append((url, "not modified since the last discovery"))
            out.validators[url] = (etag, modified)
            continue
        if res.error:
            out.read.append((url, res.error))
            continue
        body = res.body
        if body[:2] == b"\x1f\x8b":
            inflated = inflate(body)
            if inflated is None:
                out.read.append((url, f"a gzip file inflating past {MAX_INFLATED:,} bytes (or broken): not read"))
                continue
            body = inflated
        body = body.removeprefix(b"\xef\xbb\xbf").lstrip()
        if body[:200].lower().startswith((b"<!doctype html", b"<html")):
            out.read.append((url, "an HTML page, not a sitemap"))
            continue
        parsed = parse_sitemap(body, res.final_url)
        if parsed.error:
            out.read.append((url, parsed.error.removeprefix("not a feed: ")))
            continue
        if parsed.kind is FeedKind.SITEMAP_INDEX:
            children = [c for c in parsed.sitemaps if normalize(c) not in seen]
            out.read.append((url, f"an index of {len(parsed.sitemaps)} sitemap(s)"))
            if depth + 1 <= MAX_DEPTH:
                queue += [(c, depth + 1) for c in children]
            continue
        n = 0
        for e in parsed.entries:
            if not e.link or site_host(e.link) != host:
                continue
            if since is not None and e.published is not None and e.published < since:
                continue
            k = normalize(e.link)
            if k not in found:
                found[k] = Candidate(e.link, url, e.published, e.title or e.summary)
                n += 1
        out.read.append((url, f"{n} URL(s)"))
        if res.headers.get("etag") or res.headers.get("last-modified"):
            out.validators[url] = (res.headers.get("etag"), res.headers.get("last-modified"))
    out.candidates = list(found.values())
    return out


def describe(maps: SiteMaps) -> list[str]:
    """One line per document read, for a dry run's report."""
    return [f"{display(url)}: {answer}" for url, answer in maps.read]
