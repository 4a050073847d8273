"""A text's fingerprints: the hash of its folded text, and its MinHash signature over word
5-shingles with the LSH band keys the store indexes. Computed once per page in a worker process;
ingest.judge.dedup decides with them."""

from __future__ import annotations

import functools
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


class _Permutations:
    """The NUM_PERM affine maps h -> a*h + b (mod 2^32, a odd: each a bijection) of datasketch 2's
    default MinHash scheme ("affine32", seed 1), drawn as datasketch draws them. Written here, not
    imported: the signatures in a store must not change when a dependency changes its default (2.0
    did, from its "legacy" scheme), and importing datasketch imports scipy (27 MB in the poll
    process, which computes a signature when a re-decided page joins the corpus)."""

    def __init__(self, n: int = NUM_PERM, seed: int = 1) -> None:
        gen = np.random.RandomState(seed)
        self.a = gen.randint(0, 1 << 31, n, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self.b = gen.randint(0, 1 << 32, n, dtype=np.uint32)


@functools.cache
def _permutations() -> _Permutations:
    return _Permutations()


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer: a bijection that spreads the input hashes' bits."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signature(text: str) -> bytes | None:
    """MinHash signature of the text (NUM_PERM uint32: the least image of its shingles' SHA-1
    hashes under each permutation), or None when too short to compare."""
    if len(_WORD.findall(text)) < MIN_WORDS:
        return None
    hashes = np.fromiter((struct.unpack_from("<I", hashlib.sha1(s).digest())[0] for s in shingles(text)),
                         dtype=np.uint32)
    perm = _permutations()
    images = _fmix32(hashes)[:, None] * perm.a + perm.b  # uint32 arithmetic: wraps, modulo 2^32
    return images.min(axis=0).astype("<u4").tobytes()


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
