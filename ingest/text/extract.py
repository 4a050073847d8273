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


def extract(html: bytes, url: str) -> Page | None:
    """The article in ``html`` fetched from ``url``, or None when it has no main text."""
    import trafilatura  # imported here so the CLI starts fast and workers import once

    try:
        doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False)
    except Exception:  # trafilatura/lxml on hostile markup: treat as "no text"
        return None
    if doc is None or isinstance(doc, dict) or not (doc.text or "").strip():
        return None
    # trafilatura falls back to the URL's netloc for the site name, userinfo (user:password@) included:
    # a name that is not the page's own (og:site_name and the like) is the host alone
    site = clean_line(doc.sitename)
    if not site or "@" in site or "://" in site or site.lower().removeprefix("www.") == site_label(url):
        site = site_label(url)
    title = _title(clean_line(doc.title), site)
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
