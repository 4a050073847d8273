"""A text's fingerprints: the hash of its folded text, and its MinHash signature over word
5-shingles with the LSH band keys the store indexes. Computed once per page in a worker process;
ingest.judge.dedup decides with them."""

from __future__ import annotations

import hashlib
import re
import struct

import numpy as np

SHINGLE = 5  # words per shingle
NUM_PERM = 128
BANDS, ROWS = 64, 2  # LSH: a pair becomes a candidate with p = 0.93 at Jaccard 0.2, 0.998 at 0.3
MIN_WORDS = 12  # shorter texts are matched exactly only (too few shingles to tell copies from templates)
_WORD = re.compile(r"\w+", re.UNICODE)


def text_hash(text: str) -> str:
    """Hash of the text with case and whitespace folded: equal for re-formatted copies."""
    folded = " ".join(text.lower().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def shingles(text: str, k: int = SHINGLE) -> set[bytes]:
    """Word k-shingles, within paragraphs (blank-line separated): a copy that lost or gained a
    paragraph shares every shingle of the paragraphs it kept, none spans the cut."""
    out: set[bytes] = set()
    for para in text.lower().split("\n\n"):
        words = _WORD.findall(para)
        if len(words) < k:
            if words:
                out.add(" ".join(words).encode())
            continue
        out.update(" ".join(words[i:i + k]).encode() for i in range(len(words) - k + 1))
    return out


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
