"""Main text and metadata of an article page, with trafilatura.

CPU-bound: the pipeline runs :func:`extract` in worker processes, never on
the event loop. Comments, navigation and other boilerplate are left out
(trafilatura's defaults with ``include_comments=False``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ingest.sources.urls import normalize, scheme_reason, site_label

MAX_TITLE = 300
_SPACE = re.compile(r"[ \t\u00a0]+")


@dataclass(frozen=True)
class Page:
    url: str  # the URL fetched (after redirects)
    canonical_url: str  # <link rel=canonical>/og:url when valid, else url
    title: str
    author: str
    date: str  # ISO date as trafilatura finds it, "" when unknown
    site: str
    language: str
    text: str  # paragraphs separated by a blank line


def clean_line(value: object, limit: int = MAX_TITLE) -> str:
    """One safe line: no control/format characters (bidi overrides included), bounded."""
    if not isinstance(value, str):
        return ""
    out = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(out.split())[:limit]


def _paragraphs(text: str) -> str:
    text = unicodedata.normalize("NFC", text)  # as trafilatura.extract() returns it
    lines = (_SPACE.sub(" ", line).strip() for line in text.splitlines())
    return "\n\n".join(line for line in lines if line)


def _title(title: str, site: str) -> str:
    """The headline without a trailing " | Site Name" that many pages add to <title>."""
    title = unicodedata.normalize("NFC", title)
    if site:
        for sep in (" | ", " - ", " – ", " — ", " :: ", " » ", " · "):
            if title.lower().endswith((sep + site).lower()) and len(title) > len(sep + site):
                return title[: -len(sep + site)].strip()
    return title


MAX_SITE_WORDS = 8  # a site's name is short: anything longer is a headline or a slogan


def _declared_names(html: bytes) -> list[str]:
    """The names the page's head declares for its site, best first: og:site_name, then the
    JSON-LD publisher's name, then <meta name="application-name">."""
    import json

    import lxml.html

    end = html.find(b"</head>", 0, 512_000)
    head = html[: end + 7] if end >= 0 else html[:200_000]
    try:
        doc = lxml.html.document_fromstring(head)
    except Exception:  # an empty or broken head declares nothing
        return []
    og = [m.get("content", "") for m in doc.iter("meta") if (m.get("property") or m.get("name") or "").lower()
          == "og:site_name"]
    publisher: list[str] = []
    for script in doc.iter("script"):
        if (script.get("type") or "").lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(script.text)
        except ValueError:
            continue
        stack = [data]
        while stack and len(publisher) < 3:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                pub = item.get("publisher")
                for one in pub if isinstance(pub, list) else [pub]:
                    if isinstance(one, dict) and isinstance(one.get("name"), str):
                        publisher.append(one["name"])
                stack.extend(v for v in (item.get("@graph"),) if v)
    app = [m.get("content", "") for m in doc.iter("meta") if (m.get("name") or "").lower() == "application-name"]
    return og + publisher + app


def site_name(html: bytes, title: str) -> str:
    """The site's name as the page declares it, or "" (then the host labels it). A declared name that
    is the headline, holds it, or is too long to be a name is not taken."""
    head = title.casefold()
    for raw in _declared_names(html):
        name = clean_line(raw, 100)
        low = name.casefold()
        if not name or "://" in name or "@" in name or len(name.split()) > MAX_SITE_WORDS:
            continue
        if head and (low == head or (len(low) > 20 and (low in head or head in low))):
            continue
        return name
    return ""


def extract(html: bytes, url: str) -> Page | None:
    """The article in ``html`` fetched from ``url``, or None when it has no main text."""
    import trafilatura  # imported here so the CLI starts fast and workers import once

    try:
        doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False)
    except Exception:  # trafilatura/lxml on hostile markup: treat as "no text"
        return None
    if doc is None or isinstance(doc, dict) or not (doc.text or "").strip():
        return None
    # the site's name only as the page itself states it (og:site_name, the JSON-LD publisher): trafilatura's
    # guess from a "Headline | Site" <title> took the headline when it held periods ("U.K. Reserves ..."),
    # and its fallback is the URL's netloc, port and userinfo included. Else the host, as every output labels it
    title = clean_line(doc.title)
    site = site_name(html, title) or site_label(url)
    title = _title(title, site)
    text = _paragraphs(doc.text or "")
    first, _, rest = text.partition("\n\n")
    if rest and title and first.strip().lower() == title.lower():
        text = rest  # the headline repeated as the first paragraph
    canonical = doc.url if isinstance(doc.url, str) and doc.url.startswith(("http://", "https://")) else url
    if scheme_reason(canonical):
        canonical = url
    return Page(
        url=url,
        canonical_url=normalize(canonical),
        title=title,
        author=clean_line(doc.author),
        date=clean_line(doc.date, 40),
        site=site,
        language=clean_line(doc.language, 20),
        text=text,
    )


def extract_plain(body: bytes, url: str, charset: str | None = None) -> Page | None:
    """A text/plain page as text: decoded (the declared charset, else UTF-8, else Latin-1), the first
    line as the title when it reads like one (the seeds' own format), paragraphs kept."""
    text = None
    for enc in (charset, "utf-8"):
        if enc:
            try:
                text = body.decode(enc)
                break
            except (LookupError, UnicodeDecodeError):
                continue
    if text is None:
        text = body.decode("latin-1")
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # paragraphs: blank-line separated; hard-wrapped lines inside one are joined
    paras, cur = [], []
    for line in lines + [""]:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    paras = [_SPACE.sub(" ", p) for p in paras]
    if not paras:
        return None
    title = ""
    first = lines[0].strip() if lines else ""
    if first and len(first) <= MAX_TITLE and len(paras) > 1 and paras[0] == first:
        title, paras = clean_line(first), paras[1:]
    return Page(url=url, canonical_url=normalize(url), title=unicodedata.normalize("NFC", title),
                author="", date="", site="", language="", text=unicodedata.normalize("NFC", "\n\n".join(paras)))
