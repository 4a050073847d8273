"""A learned relevance model, frozen: what ``ingest.judge.relevance.learn`` made of the seeds,
the store's window and the user's verdicts, applied to any text without learning again.

A page is scored by the model alone, never by the other pages that arrived with it, so its
decision cannot depend on how a poll batched its pages or how many workers shared them. The
model pickles small (arrays and one string of terms) to travel to and from worker processes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ingest.text.terms import term_counts

DOC_LEN = 400  # typical article length in tokens, for the Poisson df model
MIN_FREQ = 1e-8  # words wordfreq does not know count as this rare
SCORE_BATCH = 256  # documents scored together (Model.score)
# terms shown as a score's reasons: a person reads them, so not tokens under three letters ("k", "nd", the "u"
# and "s" of U.S.) nor words in more than about a fifth of the stream's pages ("said", "reuter", "year"): they
# still count in the score, they explain nothing
SHOWN_MIN_LENGTH = 3
SHOWN_MIN_IDF = math.log(5.0)


def _key(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


class Frequencies:
    """wordfreq's table for one language as two arrays, 64-bit hashes of the words sorted and their
    frequencies: 4 MB where the dict wordfreq returns takes 40 MB in every process that touches it
    (after a fork the dict's pages stop being shared as soon as its objects are touched; the arrays
    are never written). A hash collision between two of the ~300,000 words is a 1 in 10^8 event and
    would only blur one word's prior."""

    def __init__(self, lang: str) -> None:
        import wordfreq

        # the undecorated reader: wordfreq's own caches would keep the 40 MB alive
        buckets = wordfreq.get_frequency_list.__wrapped__(lang)
        keys = np.fromiter((_key(w) for bucket in buckets for w in bucket), dtype=np.uint64)
        freqs = np.concatenate([np.full(len(b), wordfreq.cB_to_freq(-i)) for i, b in enumerate(buckets)])
        # a word listed twice keeps its last (lowest) frequency, as wordfreq.get_frequency_dict does
        keys, last = np.unique(keys[::-1], return_index=True)
        self.keys, self.freqs = keys, freqs[::-1][last]

    def lookup(self, words: Sequence[str]) -> np.ndarray:
        """Frequency of each word, NaN for a word the table does not have."""
        if not words:
            return np.zeros(0)
        k = np.fromiter((_key(w) for w in words), dtype=np.uint64, count=len(words))
        at = np.minimum(np.searchsorted(self.keys, k), len(self.keys) - 1)
        return np.where(self.keys[at] == k, self.freqs[at], np.nan)


@lru_cache(maxsize=4)
def _frequencies(lang: str) -> Frequencies:
    return Frequencies(lang)


class TermStats:
    """General word statistics: the document-frequency prior of the idf (the stream supplies the rest,
    in _Matrix.vectors). The prior is worth PRIOR_DOCS documents: a word's wordfreq frequency f
    becomes the chance it occurs in a document of DOC_LEN tokens, 1 - exp(-f * DOC_LEN).
    """

    PRIOR_DOCS = 100

    def __init__(self, lang: str = "en") -> None:
        self.language = lang
        self._freq = _frequencies(lang)

    def priors(self, tokens: Sequence[str]) -> np.ndarray:
        """The prior of each token; a token the table lacks is looked up without a trailing
        apostrophe, then as a folded plural (the unfolded spelling may be known)."""
        freq = self._freq.lookup(tokens)
        missing = [i for i in np.flatnonzero(np.isnan(freq)).tolist() if tokens[i].endswith("'")]
        if missing:
            freq[missing] = self._freq.lookup([tokens[i][:-1] for i in missing])
        missing = np.flatnonzero(np.isnan(freq)).tolist()
        if missing:
            freq[missing] = self._freq.lookup([tokens[i] + "s" for i in missing])
        freq = np.nan_to_num(freq, nan=MIN_FREQ)
        return -np.expm1(-np.maximum(freq, MIN_FREQ) * DOC_LEN)


@dataclass(frozen=True)
class Score:
    score: float
    terms: tuple[str, ...]  # the terms that contributed most, best first


@dataclass(frozen=True)
class Threshold:
    value: float
    model: str  # "logistic" or "cosine" (stream too small to learn from)
    share: float  # estimated on-topic share of the stream
    stream_n: int  # how many stream texts the model learned from
    warnings: tuple[str, ...] = ()  # degenerate seeds, a topic it cannot separate and the like, for the user
    separation: float = 1.0  # share of the stream texts it keeps that score clearly above the threshold


@dataclass(frozen=True)
class Scored:
    """The decision values of a whole stream: ``scores[i]`` for stream text i."""

    scores: list[Score]
    threshold: Threshold


