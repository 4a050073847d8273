"""Feed documents to a list of typed entries: RSS 0.9x/1.0/2.0, Atom and RDF (feedparser),
JSON Feed 1.0/1.1 (the standard library: feedparser cannot read it), and sitemaps (lxml):
news sitemaps and plain ``<urlset>`` ones, and sitemap indexes, whose child sitemaps the
poll fetches (``ParsedFeed.sitemaps``).

Every format maps onto one common ``Entry`` model; links are resolved
against the feed URL; "not a feed" is a clear error (naming the feed an
HTML page advertises, if any). Malformed feeds that feedparser could salvage
keep their usable entries. Sizes are bounded: at most MAX_ITEMS entries or
child sitemaps are read from one document.
"""

from __future__ import annotations

import calendar
import enum
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from ingest.sources.urls import normalize, scheme_reason

_ALTERNATE = re.compile(
    rb"<link\b[^>]*?type=[\"']?application/(?:(?:rss|atom|rdf)\+xml|feed\+json)[^>]*>", re.IGNORECASE)
_HREF = re.compile(rb"href=[\"']?([^\"' >]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    key: str  # identity within the feed: guid/id when present, else the normalised link
    link: str  # absolute URL of the article page exactly as the feed gives it ("" when none): what is fetched
    title: str
    published: datetime | None
    summary: str
    updated: datetime | None = None  # the entry's own "updated" date: a newer one means the article changed


class FeedKind(enum.Enum):
    RSS = "rss"  # RSS, Atom, RDF: whatever feedparser reads
    JSON = "json"  # JSON Feed 1.0/1.1
    SITEMAP = "sitemap"  # <urlset>, with or without news: tags
    SITEMAP_INDEX = "sitemapindex"  # <sitemapindex>: the entries are in its child sitemaps


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    entries: tuple[Entry, ...]
    error: str | None = None  # set when nothing usable came out
    warning: str | None = None  # salvaged a malformed document
    ttl: int | None = None  # minutes, from RSS <ttl>
    update_seconds: float | None = None  # from sy:updatePeriod / sy:updateFrequency
    kind: FeedKind = FeedKind.RSS
    sitemaps: tuple[str, ...] = ()  # a sitemap index's children, most recently modified first


MAX_ITEMS = 50_000  # entries (or child sitemaps) read from one document: the sitemap protocol's own limit
JSON_FEED_VERSION = "https://jsonfeed.org/version/"


def _when(entry: dict, keys: tuple[str, ...] = ("published_parsed", "updated_parsed", "created_parsed")
          ) -> datetime | None:
    for key in keys:
        value = dict.get(entry, key)  # plain dict lookup: skips feedparser's deprecated key aliasing
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _clean(text: object, limit: int) -> str:
    if not isinstance(text, str):
        return ""
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    return " ".join(text.split())[:limit]


_PERIOD = {"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2592000, "yearly": 31536000}


def _iso_date(value: object) -> datetime | None:
    """An RFC 3339 / W3C date (JSON Feed, sitemaps): "2026-11-20", "2026-11-20T08:00:00Z", "...+01:00"."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _entry(url: str, link: object, guid: object, title: object, published: datetime | None,
           summary: object = "", updated: datetime | None = None) -> Entry | None:
    link = urljoin(url, link.strip()) if isinstance(link, str) and link.strip() else ""
    if link and scheme_reason(link):
        link = ""
    if isinstance(guid, (int, float)) and not isinstance(guid, bool):
        guid = str(guid)  # JSON Feed 1.0 allowed numbers
    key = _clean(guid, 2000) or (normalize(link) if link else "")
    if not key:
        return None  # neither id nor link: nothing to follow or to remember
    return Entry(key=key, link=link, title=_clean(title, 1000), published=published,
                 summary=_clean(summary, 5000), updated=updated)


def _looks_json(body: bytes) -> bool:
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    """JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1)."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return ParsedFeed("", (), error=f"not a feed: invalid JSON ({exc})", kind=FeedKind.JSON)
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(JSON_FEED_VERSION):
        return ParsedFeed("", (), error="not a feed: JSON without a JSON Feed version "
                                        f"(\"version\": \"{JSON_FEED_VERSION}1.1\")", kind=FeedKind.JSON)
    items = doc.get("items")
    if not isinstance(items, list):
        return ParsedFeed("", (), error="not a feed: JSON Feed without an items list", kind=FeedKind.JSON)
    entries = []
    for item in items[:MAX_ITEMS]:
        if not isinstance(item, dict):
            continue
        summary = item.get("summary") or item.get("content_text") or ""
        e = _entry(url, item.get("url") or item.get("external_url"), item.get("id"), item.get("title", ""),
                   _iso_date(item.get("date_published")) or _iso_date(item.get("date_modified")), summary,
                   _iso_date(item.get("date_modified")))
        if e is not None:
            entries.append(e)
    return ParsedFeed(_clean(doc.get("title", ""), 500), tuple(entries), kind=FeedKind.JSON)


_SITEMAP_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(urlset|sitemapindex)[\s>]")


def _sitemap_root(body: bytes) -> str | None:
    """"urlset" or "sitemapindex" when the document's root element is one (prolog and comments skipped)."""
    head = re.sub(rb"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", b"", body[:4096], flags=re.S).lstrip()
    m = _SITEMAP_ROOT.match(head)
    return m.group(1).decode() if m else None


def parse_sitemap(body: bytes, url: str) -> ParsedFeed:
    """A sitemap (news: tags read when present; image:title and image:caption as the entry's summary)
    or a sitemap index; bounded in size, no entities, no network (the parser never fetches a DTD)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True,
                             remove_comments=True)
    try:
        root = etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        return ParsedFeed("", (), error=f"not a feed: unreadable sitemap ({exc})", kind=FeedKind.SITEMAP)
    if root is None:
        return ParsedFeed("", (), error="not a feed: unreadable sitemap", kind=FeedKind.SITEMAP)

    def local(el: Any) -> str:
        return etree.QName(el).localname if isinstance(el.tag, str) else ""

    def child(el: Any, name: str) -> Any:
        return next((c for c in el if local(c) == name), None)

    def text(el: Any, name: str) -> str:
        c = child(el, name) if el is not None else None
        return (c.text or "").strip() if c is not None else ""

    if local(root) == "sitemapindex":
        children = []
        for i, sm in enumerate(el for el in root if local(el) == "sitemap"):
            if i >= MAX_ITEMS:
                break
            loc = text(sm, "loc")
            if loc and not scheme_reason(urljoin(url, loc)):
                children.append((_iso_date(text(sm, "lastmod")), urljoin(url, loc)))
        # most recently modified first (undated ones after): a capped poll reads the fresh ones
        children.sort(key=lambda c: c[0].timestamp() if c[0] else float("-inf"), reverse=True)
        return ParsedFeed("", (), kind=FeedKind.SITEMAP_INDEX, sitemaps=tuple(dict.fromkeys(c[1] for c in children)))
    entries, title = [], ""
    for i, el in enumerate(el for el in root if local(el) == "url"):
        if i >= MAX_ITEMS:
            break
        news = child(el, "news")
        lastmod = _iso_date(text(el, "lastmod"))
        published = _iso_date(text(news, "publication_date")) if news is not None else None
        if news is not None and not title:
            title = text(child(news, "publication"), "name")
        image = child(el, "image")  # image:title / image:caption: what an image sitemap says of the page
        pictured = " ".join(filter(None, (text(image, "title"), text(image, "caption")))) if image is not None else ""
        e = _entry(url, text(el, "loc"), "", text(news, "title") if news is not None else "",
                   published or lastmod, pictured, lastmod)
        if e is not None:
            entries.append(e)
    return ParsedFeed(_clean(title, 500), tuple(entries), kind=FeedKind.SITEMAP)


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a fetched feed document (any of the formats above); never raises for bad input."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in ("application/feed+json", "application/json") or _looks_json(body):
        return parse_json_feed(body, url)
    if _sitemap_root(body):
        return parse_sitemap(body, url)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    try:
        parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # feedparser is robust, but this is untrusted input
        return ParsedFeed("", (), error=f"feed parser failed: {type(exc).__name__}: {exc}")
    entries = []
    for raw in parsed.entries:
        link = raw.get("link") or ""
        if not link:
            for alt in raw.get("links", []):
                if alt.get("rel", "alternate") == "alternate" and alt.get("href"):
                    link = alt["href"]
                    break
        e = _entry(url, link, raw.get("id") or raw.get("guid") or "", raw.get("title", ""), _when(raw),
                   raw.get("summary", ""), _when(raw, ("updated_parsed",)))
        if e is not None:
            entries.append(e)
    feed = parsed.get("feed", {})
    bozo = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if isinstance(bozo, feedparser.NonXMLContentType):
        bozo = None  # a server's wrong Content-Type is not a malformed document
    if not entries and not parsed.get("version"):
        error = "not a feed"
        if bozo is not None:
            error += f" ({type(bozo).__name__}: {bozo})"
        head = body[:200_000]
        if b"<html" in head.lower():
            error = "not a feed: got an HTML page"
            alt = _ALTERNATE.search(head)
            href = _HREF.search(alt.group(0)) if alt else None
            if href:
                error += f"; it links a feed at {urljoin(url, href.group(1).decode('utf-8', 'replace'))}"
        return ParsedFeed("", (), error=error)
    ttl = None
    try:
        ttl = int(feed.get("ttl")) if feed.get("ttl") else None
    except (TypeError, ValueError):
        ttl = None
    update = None
    period = str(feed.get("sy_updateperiod", "")).strip().lower()
    if period in _PERIOD:
        try:
            update = _PERIOD[period] / max(1, int(feed.get("sy_updatefrequency", 1) or 1))
        except (TypeError, ValueError):
            update = float(_PERIOD[period])
    warning = f"malformed feed, salvaged ({type(bozo).__name__}: {bozo})" if bozo is not None else None
    return ParsedFeed(_clean(feed.get("title", ""), 500), tuple(entries), warning=warning, ttl=ttl,
                      update_seconds=update)
