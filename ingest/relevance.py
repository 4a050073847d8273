"""Score texts against the seeds, and choose the keep/reject threshold.

The model is deliberately simple, fast and explainable:

* tokens are lower-cased words with a light plural fold ("mines" -> "mine");
* term weight = (1 + log tf) * idf. The idf never comes from the seeds: it
  is the document frequency among *rejected* (off-topic) articles of the
  stream, smoothed by a prior from general word statistics (wordfreq: a
  Poisson model turns a word's frequency f into the chance it occurs in a
  document of ~L tokens, 1 - exp(-f * L)). The prior makes a fresh store
  work; the background teaches it the jargon of the sources; and leaving
  on-topic articles out keeps topic words rare even when a feed is all on
  topic (on Reuters: best-threshold F1 0.65 -> 0.69, see bench/relevance.py);
* the first line counts twice when it looks like a title;
* the score is the cosine between the text and the centroid of the
  (L2-normalised) seed vectors; the explanation is the terms with the largest
  share of that dot product.

The threshold needs no labels: the stream of fetched articles is mostly off
topic, so its high percentile is where off-topic articles end, and the seeds'
leave-one-out scores are where on-topic ones begin; the threshold sits
between the two (see :func:`calibrate`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]", re.UNICODE)
DOC_LEN = 400  # typical article length in tokens, for the Poisson df model
MIN_FREQ = 1e-8  # words wordfreq does not know count as this rare
MAX_TITLE_WORDS = 25

# Threshold calibration (tuned on Reuters-21578 TRAIN draws; bench/relevance.py).
BG_Z = 3.0  # background level = median + BG_Z robust standard deviations
BG_PRIOR_RATIO = 1.9  # prior background level, as a multiple of the seed level (Reuters median)
BG_PRIOR_WEIGHT = 50  # how many background scores the prior is worth
SEED_MIX = 0.5  # threshold = bg + SEED_MIX * (seed - bg)


@lru_cache(maxsize=4)
def _frequencies(lang: str) -> dict[str, float]:
    import wordfreq

    return wordfreq.get_frequency_dict(lang)


def _fold(token: str) -> str:
    token = token.replace("’", "'")
    if token.endswith("'s"):
        token = token[:-2]
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """Lower-cased, plural-folded word tokens of ``text``."""
    return [_fold(m) for m in _WORD.findall(text.lower())]


def split_title(text: str) -> tuple[str, str]:
    """(title, body): the first line is a title when it is short and not a sentence."""
    first, _, rest = text.strip().partition("\n")
    first = first.strip()
    words = first.split()
    if rest.strip() and 0 < len(words) <= MAX_TITLE_WORDS and not first.endswith((".", ":", ";", ",")):
        return first, rest
    return "", text


def term_counts(text: str) -> dict[str, int]:
    """Term frequencies of ``text``; title words (see split_title) count twice."""
    title, body = split_title(text)
    tf: dict[str, int] = {}
    for tok in tokens(body):
        tf[tok] = tf.get(tok, 0) + 1
    for tok in tokens(title):
        tf[tok] = tf.get(tok, 0) + 2
    return tf


class TermStats:
    """Document frequencies: general word statistics as a prior, updated by the background.

    ``df`` holds background document counts for (at least) the terms that will
    be looked up; ``n_docs`` is the number of documents counted. The prior
    is worth PRIOR_DOCS documents: a word's wordfreq frequency f becomes the
    chance it occurs in a document of DOC_LEN tokens, 1 - exp(-f * DOC_LEN).
    """

    PRIOR_DOCS = 100

    def __init__(self, lang: str = "en", n_docs: int = 0, df: dict[str, int] | None = None) -> None:
        self._freq = _frequencies(lang)
        self.n_docs = n_docs
        self.df: dict[str, int] = dict(df or {})
        self._cache: dict[str, float] = {}

    def add(self, counts: Iterable[dict[str, int]]) -> None:
        """Count documents (their term sets) into the stream statistics."""
        for c in counts:
            self.n_docs += 1
            for t in c:
                self.df[t] = self.df.get(t, 0) + 1
        self._cache.clear()

    def prior(self, token: str) -> float:
        freq = self._freq.get(token)
        if freq is None and token.endswith("'"):
            freq = self._freq.get(token[:-1])
        if freq is None:  # a folded plural: the unfolded spelling may be known
            freq = self._freq.get(token + "s", MIN_FREQ)
        return -math.expm1(-max(freq, MIN_FREQ) * DOC_LEN)

    def idf(self, token: str) -> float:
        value = self._cache.get(token)
        if value is None:
            m = self.PRIOR_DOCS
            value = math.log((self.n_docs + m + 1) / (self.df.get(token, 0) + m * self.prior(token) + 1))
            self._cache[token] = value
        return value


def _norm(vec: dict[str, float]) -> dict[str, float]:
    length = math.sqrt(sum(w * w for w in vec.values()))
    return {t: w / length for t, w in vec.items()} if length else {}


@dataclass(frozen=True)
class Score:
    score: float
    terms: tuple[str, ...]  # the shared terms that contributed most, best first


class SeedModel:
    """The seeds as a centroid vector; scores term counts against it."""

    def __init__(self, seed_counts: Sequence[dict[str, int]], stats: TermStats) -> None:
        if not seed_counts:
            raise ValueError("at least one seed text is needed")
        self.stats = stats
        self.seed_vectors = [self.vector(c) for c in seed_counts]
        self.centroid = _centroid(self.seed_vectors)

    def vector(self, counts: dict[str, int]) -> dict[str, float]:
        idf = self.stats.idf
        return _norm({t: (1.0 + math.log(n)) * idf(t) for t, n in counts.items()})

    def score(self, counts: dict[str, int], n_terms: int = 8) -> Score:
        centroid = self.centroid
        parts = {t: w * centroid[t] for t, w in self.vector(counts).items() if t in centroid}
        top = sorted(parts, key=parts.__getitem__, reverse=True)[:n_terms]
        return Score(round(sum(parts.values()), 6), tuple(top))

    def leave_one_out(self) -> list[float]:
        """Each seed's score against the centroid of the others (empty for one seed;
        score_batch splits a lone seed in two)."""
        vecs = self.seed_vectors
        if len(vecs) == 1:
            return []
        out = []
        for i, vec in enumerate(vecs):
            others = _centroid(vecs[:i] + vecs[i + 1 :])
            out.append(sum(w * others.get(t, 0.0) for t, w in vec.items()))
        return out


def _centroid(vectors: Sequence[dict[str, float]]) -> dict[str, float]:
    acc: dict[str, float] = {}
    for vec in vectors:
        for t, w in vec.items():
            acc[t] = acc.get(t, 0.0) + w
    return _norm(acc)


@dataclass(frozen=True)
class Threshold:
    value: float
    seed_level: float  # weakest leave-one-out seed score
    background_level: float  # estimated top of the off-topic scores
    background_n: int  # how many background scores informed it


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), without numpy."""
    xs = sorted(values)
    if not xs:
        raise ValueError("no values")
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def calibrate(model: SeedModel, background: Sequence[float]) -> Threshold:
    """The automatic threshold.

    ``background`` is the scores of texts from the stream (previously scored
    articles and the current batch), mostly off topic. Its robust upper
    bulk, median + BG_Z robust standard deviations (1.4826 * MAD), estimates
    where off-topic scores end and barely moves when a fifth of the stream is
    on topic, unlike a high percentile. With few scores that estimate is
    noisy (a small batch may be all on topic), so it is shrunk towards a prior,
    BG_PRIOR_RATIO times the seed level, worth BG_PRIOR_WEIGHT scores. The
    threshold lies SEED_MIX of the way from there to the weakest seed's
    leave-one-out score.
    """
    loo = model.leave_one_out()
    seed_level = min(loo) if loo else 0.0
    prior = BG_PRIOR_RATIO * seed_level
    n = len(background)
    if n:
        med = percentile(background, 50)
        mad = percentile([abs(x - med) for x in background], 50)
        w = n / (n + BG_PRIOR_WEIGHT)
        bg_level = w * (med + BG_Z * 1.4826 * mad) + (1 - w) * prior
    else:
        bg_level = prior
    value = bg_level + SEED_MIX * (seed_level - bg_level)
    return Threshold(round(value, 6), round(seed_level, 6), round(bg_level, 6), n)


