"""Finding a site's feeds from any of its pages (`ingest feeds add URL`, the web view's Add feed).

The URL itself when it is a feed; else every feed the page advertises (``<link rel="alternate">``
of a feed type, then feed-like ``<a>`` links: a directory listing's ``business.xml``), each link
resolved against the page's own URL (or its ``<base href>``) as a browser resolves it; else the
common feed paths of its site. Each candidate is fetched with the project's own Fetcher
(politeness, size caps and the private-address guard apply) and parsed; what each answered is
kept, so a failure names every URL tried and why it is no feed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from ingest.sources.feeds import FeedKind, ParsedFeed, parse_feed
from ingest.sources.fetch import Fetcher
from ingest.sources.urls import display, scheme_reason

HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json", "application/json",
              "application/rdf+xml", "application/xml", "text/xml")
# tried when a page links no feed: the paths WordPress, Ghost, Hugo, Jekyll, Blogger and news CMSs use
COMMON_PATHS = ("/feed", "/rss", "/feed.xml", "/rss.xml", "/atom.xml", "/index.xml", "/feed.json",
                "/news-sitemap.xml", "/sitemap_news.xml")
MAX_CANDIDATES = 8  # advertised feeds tried per page
ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, "
          "text/html;q=0.8, */*;q=0.5")
# an <a href> that looks like a feed: a feed file's extension, or a last path segment or query naming one
_FEEDLIKE_PATH = re.compile(r"(\.(rss|atom|rdf|xml)|(^|/)(feed|rss|atom)(\.json)?/?)$", re.IGNORECASE)
_FEEDLIKE_QUERY = re.compile(r"(^|&)(feed|format)=(rss|atom|rss2)\b", re.IGNORECASE)


_COMMENTS = re.compile(r"(/comments?(/|$|\.)|[?&]withcomments)", re.IGNORECASE)


class DiscoveryError(Exception):
    """No feed at or behind the URL; the message names what was tried and what each answered."""


@dataclass(frozen=True)
class Found:
    """A feed that discovery fetched and parsed."""

    url: str
    parsed: ParsedFeed

    @property
    def newest(self) -> datetime | None:
        dates = [d for e in self.parsed.entries if (d := e.published or e.updated) is not None]
        return max(dates, default=None)

    def describe(self) -> str:
        newest = self.newest
        return (f"{self.parsed.kind.value}, {len(self.parsed.entries)} entries, newest "
                f"{newest.date().isoformat() if newest else 'undated'}")


@dataclass(frozen=True)
class Tried:
    """One candidate and its answer: the feed, or why it is none."""

    url: str
    found: Found | None
    answer: str  # "a feed" or the reason ("HTTP 404", "an HTML page", …)


@dataclass(frozen=True)
class Discovery:
    """What a URL led to: the working feeds in the page's order, and every URL tried."""

    url: str
    feeds: list[Found]
    tried: list[Tried] = field(default_factory=list)

    @property
    def failed(self) -> list[Tried]:
        return [t for t in self.tried if t.found is None]


def missing_scheme(url: str) -> str | None:
    """What to say of a URL given without its scheme ("example.org/feed", "127.0.0.1:8080/rss.xml"): the
    URL it probably is; None when it has one. `feeds add` and the web view's Add feed both ask."""
    if "://" in url:
        return None
    guess = ("http://" if url.startswith(("127.", "localhost", "[::1]")) else "https://") + url
    return f"{url} has no scheme; did you mean {guess}?"


def _usable(parsed: ParsedFeed) -> bool:
    return parsed.error is None and (bool(parsed.entries) or parsed.kind is not FeedKind.RSS or bool(parsed.title))


