"""Which stored story a page is, if any, and the key a new article is stored under.

URL evidence (the page's own URL, the canonical URL it declares) never
merges or overwrites on its own: a CMS that points every canonical at its
home page, or a page on another host claiming a real article's canonical
URL, would otherwise swallow unrelated stories. A URL match counts only when
the texts agree by :func:`ingest.judge.dedup.same_story`; otherwise the page is
judged on its text alone (exact hash, then MinHash/LSH near duplicates) and,
if new, is stored under the first of its declared canonical URL, its own
URL, or its own URL tagged with its text hash that no other article holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingest.judge.dedup import find_match, same_story
from ingest.text.fingerprint import band_keys


class Stories(Protocol):
    """What identifying a page asks of the store (ingest.store.SqlStore provides it)."""

    def article_by(self, *, canonical_url: str | None = None, text_hash: str | None = None) -> int | None: ...

    def article_text(self, article_id: int) -> str | None: ...

    def near_candidates(self, keys: Sequence[int]) -> list[tuple[int, bytes]]: ...


@dataclass(frozen=True)
class Identity:
    article_id: int | None  # the stored story this page is a copy of
    reason: str  # why (for the page's row and the log)
    key: str  # the identity (articles.canonical_url) a new article is stored under


def identify(store: Stories, text: str, text_hash: str, canonical_url: str, page_url: str,
             minhash: bytes | None) -> Identity:
    taken = set()
    aid = store.article_by(text_hash=text_hash)
    if aid is not None:
        return Identity(aid, f"same text as article {aid}", canonical_url)
    for url in dict.fromkeys((canonical_url, page_url)):
        aid = store.article_by(canonical_url=url)
        if aid is None:
            continue
        other = store.article_text(aid)
        if other is not None and same_story(text, other):
            return Identity(aid, f"same URL and story as article {aid}", url)
        taken.add(url)
    if minhash is not None:
        match = find_match(text, minhash, store.near_candidates(band_keys(minhash)), store.article_text)
        if match is not None:
            return Identity(match[0], f"near-duplicate of article {match[0]} (similarity {match[1]:.2f})",
                            canonical_url)
    key = next((u for u in (canonical_url, page_url) if u not in taken), f"{page_url}#{text_hash[:16]}")
    return Identity(None, "", key)
