"""When two pages are the same story.

Exact identity: the normalised URL (ingest.sources.urls), the canonical URL a page
declares, and a hash of the text with case and whitespace folded.

Near duplicates (syndicated copies, wire stories on several sites, edited
re-publications): MinHash (ingest.text.fingerprint) over word 5-shingles of the text, with
LSH banding so a new page is compared only with the few stored articles that
share a band. A candidate is the same story when the estimated Jaccard
similarity of the shingle sets reaches NEAR_DUP_THRESHOLD, or, checked
exactly on the two texts, when most of the shorter text's shingles are in
the longer one (containment >= CONTAINMENT_THRESHOLD): a short wire story
and a copy that lost a paragraph have a low Jaccard but a high containment.
Thresholds are measured in bench/dedup.py. The store keeps signatures and
band keys; :func:`find_match` is the one decision, used by the pipeline,
the verdicts and the benchmark alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from ingest.text.fingerprint import SHINGLE, shingles, similarity

NEAR_DUP_THRESHOLD = 0.5  # estimated Jaccard at which two texts are one story
CONTAINMENT_THRESHOLD = 0.8  # share of the shorter text's shingles found in the longer one
VERIFY_FLOOR = 0.15  # candidates with a lower estimated Jaccard are not checked for containment
MAX_VERIFY = 5  # at most this many candidates are checked exactly (reading their text)
MIN_SHARED = 10  # containment counts only with this many shared shingles (a shared footer or intro is less)
SHORT_WORDS = 40  # below this, Jaccard is not trusted alone: the shorter text must be contained in the other
END_KEEP = 0.4  # a copy with one end paragraph changed: the rest must hold this share of each text's words
MIDDLE_KEEP = 0.6  # with both ends changed, the middle must hold this share
LONGER_KEEP = 0.25  # ... of the shorter text; of the longer one (a copy may be cut down) this share
LINE_WORDS = 25  # a short text and its copy may differ by one run of at most this many words on each side
LINE_KEEP = 0.6  # ... when the rest holds this share of each text's words
_WORD = re.compile(r"\w+", re.UNICODE)
_FIGURE = re.compile(r"\d+(?:[.,/-]\d+)*")


def best_match(sig: bytes, candidates: Iterable[tuple[int, bytes]],
               threshold: float = NEAR_DUP_THRESHOLD) -> tuple[int, float] | None:
    """The most similar candidate (id, similarity) at or above the threshold."""
    best = None
    for cid, csig in candidates:
        s = similarity(sig, csig)
        if s >= threshold and (best is None or s > best[1]):
            best = (cid, s)
    return best


def containment(a: set[bytes], b: set[bytes]) -> float:
    """Share of the smaller shingle set found in the larger."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return len(small & large) / len(small) if small else 0.0


def find_match(text: str, sig: bytes | None, candidates: Iterable[tuple[int, bytes]],
               text_of: Callable[[int], str | None],
               threshold: float = NEAR_DUP_THRESHOLD) -> tuple[int, float] | None:
    """The stored story ``text`` is a copy of: (id, similarity), or None.

    ``candidates`` are (id, signature) from the LSH index. A long text whose
    best estimated Jaccard reaches ``threshold`` matches at once; otherwise the
    best few candidates (estimated Jaccard >= VERIFY_FLOOR) are checked exactly
    on their text (``text_of``) with :func:`same_story`, where a short text
    must be contained in the other: in 30-word texts a few shared phrases
    (templates such as dividend notices) already make half the shingles."""
    if sig is None:
        return None
    scored = sorted(((similarity(sig, csig), cid) for cid, csig in candidates), reverse=True)
    if scored and scored[0][0] >= threshold and len(_WORD.findall(text)) >= SHORT_WORDS:
        return scored[0][1], scored[0][0]
    for est, cid in scored[:MAX_VERIFY]:
        if est < VERIFY_FLOOR:
            break
        other = text_of(cid)
        if other and same_story(text, other, jaccard=threshold):
            return cid, est
    return None


def same_story(a: str, b: str, *, jaccard: float = NEAR_DUP_THRESHOLD,
               contained: float = CONTAINMENT_THRESHOLD) -> bool:
    """Exact check on two texts (no signatures): are they one story? Equal texts always are;
    texts too short for shingles must be equal; when either is short (< SHORT_WORDS) the
    shorter must be contained in the other, else the Jaccard or the containment will do; and a
    syndicated copy whose first or last paragraph another site changed is one too
    (:func:`same_but_an_end`)."""
    if " ".join(a.lower().split()) == " ".join(b.lower().split()):
        return True
    sa, sb = shingles(a), shingles(b)
    if min(len(sa), len(sb)) < 2:
        return False
    if containment(sa, sb) >= contained and len(sa & sb) >= MIN_SHARED:
        return True
    short = min(len(_WORD.findall(a)), len(_WORD.findall(b))) < SHORT_WORDS
    if not short and len(sa & sb) / len(sa | sb) >= jaccard:
        return True
    return same_but_an_end(a, b, contained) or (short and same_but_a_line(a, b))


