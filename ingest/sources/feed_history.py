"""A feed's history: its older entries, for `ingest backfill` (issue 36).

Followed in this order, as the feed offers them: RFC 5005 archived feeds (``rel="prev-archive"``),
paged feeds (``rel="next"``), and WordPress-style pages (``?paged=2``, ``3``, … tried when the feed
links neither and its URL looks like a WordPress feed). A walk ends when a page fails, repeats one
already read, adds no new entry, holds only entries older than ``since``, or at ``MAX_PAGES``.
Every request goes through the project's one fetcher; every page read is reported with its answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from ingest.sources.feeds import parse_feed
from ingest.sources.fetches import Fetches
from ingest.sources.urls import normalize, scheme_reason

MAX_PAGES = 200  # feed pages read per feed
ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5"


@dataclass(frozen=True)
class Older:
    """An entry of a feed's history."""

    url: str
    found_in: str  # the feed page that lists it
    date: datetime | None
    title: str


@dataclass
class FeedHistory:
    feed: str
    entries: list[Older] = field(default_factory=list)
    read: list[tuple[str, str]] = field(default_factory=list)  # (page URL, "n entries" / why it ended)
    how: str = ""  # "prev-archive", "next", "paged" or "" (the feed offers no history)

    @property
    def requests(self) -> int:
        return len(self.read)


def _rel_links(body: bytes) -> dict[str, str]:
    """The feed-level links by relation (Atom <link>, or atom:link inside RSS), first of each."""
    import feedparser

    try:
        d = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
    except Exception:  # untrusted input: no links
        return {}
    out: dict[str, str] = {}
    for link in d.feed.get("links", []) or []:
        rel, href = link.get("rel"), link.get("href")
        if rel and href and rel not in out:
            out[rel] = href
    return out


def _paged(url: str, n: int) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "paged"] + [("paged", str(n))]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _wordpress(url: str) -> bool:
    path = urlsplit(url).path.rstrip("/")
    return path.endswith("/feed") or "feed=" in urlsplit(url).query or path.endswith(("/rss", "/atom"))


async def history(feed_url: str, fetcher: Fetches, since: datetime | None = None) -> FeedHistory:
    """The entries of ``feed_url`` and of the older pages it leads to (see the module's docstring)."""
    out = FeedHistory(feed_url)
    seen_pages: set[str] = set()
    seen_entries: set[str] = set()
    url: str | None = feed_url
    page_no = 1
    while url is not None and len(seen_pages) < MAX_PAGES:
        seen_pages.add(normalize(url))
        res = await fetcher.fetch(url, accept=ACCEPT)
        if res.error:
            out.read.append((url, res.error))
            break
        parsed = parse_feed(res.body, res.final_url, res.headers.get("content-type"))
        if parsed.error:
            out.read.append((url, parsed.error))
            break
        new = 0
        for e in parsed.entries:
            if not e.link:
                continue
            key = normalize(e.link)
            if key in seen_entries:
                continue
            seen_entries.add(key)
            if since is not None and e.published is not None and e.published < since:
                continue
            new += 1
            out.entries.append(Older(e.link, url, e.published, e.title))
        out.read.append((url, f"{new} entries"))
        if new == 0:
            break  # nothing new here (a repeated page, or only entries older than since): the history has ended
        rels = _rel_links(res.body)
        nxt = None
        for rel in ("prev-archive", "next"):
            if rels.get(rel):
                nxt, out.how = urljoin(res.final_url, rels[rel]), out.how or rel
                break
        if nxt is None and out.how in ("", "paged") and _wordpress(feed_url):
            page_no += 1
            nxt, out.how = _paged(feed_url, page_no), "paged"
        if nxt is not None and (scheme_reason(nxt) or normalize(nxt) in seen_pages):
            nxt = None  # a page already read (a loop) or not http(s)
        url = nxt
    return out
