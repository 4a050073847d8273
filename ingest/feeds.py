"""Feed documents (RSS 0.9x/1.0/2.0, Atom, RDF) to a list of typed entries.

feedparser does the parsing; this module maps its result onto one common
``Entry`` model, resolves links against the feed URL, and turns "not a feed"
into a clear error (naming the feed an HTML page advertises, if any).
Malformed feeds that feedparser could salvage keep their usable entries.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin

import feedparser

from .urls import normalize, scheme_reason

_ALTERNATE = re.compile(
    rb"<link\b[^>]*?type=[\"']?application/(?:rss|atom|rdf)\+xml[^>]*>", re.IGNORECASE)
_HREF = re.compile(rb"href=[\"']?([^\"' >]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    key: str  # identity within the feed: guid/id when present, else the normalised link
    link: str  # absolute URL of the article page exactly as the feed gives it ("" when none): what is fetched
    title: str
    published: datetime | None
    summary: str
    updated: datetime | None = None  # the entry's own "updated" date: a newer one means the article changed


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    entries: tuple[Entry, ...]
    error: str | None = None  # set when nothing usable came out
    warning: str | None = None  # salvaged a malformed document
    ttl: int | None = None  # minutes, from RSS <ttl>
    update_seconds: float | None = None  # from sy:updatePeriod / sy:updateFrequency


def _when(entry: dict, keys=("published_parsed", "updated_parsed", "created_parsed")) -> datetime | None:
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


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a fetched feed document; never raises for bad input."""
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
        link = urljoin(url, link.strip()) if isinstance(link, str) and link.strip() else ""
        if link and scheme_reason(link):
            link = ""
        guid = raw.get("id") or raw.get("guid") or ""
        key = _clean(guid, 2000) or (normalize(link) if link else "")
        if not key:
            continue  # neither id nor link: nothing to follow or to remember
        entries.append(Entry(key=key, link=link, title=_clean(raw.get("title", ""), 1000),
                             published=_when(raw), summary=_clean(raw.get("summary", ""), 5000),
                             updated=_when(raw, ("updated_parsed",))))
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
