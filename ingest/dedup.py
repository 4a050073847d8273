"""When two pages are the same story.

Exact identity: the normalised URL (ingest.urls), the canonical URL a page
declares, and a hash of the text with case and whitespace folded.

Near duplicates (syndicated copies, wire stories on several sites, edited
re-publications): MinHash (datasketch) over word 5-shingles of the text, with
LSH banding so a new page is compared only with the few stored articles that
share a band. A candidate is the same story when the estimated Jaccard
similarity of the shingle sets reaches NEAR_DUP_THRESHOLD (measured in
bench/dedup.py). The store keeps signatures and band keys; this module is
pure computation and runs in the extraction workers.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable

import numpy as np

SHINGLE = 5  # words per shingle
NUM_PERM = 128
BANDS, ROWS = 32, 4  # LSH: pairs with Jaccard >= ~0.42 become candidates
NEAR_DUP_THRESHOLD = 0.5  # estimated Jaccard at which two texts are one story
MIN_WORDS = 40  # shorter texts are matched exactly only (templates look alike)
_WORD = re.compile(r"\w+", re.UNICODE)


def text_hash(text: str) -> str:
    """Hash of the text with case and whitespace folded: equal for re-formatted copies."""
    folded = " ".join(text.lower().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def shingles(text: str, k: int = SHINGLE) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i:i + k]).encode() for i in range(len(words) - k + 1)}


def signature(text: str) -> bytes | None:
    """MinHash signature of the text (NUM_PERM uint32), or None when too short to compare."""
    from datasketch import MinHash

    if len(_WORD.findall(text)) < MIN_WORDS:
        return None
    m = MinHash(num_perm=NUM_PERM, seed=1)
    m.update_batch(list(shingles(text)))
    return m.hashvalues.astype("<u4").tobytes()


def band_keys(sig: bytes) -> list[int]:
    """One signed 64-bit key per LSH band (an SQLite INTEGER)."""
    keys = []
    for b in range(BANDS):
        chunk = sig[b * ROWS * 4:(b + 1) * ROWS * 4]
        digest = hashlib.blake2b(bytes([b]) + chunk, digest_size=8).digest()
        keys.append(struct.unpack("<q", digest)[0])
    return keys


def similarity(a: bytes, b: bytes) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.mean(np.frombuffer(a, "<u4") == np.frombuffer(b, "<u4")))


def best_match(sig: bytes, candidates: Iterable[tuple[int, bytes]],
               threshold: float = NEAR_DUP_THRESHOLD) -> tuple[int, float] | None:
    """The most similar candidate (id, similarity) at or above the threshold."""
    best = None
    for cid, csig in candidates:
        s = similarity(sig, csig)
        if s >= threshold and (best is None or s > best[1]):
            best = (cid, s)
    return best