def score_batch(seed_texts: Sequence[str], batch: Sequence[dict[str, int]], stats: TermStats,
                history: Sequence[float], fixed: float | None = None) -> tuple[list[Score], Threshold]:
    """Score a batch of term counts the one way both ``poll`` and ``score`` do.

    ``stats`` are the background statistics before the batch (rejected pages
    so far); ``history`` the scores of earlier stream texts. Two passes: the
    first scores with ``stats`` alone; the batch texts it rejects join the
    background (``stats`` is updated), and the second pass gives the scores.
    The threshold is ``fixed`` when configured, else calibrated on history +
    batch.
    """
    if len(seed_texts) == 1:  # the two halves of a lone seed stand in for two seeds
        paras = [p for p in seed_texts[0].split("\n") if p.strip()]
        half = max(1, len(paras) // 2)
        seed_texts = ["\n".join(paras[:half]), "\n".join(paras[half:]) or paras[0]]
    seed_counts = [term_counts(s) for s in seed_texts]
    model = SeedModel(seed_counts, stats)
    scores = [model.score(c) for c in batch]
    first = calibrate(model, list(history) + [s.score for s in scores])
    stats.add([c for c, s in zip(batch, scores, strict=True) if s.score < first.value])
    model = SeedModel(seed_counts, stats)
    scores = [model.score(c) for c in batch]
    auto = calibrate(model, list(history) + [s.score for s in scores])
    if fixed is not None:
        auto = Threshold(fixed, auto.seed_level, auto.background_level, auto.background_n)
    return scores, auto
