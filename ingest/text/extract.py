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


# Page furniture that extraction lets through as a paragraph of its own: a newsletter or subscription
# box, a cookie notice, a share or follow prompt, a byline or dateline line. Only short paragraphs are
# tested (a story that discusses cookies or newsletters keeps its sentences). A syndicated story's copies
# differ by exactly these lines, so with them in the text two copies of a 300-character story were two
# stories (issue 34).
FURNITURE_WORDS = 40
_FURNITURE = re.compile(
    r"(\b(sign up|subscribe|register)\b.{0,80}\b(newsletter|briefing|bulletin|inbox|e-?mails?|updates)\b"
    r"|\bnewsletter\b.{0,60}\b(sign up|subscribe|inbox)\b"
    r"|\b(we|this (web)?site|our (web)?site)\b.{0,30}\buses? cookies\b|\baccept (all )?cookies\b"
    r"|\bcookie (policy|settings|preferences)\b"
    r"|^(share|email|print|tweet)( this)?( (article|story|page))?( on \w+)?[.:!]?$"
    r"|^follow us\b|^read more\b|^click here\b|\ball rights reserved\b|^advertisement$"
    r"|^(related|recommended)( (stories|articles|content|reading))?:?$)",
    re.IGNORECASE)
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = rf"(\d{{4}}-\d{{2}}-\d{{2}}|{_MONTH} \d{{1,2}},? \d{{4}}|\d{{1,2}} {_MONTH},? \d{{4}})"
_TIME = r"\d{1,2}[:.]\d{2}( ?[ap]\.?m\.?)?( ?[A-Z]{2,4})?"
_STAMP = re.compile(rf"((published|updated|posted|last updated)( on)?:?\s*)?{_DATE}([\s,|·•–-]+({_TIME}))?",
                    re.IGNORECASE)
_NAME_WORD = r"(?:[A-Z][\w.'’-]*|and|de|van|von|al|bin)"
_NAME = re.compile(rf"^(By|BY|From) ({_NAME_WORD}(?: {_NAME_WORD}){{0,5}})(?=$|\s*[|,·•–-])")
_SEPARATORS = re.compile(r"^[\s|,·•–.-]*$")


def is_furniture(paragraph: str) -> bool:
    """Whether a paragraph is page furniture, not the story's text (see FURNITURE_WORDS): a newsletter,
    cookie, share or follow line, or a line that is only a byline and/or a date and time ("By Staff
    Reporter | Dec 3, 2026, 08:00 GMT", "Updated: 3 December 2026")."""
    line = paragraph.strip()
    if not line or len(line.split()) > FURNITURE_WORDS:
        return False
    if _FURNITURE.search(line):
        return True
    rest = line
    name = _NAME.match(rest)
    if name:
        rest = rest[name.end():]
    rest = _STAMP.sub("", rest, count=1)
    return bool(_SEPARATORS.match(rest)) and (name is not None or rest != line)


def _without_furniture(text: str, title: str) -> str:
    """The paragraphs that are the story: furniture dropped; a headline (and byline) that extraction
    ran into the first paragraph taken off it."""
    paras = [p for p in text.split("\n\n") if not is_furniture(p)]
    if paras and title and paras[0].lower().startswith(title.lower() + " ") and len(paras[0]) > 2 * len(title):
        paras[0] = paras[0][len(title):].strip()
    for _ in range(3):  # "By Staff Reporter | Dec 3, 2026, 08:00 GMT Pyongyang ...", a page may carry two
        m = _BYLINE_LEAD.match(paras[0]) if paras else None
        if not (m and m.group(1) and m.end() < len(paras[0])):
            break
        paras[0] = paras[0][m.end():].strip()
    return "\n\n".join(p for p in paras if p.strip())


# a byline and date run into the first paragraph's start: "By Staff Reporter | Dec 3, 2026, 08:00 GMT Pyongyang ..."
_BYLINE_LEAD = re.compile(rf"^(By [A-Z][\w.' -]{{1,60}}?\s*[|,·•–-]\s*)?(?i:{_DATE})([\s,|·•–-]+(?i:{_TIME}))?\s+")


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
    text = _without_furniture(_paragraphs(doc.text or ""), title)
    if not text:
        return None
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
