"""Links an already-fetched article page gives to others of its site ("related stories", "read more"):
backfill's fourth source of candidates, whose link text feeds the pre-score of pages not fetched yet
(issue 36). Only links to the page's own site, with text of a few words, each once, bounded; the
page's navigation, header and footer are left out (their links are the site's sections, not stories).
"""

from __future__ import annotations

from urllib.parse import urljoin

from ingest.sources.urls import normalize, scheme_reason, site_host

MAX_LINKS = 200  # links taken from one page
MIN_WORDS = 3  # a link text shorter than this ("More", "Next page") says nothing of the story
_CHROME = ("nav", "header", "footer", "form", "script", "style")


def related_links(html: bytes | str, page_url: str) -> list[tuple[str, str]]:
    """(url, link text) of the page's links to other pages of its own site, in page order."""
    import lxml.html

    try:
        doc = lxml.html.document_fromstring(html)
    except Exception:  # an empty or broken document links nothing
        return []
    host = site_host(page_url)
    here = normalize(page_url)
    out: dict[str, tuple[str, str]] = {}
    for a in doc.iter("a"):
        if any(anc.tag in _CHROME for anc in a.iterancestors()):
            continue
        href = (a.get("href") or "").strip()
        text = " ".join(a.text_content().split())
        if not href or href.startswith(("#", "mailto:", "javascript:")) or len(text.split()) < MIN_WORDS:
            continue
        url = urljoin(page_url, href).split("#", 1)[0]
        if scheme_reason(url) or site_host(url) != host:
            continue
        key = normalize(url)
        if key != here and key not in out:
            out[key] = (url, text[:300])
        if len(out) >= MAX_LINKS:
            break
    return list(out.values())
