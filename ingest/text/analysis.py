"""A page as the judges need it: its text and metadata (ingest.text.extract), term counts and
fingerprints. The CPU-bound part of a poll: runs in a worker process (ingest.run.executor)."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.text.extract import Page, extract, extract_plain
from ingest.text.fingerprint import signature, text_hash
from ingest.text.terms import term_counts


@dataclass(frozen=True)
class Analysed:
    """What a worker process returns for one page."""

    page: Page
    title: str  # the page's title, or its first line when it has none
    text: str  # the article text (paragraphs separated by blank lines)
    counts: dict[str, int]
    text_hash: str
    minhash: bytes | None  # near-duplicate signature


def analyse(html: bytes, url: str, content_type: str = "") -> Analysed | None:
    """Extraction, term counting and near-duplicate signature: the CPU-bound part (runs in a worker).
    A text/plain page is read as text (trafilatura would find no HTML in it)."""
    if content_type.split(";")[0].strip().lower() == "text/plain":
        charset = content_type.partition("charset=")[2].split(";")[0].strip(" \"'") or None
        page = extract_plain(html, url, charset)
    else:
        page = extract(html, url)
    if page is None:
        return None
    title = page.title or page.text.split("\n", 1)[0][:120]
    text = page.text.strip()
    # term counts of the text as the corpus file holds it (title line, then the text)
    return Analysed(page, title, text, term_counts(f"{title}\n\n{text}\n"), text_hash(page.text),
                    signature(page.text))