def advertised(html: str, page_url: str) -> list[str]:
    """The feeds a page links, absolute: ``<link rel=alternate>`` of a feed type first, then feed-like
    ``<a>`` links, each resolved against the page's URL (or its ``<base href>``), in page order, once."""
    import lxml.html

    try:
        doc = lxml.html.document_fromstring(html)
    except Exception:  # lxml's ParserError on an empty or broken document: it links nothing
        return []
    base = page_url
    for b in doc.iter("base"):
        if b.get("href"):
            base = urljoin(page_url, b.get("href").strip())
            break
    links, anchors = [], []
    for el in doc.iter("link"):
        rel = (el.get("rel") or "").lower().split()
        kind = (el.get("type") or "").split(";")[0].strip().lower()
        if "alternate" in rel and kind in FEED_TYPES and el.get("href"):
            links.append(el.get("href").strip())
    for el in doc.iter("a"):
        href = (el.get("href") or "").strip()
        parts = urlsplit(href)
        if href and not href.startswith("#") and (_FEEDLIKE_PATH.search(parts.path) or
                                                  _FEEDLIKE_QUERY.search(parts.query)):
            anchors.append(href)
    out: list[str] = []
    for href in links + anchors:
        url = urljoin(base, href).split("#", 1)[0]
        # a comments feed (WordPress's /comments/feed/, /post/feed/?withcomments) is not the site's news
        if url not in out and not scheme_reason(url) and not _COMMENTS.search(url):
            out.append(url)
    return out


async def _try(url: str, fetcher: Fetcher) -> Tried:
    res = await fetcher.fetch(url, accept=ACCEPT)
    if res.error:
        return Tried(url, None, res.error)
    parsed = parse_feed(res.body, res.final_url, res.headers.get("content-type"))
    if _usable(parsed):
        return Tried(url, Found(res.permanent_redirect or url, parsed), "a feed")
    ctype = res.headers.get("content-type", "").split(";")[0].strip().lower()
    return Tried(url, None, what_it_is(res.body, ctype, parsed))


async def discover(url: str, fetcher: Fetcher) -> Discovery:
    """The feed at ``url``; or every working feed the page at ``url`` links; or the first one at a
    common path of its site. Raises DiscoveryError naming each URL tried and its answer."""
    res = await fetcher.fetch(url, accept=ACCEPT)
    if res.error:
        raise DiscoveryError(f"cannot fetch {display(url)}: {res.error}")
    ctype = res.headers.get("content-type", "").split(";")[0].strip().lower()
    parsed = parse_feed(res.body, res.final_url, res.headers.get("content-type"))
    if _usable(parsed):
        return Discovery(url, [Found(res.permanent_redirect or url, parsed)])
    looks_html = ctype in HTML_TYPES or b"<html" in res.body[:4096].lower()
    if not looks_html:
        raise DiscoveryError(f"{display(url)} is not a feed: {what_it_is(res.body, ctype, parsed)}; give the URL "
                             f"of a feed (RSS, Atom, JSON Feed, news sitemap) or of a page that links one")
    links = advertised(res.body.decode("utf-8", "replace"), res.final_url)[:MAX_CANDIDATES]
    tried = [await _try(cand, fetcher) for cand in links]
    found = [t.found for t in tried if t.found is not None]
    if found:
        return Discovery(url, found, tried)
    parts = urlsplit(res.final_url)
    root = f"{parts.scheme}://{parts.netloc}"
    for path in COMMON_PATHS:
        cand = urljoin(root, path)
        if cand in links:
            continue
        t = await _try(cand, fetcher)
        if t.found is not None:
            return Discovery(url, [t.found], tried + [t])
    what = ("links " + "; ".join(f"{display(t.url)} ({t.answer})" for t in tried)) if links else "links no feed"
    raise DiscoveryError(f"no feed found: {display(url)} is an HTML page that {what}, and none of "
                         f"{', '.join(COMMON_PATHS)} on {display(root)} is a feed; give the feed's own URL")


def what_it_is(body: bytes, ctype: str, parsed: ParsedFeed) -> str:
    """What a fetched document that is no feed is, in plain words (for one sentence)."""
    if body[:5] == b"%PDF-" or ctype == "application/pdf":
        return "it is a PDF document"
    if ctype.startswith(("image/", "audio/", "video/")):
        return f"it is {ctype.split('/')[0]} ({ctype})"
    if not body.strip():
        return "the answer was empty"
    if ctype in HTML_TYPES or b"<html" in body[:4096].lower():
        return "an HTML page, not a feed"
    if parsed.error is None:
        return "it is a feed with no entries and no title"
    return f"it could not be read as one ({ctype or 'no content type'})"