class Model:
    """Term weights over a vocabulary: a text's vector is (1 + log tf) * idf, L2-normalised; its
    score is sigmoid(w . x + b) for the logistic model, cos(x, centroid) for the cosine one (and,
    once the user judged texts relevant, the larger of that and the cosine to their centroid).
    A term the window never showed gets the idf of document frequency 0 with the word-frequency
    prior, as the window's own rare terms do."""

    def __init__(self, kind: str, terms: Sequence[str], idf: np.ndarray, weights: np.ndarray, bias: float,
                 threshold: Threshold, *, background_n: int, prior_docs: int, language: str,
                 liked: np.ndarray | None = None) -> None:
        self.kind, self.terms, self.idf, self.weights, self.bias = kind, list(terms), idf, weights, bias
        self.threshold, self.background_n, self.prior_docs = threshold, background_n, prior_docs
        self.language, self.liked = language, liked
        self._index: dict[str, int] | None = None
        self._shown: np.ndarray | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["terms"] = "\n".join(self.terms)  # one string pickles ~10x faster than a list of 50,000
        state["_index"] = None
        state["_shown"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        state["terms"] = state["terms"].split("\n") if state["terms"] else []
        self.__dict__.update(state)

    @property
    def fingerprint(self) -> str:
        """Identifies what the model decides (for tests and the store's record of it)."""
        h = hashlib.blake2b(digest_size=8)
        for part in (self.kind, "\n".join(self.terms), repr(self.bias), repr(self.threshold.value)):
            h.update(part.encode())
        for arr in (self.idf, self.weights, self.liked):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def score(self, docs: Sequence[dict[str, int]], n_terms: int = 8) -> list[Score]:
        """Scores of texts given as term counts (ingest.text.terms.term_counts), in order. Each
        document's score depends on it alone, so a long sequence (a window re-scored after learning)
        is scored SCORE_BATCH documents at a time: the same scores, with the per-occurrence lists
        bounded (a 3,000-page window at once held ~40 MB of them in a worker)."""
        if len(docs) <= SCORE_BATCH:
            return self._score(docs, n_terms)
        return [s for i in range(0, len(docs), SCORE_BATCH) for s in self._score(docs[i:i + SCORE_BATCH], n_terms)]

    def _score(self, docs: Sequence[dict[str, int]], n_terms: int) -> list[Score]:
        if not docs:
            return []
        if self._index is None:
            self._index = {t: i for i, t in enumerate(self.terms)}
        index = self._index
        unseen: dict[str, int] = {}  # terms the model has no idf for -> their place among the unseen
        rows: list[int] = []
        cols: list[int] = []
        which: list[int] = []  # for each occurrence of an unseen term, in order: its place in ``unseen``
        tfs: list[int] = []
        words: list[str] = []
        for d, counts in enumerate(docs):
            for term, c in counts.items():
                i = index.get(term, -1)
                rows.append(d)
                cols.append(i)
                if i < 0:
                    which.append(unseen.setdefault(term, len(unseen)))
                tfs.append(c)
                words.append(term)
        row = np.asarray(rows, dtype=np.int64)
        col = np.asarray(cols, dtype=np.int64)
        known = col >= 0
        idf = np.zeros(len(col))
        idf[known] = self.idf[col[known]]
        if unseen:  # their idf from the general statistics, looked up together
            m, n = self.prior_docs, self.background_n
            unseen_idf = np.log((n + m + 1) / (m * TermStats(self.language).priors(list(unseen)) + 1))
            idf[~known] = unseen_idf[np.asarray(which, dtype=np.int64)]
        v = (1.0 + np.log(np.maximum(np.asarray(tfs, dtype=np.float64), 1.0))) * idf
        norms = np.sqrt(np.bincount(row, weights=v * v, minlength=len(docs)))
        norms[norms == 0] = 1.0
        v = v / norms[row]
        w = np.zeros(len(v))
        w[known] = self.weights[col[known]]
        contrib = v * w
        if self._shown is None:
            self._shown = np.array([len(t) >= SHOWN_MIN_LENGTH for t in self.terms], dtype=bool) & \
                (self.idf >= SHOWN_MIN_IDF)
        readable = np.zeros(len(v), dtype=bool)
        readable[known] = self._shown[col[known]]
        raw = np.bincount(row, weights=contrib, minlength=len(docs))
        if self.kind == "logistic":
            values = 0.5 * (1.0 + np.tanh(0.5 * (raw + self.bias)))
        else:
            values = raw
            if self.liked is not None:
                lw = np.zeros(len(v))
                lw[known] = self.liked[col[known]]
                values = np.maximum(values, np.bincount(row, weights=v * lw, minlength=len(docs)))
        bounds = np.searchsorted(row, np.arange(len(docs) + 1))
        out = []
        for d in range(len(docs)):
            lo, hi = bounds[d], bounds[d + 1]
            part = np.where(readable[lo:hi], contrib[lo:hi], 0.0)
            order = [j for j in np.argsort(-part, kind="stable")[:n_terms] if part[j] > 0]
            out.append(Score(round(float(values[d]), 6), tuple(words[lo + j] for j in order)))
        return out

    def score_texts(self, texts: Sequence[str]) -> list[Score]:
        return self.score([term_counts(t) for t in texts])
