"""When two pages are the same article.

Exact identity: the normalised URL (ingest.urls), the canonical URL the page
declares, and a hash of the text with case and whitespace folded.
"""

from __future__ import annotations

import hashlib


def text_hash(text: str) -> str:
    """Hash of the text with case and whitespace folded: equal for re-formatted copies."""
    folded = " ".join(text.lower().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()