def _trimmed(text: str) -> list[str]:
    """The paragraphs of ``text`` without the tiny lines at either end (a wire's sign-off such as
    "Reuter", a dateline line): a copy drops or changes them along with the end paragraph."""
    paras = [p for p in text.split("\n\n") if _WORD.search(p)]
    while paras and len(_WORD.findall(paras[-1])) < SHINGLE:
        paras.pop()
    while paras and len(_WORD.findall(paras[0])) < SHINGLE:
        paras.pop(0)
    return paras


def same_but_an_end(a: str, b: str, contained: float = CONTAINMENT_THRESHOLD) -> bool:
    """Whether ``a`` and ``b`` are one text but for their first paragraph, their last, or (when
    what is left is most of both) both: what a second site running a wire story changes (a
    dateline, a reworded lead, its own closing line; a headline that extraction kept in the first
    paragraph). What is left must be the same on both sides (containment both ways, so a shared
    background paragraph in two different stories is not enough), hold at least END_KEEP of the
    shorter text's words (MIDDLE_KEEP when both ends go) and LONGER_KEEP of the longer's, and
    2 x MIN_SHARED shingles; and the ends that differ must not disagree on figures."""
    pa, pb = _trimmed(a), _trimmed(b)
    if min(len(pa), len(pb)) < 2:
        return False
    wa, wb = len(_WORD.findall(a)), len(_WORD.findall(b))
    # (paragraphs kept, paragraphs that may differ, share of the words the kept ones must hold)
    cuts: list[tuple[slice, tuple[int, ...], float]] = [(slice(1, None), (0,), END_KEEP),
                                                         (slice(None, -1), (-1,), END_KEEP)]
    if min(len(pa), len(pb)) >= 3:
        cuts.append((slice(1, -1), (0, -1), MIDDLE_KEEP))
    figures_a, figures_b = set(_FIGURE.findall(a)), set(_FIGURE.findall(b))
    for kept, ends, keep in cuts:
        ra, rb = "\n\n".join(pa[kept]), "\n\n".join(pb[kept])
        ka, kb = len(_WORD.findall(ra)), len(_WORD.findall(rb))
        # most of the shorter text, and a real part of the longer (a copy may be a cut-down version)
        (k_short, w_short), (k_long, w_long) = sorted([(ka, wa), (kb, wb)], key=lambda kw: kw[1])
        if k_short < keep * w_short or k_long < LONGER_KEEP * w_long:
            continue
        # the ends that differ must not disagree on the facts: a templated report (a bond issue, a
        # dividend) repeats its boilerplate paragraphs with other figures in the lead; a copy's new
        # dateline or closing line keeps the other's figures, or brings one of its own (a date)
        stray_a = {f for i in ends for f in _FIGURE.findall(pa[i])} - figures_b
        stray_b = {f for i in ends for f in _FIGURE.findall(pb[i])} - figures_a
        if min(len(stray_a), len(stray_b)) > 1:
            continue
        sa, sb = shingles(ra), shingles(rb)
        shared = len(sa & sb)
        if shared >= 2 * MIN_SHARED and shared >= contained * max(len(sa), len(sb)):
            return True
    return False


def _runs(words: list[str], shared: set[tuple[str, ...]]) -> list[tuple[int, int]]:
    """The word spans (start, end) of ``words`` covered by no shared shingle: what this side has that the
    other has not, as contiguous runs."""
    covered = [False] * len(words)
    for i in range(len(words) - SHINGLE + 1):
        if tuple(words[i:i + SHINGLE]) in shared:
            covered[i:i + SHINGLE] = [True] * SHINGLE
    runs: list[tuple[int, int]] = []
    for i, c in enumerate(covered):
        if not c:
            if runs and runs[-1][1] == i:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
    return runs


def same_but_a_line(a: str, b: str) -> bool:
    """Whether two short texts are one story but for one line each: a copy's byline, dateline, credit
    or sign-up line, wherever it sits (run into the first paragraph too). In a 50-word story one extra
    line is a fifth of the shingles, so neither Jaccard nor containment sees through it. Each side may
    have at most one run of words the other lacks, of at most LINE_WORDS, the rest must hold LINE_KEEP of
    each text's words and MIN_SHARED shingles, and the runs must not disagree on figures (a templated
    report with another company's numbers in its lead is another story)."""
    wa, wb = _WORD.findall(a.lower()), _WORD.findall(b.lower())
    if min(len(wa), len(wb)) < SHINGLE:
        return False
    sa = {tuple(wa[i:i + SHINGLE]) for i in range(len(wa) - SHINGLE + 1)}
    sb = {tuple(wb[i:i + SHINGLE]) for i in range(len(wb) - SHINGLE + 1)}
    shared = sa & sb
    if len(shared) < MIN_SHARED:
        return False
    ra, rb = _runs(wa, shared), _runs(wb, shared)
    if len(ra) > 1 or len(rb) > 1:
        return False
    extra_a = [w for s, e in ra for w in wa[s:e]]
    extra_b = [w for s, e in rb for w in wb[s:e]]
    if len(extra_a) > LINE_WORDS or len(extra_b) > LINE_WORDS:
        return False
    if len(wa) - len(extra_a) < LINE_KEEP * len(wa) or len(wb) - len(extra_b) < LINE_KEEP * len(wb):
        return False
    figures_a = {w for w in extra_a if _FIGURE.fullmatch(w)}
    figures_b = {w for w in extra_b if _FIGURE.fullmatch(w)}
    return not (figures_a and figures_b and figures_a != figures_b)
