"""Relevance: tokens, idf prior, the two models, verdicts, warnings, the review order."""

from __future__ import annotations

import gzip
import json
import random
import re

import pytest

from ingest.judge.relevance import MIN_STREAM, TermStats, borderline, score_stream
from ingest.text.terms import split_title, term_counts, tokens
from tests.conftest import REPO, SHARED
from tests.support.web import FIXTURES

SEEDS = [p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt"))]
ARTICLES = {p.stem: p.read_text(encoding="utf-8") for p in (FIXTURES / "articles").glob("*.txt")}
REUTERS = SHARED / "data" / "reuters" / "articles.jsonl.gz"


def test_tokens_fold_plurals_and_possessives():
    assert tokens("North Korea's mines, 2,000 tons") == ["north", "korea", "mine", "ton"]
    assert tokens("Countries’ policies") == ["country", "policy"]


def test_title_detection():
    assert split_title("A short headline\n\nBody text.")[0] == "A short headline"
    assert split_title("This is a sentence that ends with a period.\nMore.")[0] == ""
    assert split_title("single line only")[0] == ""


def test_idf_prior_and_stream():
    """idf = prior from general word statistics, lowered for words the stream's background uses.
    A probe text holding each word once shows the idf ratios in its vector."""
    import numpy as np

    from ingest.judge.relevance import _Matrix

    probe = {"the": 1, "gold": 1, "ryanggang": 1, "mln": 1}
    docs = [probe] + [{"mln": 1, "the": 1}] * 500
    mat = _Matrix(docs, TermStats())
    col = {t: i for i, t in enumerate(mat.terms)}
    only_probe = np.zeros(len(docs), dtype=bool)
    only_probe[0] = True
    alone = mat.vectors(only_probe).toarray()[0]  # the background is the probe alone: prior-driven
    assert alone[col["the"]] < 0.05 * alone[col["gold"]] and alone[col["gold"]] < alone[col["ryanggang"]]
    everyone = mat.vectors(np.ones(len(docs), dtype=bool)).toarray()[0]
    # "mln" is rare in English, but in every stream text: it loses most of its weight against "gold"
    assert everyone[col["mln"]] / everyone[col["gold"]] < (alone[col["mln"]] / alone[col["gold"]]) / 3


def _sentences(names: list[str]) -> list[str]:
    out = []
    for n in names:
        body = split_title(ARTICLES[n])[1]
        out += [s for s in re.split(r"(?<=[.!?])\s+", body) if len(s.split()) > 5]
    return out


def synthetic_stream(rng: random.Random, n_off: int, n_on: int) -> tuple[list[str], list[bool]]:
    """Texts recombined from the fixture articles' sentences: off-topic ones from the off_* articles,
    on-topic ones from the on_* articles (not the seeds)."""
    off = _sentences([n for n in ARTICLES if n.startswith("off_")])
    on = _sentences([n for n in ARTICLES if n.startswith("on_")])
    texts = [" ".join(rng.sample(off, 6)) for _ in range(n_off)] + [" ".join(rng.sample(on, 6)) for _ in range(n_on)]
    truth = [False] * n_off + [True] * n_on
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [truth[i] for i in order]


def test_small_stream_uses_the_cosine_model_with_reasons():
    counts = [term_counts(t) for t in ARTICLES.values()]
    res = score_stream(SEEDS, counts)
    assert res.threshold.model == "cosine" and len(counts) < MIN_STREAM
    by_name = dict(zip(ARTICLES, res.scores, strict=True))
    on = [s.score for n, s in by_name.items() if n.startswith("on_")]
    off = [s.score for n, s in by_name.items() if n.startswith("off_")]
    assert min(on) > res.threshold.value > max(off)
    assert "gold" in by_name["on_hyesan_gold"].terms[:5]


def test_learned_model_separates_a_stream_and_explains():
    texts, truth = synthetic_stream(random.Random(1), 190, 10)
    res = score_stream(SEEDS, [term_counts(t) for t in texts])
    assert res.threshold.model == "logistic" and res.threshold.stream_n == 200
    kept = [s.score >= res.threshold.value for s in res.scores]
    assert kept == truth
    assert 0 < res.threshold.value < 1 and 0.01 < res.threshold.share < 0.2
    top = next(s for s, y in zip(res.scores, truth, strict=True) if y)
    assert top.terms and set(top.terms) & {"gold", "mine", "mining", "north", "korea", "korean", "labour"}


def test_verdicts_teach_the_model():
    """Football is declared relevant by the user: other football texts rise, and the judged ones are
    learned as labels, not overridden by the pseudo-labels."""
    rng = random.Random(2)
    texts, truth = synthetic_stream(rng, 150, 10)
    football = _sentences(["off_football"])
    extra = [" ".join(rng.sample(football, min(6, len(football)))) for _ in range(12)]
    stream = [term_counts(t) for t in texts + extra]
    before = score_stream(SEEDS, stream)
    verdicts: list[bool | None] = [None] * len(texts) + [True] * 6 + [None] * 6
    after = score_stream(SEEDS, stream, verdicts)
    held_out = range(len(texts) + 6, len(stream))
    assert all(after.scores[i].score > before.scores[i].score for i in held_out)
    assert sum(after.scores[i].score >= after.threshold.value for i in held_out) >= 4


def test_fixed_threshold_overrides():
    res = score_stream(SEEDS, [term_counts(ARTICLES["off_recipe"])], fixed=0.0)
    assert res.threshold.value == 0.0 and res.scores[0].score >= 0.0


def test_degenerate_seeds_warn():
    one = score_stream(SEEDS[:1], [term_counts(t) for t in ARTICLES.values()])
    assert any("only one seed" in w for w in one.threshold.warnings)
    copies = score_stream([SEEDS[0], SEEDS[0] + "\nShared by a reader."], [term_counts(ARTICLES["off_recipe"])])
    assert any("copies of one story" in w for w in copies.threshold.warnings)
    assert not score_stream(SEEDS, [term_counts(ARTICLES["off_recipe"])]).threshold.warnings


def test_borderline_alternates_sides_and_skips_judged():
    scores = [0.9, 0.55, 0.45, 0.2, 0.51, 0.49, 0.05]
    assert borderline(scores, 0.5, k=4) == [4, 5, 1, 2]
    assert borderline(scores, 0.5, exclude={4, 5}, k=3) == [1, 2, 0]
    assert borderline([0.9, 0.8], 0.5, k=5) == [1, 0]


@pytest.mark.skipif(not REUTERS.exists(), reason="../shared Reuters data absent")
def test_reuters_topic_at_five_percent():
    """A development topic (gold, 3 seeds, 5 % of a 1,200-text stream): the learned model keeps most of
    the topic and little else."""
    docs = []
    with gzip.open(REUTERS, "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            if d["body"].strip():
                docs.append(d)
    rng = random.Random(4)
    on = [d for d in docs if "gold" in d["topics"]]
    off = rng.sample([d for d in docs if "gold" not in d["topics"]], 1140)
    seeds = rng.sample([d for d in on if d["lewissplit"] == "TRAIN"], 3)
    pos = rng.sample([d for d in on if d not in seeds], 60)
    stream = pos + off
    res = score_stream([d["title"] + "\n\n" + d["body"] for d in seeds],
                       [term_counts(d["title"] + "\n\n" + d["body"]) for d in stream])
    kept = [s.score >= res.threshold.value for s in res.scores]
    tp = sum(kept[:60])
    precision, recall = tp / max(sum(kept), 1), tp / 60
    assert precision > 0.5 and recall > 0.5, (precision, recall)


def test_a_frozen_model_scores_a_text_the_same_alone_or_in_any_batch():
    """The model learned from a window scores new texts one by one exactly as in a batch, and the
    window's own texts exactly as score_stream does (learning then scoring is one thing)."""
    import pickle

    from ingest.judge.relevance import learn_model

    texts, _ = synthetic_stream(random.Random(4), 150, 10)
    window = [term_counts(t) for t in texts[:120]]
    model = pickle.loads(pickle.dumps(learn_model(SEEDS, window)))  # as it travels to a worker
    new = [term_counts(t) for t in texts[120:]] + [term_counts(ARTICLES["on_hyesan_gold"])]
    batch = model.score(new)
    assert [model.score([c])[0] for c in new] == batch
    assert model.score(list(reversed(new))) == list(reversed(batch))
    assert [s.score for s in score_stream(SEEDS, window).scores] == [s.score for s in model.score(window)]
    assert batch[-1].score >= model.threshold.value and "gold" in batch[-1].terms  # unseen text, on topic


def test_a_topic_the_model_cannot_separate_is_said_once_with_what_would_help():
    rng = random.Random(3)
    words = ("market price trade bank export import deficit surplus tariff minister economy growth rate currency "
             "dollar yen oil grain ship port budget tax official talks agreement").split()

    def text() -> str:
        return " ".join(rng.choice(words) for _ in range(150))

    res = score_stream([text() for _ in range(3)], [term_counts(text()) for _ in range(300)])
    said = [w for w in res.threshold.warnings if w.startswith("the model cannot separate")]
    assert len(said) == 1 and "more seeds" in said[0] and "ingest review" in said[0]
    # a topic that stands out: nothing of the kind
    texts, _ = synthetic_stream(random.Random(1), 190, 10)
    clear = score_stream(SEEDS, [term_counts(t) for t in texts]).threshold
    assert not any(w.startswith("the model cannot separate") for w in clear.warnings)
    assert clear.separation >= 0.45


def test_precision_and_recall_from_verdicts_with_their_uncertainty():
    from ingest.judge.quality import estimates, wilson

    assert wilson(0, 0) is None
    e = wilson(8, 10)
    assert e is not None and e.value == 0.8 and 0.49 < e.low < 0.45 + 0.1 and 0.94 < e.high < 0.95
    narrow = wilson(80, 100)
    assert narrow is not None and narrow.high - narrow.low < e.high - e.low  # more verdicts, surer
    precision, recall = estimates([(True, "kept")] * 9 + [(False, "kept")] * 3 + [(True, "rejected")] * 3
                                  + [(False, "rejected")] * 9)
    assert precision is not None and precision.value == 0.75 and precision.n == 12
    assert recall is not None and recall.value == 0.75 and recall.n == 12
    # too few verdicts say nothing: no "precision 0 % (1 verdict)"
    assert estimates([(False, "kept")] + [(True, "rejected")] * 9) == (None, None)


def test_the_compact_word_table_gives_wordfreqs_priors():
    """TermStats keeps wordfreq's table as hashed arrays (4 MB, not a 40 MB dict in every process):
    the priors are those of wordfreq's own dict, its fallbacks included (a trailing apostrophe
    dropped, a folded plural unfolded, an unknown word as rare as MIN_FREQ)."""
    import math

    import wordfreq

    from ingest.judge.model import DOC_LEN, MIN_FREQ, TermStats

    table = wordfreq.get_frequency_dict("en")

    def expected(token: str) -> float:
        freq = table.get(token)
        if freq is None and token.endswith("'"):
            freq = table.get(token[:-1])
        if freq is None:
            freq = table.get(token + "s", MIN_FREQ)
        return -math.expm1(-max(freq, MIN_FREQ) * DOC_LEN)

    known = list(table)[::37]
    words = known + [w + "'" for w in known[:300]] + [w[:-1] for w in known if w.endswith("s")][:300] + \
        ["qzxvw", "hyesan", "ryanggang'", "the"]
    got = TermStats("en").priors(words)
    assert len(got) == len(words)
    for word, value in zip(words, got, strict=True):
        assert math.isclose(value, expected(word), rel_tol=1e-12), word


def _zipf_window(seed: int, pages: int, extra: tuple[str, ...] = ()) -> list[bytes]:
    """A store's window (packed term counts) of ``pages`` random 200-word pages, Zipf-distributed."""
    from ingest.blobs import pack

    rng = random.Random(seed)
    vocab = [f"w{i:05d}x" for i in range(20000)] + list(extra)
    zipf = [1 / (i + 1) for i in range(len(vocab))]
    return [pack(term_counts(" ".join(rng.choices(vocab, weights=zipf, k=200)))) for _ in range(pages)]


def _peak_beside_unpacked(window: list[bytes], work):
    """(``work()``'s result, its peak traced memory, the traced size of the window unpacked into dicts)."""
    import tracemalloc

    from ingest.blobs import unpack

    tracemalloc.start()
    try:
        dicts = [unpack(b) for b in window]
        unpacked = tracemalloc.get_traced_memory()[0]
        del dicts
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = work()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return result, peak, unpacked


@pytest.mark.slow
def test_learning_from_a_window_holds_no_more_than_the_window_unpacked():
    """A worker learns the model from the store's window (packed term counts). Unpacking the whole
    window into dicts, with three copies of its matrix, once took 2.5x the unpacked window (a
    10,000-page window: ~280 MB in a worker, kept after); it is now read one page at a time."""
    from ingest.judge.scoring import fit_window

    window = _zipf_window(7, 1500)
    fit_window(SEEDS, window[:100], [None] * 100, "en", None)  # the word statistics, loaded once per process
    # a window past MATURE: no rescore
    (model, _), peak, unpacked = _peak_beside_unpacked(
        window, lambda: fit_window(SEEDS, window, [None] * len(window), "en", None))
    assert model.kind == "logistic" and model.threshold.stream_n == len(window)
    assert peak < 1.3 * unpacked, f"learning peaked at {peak / 1e6:.1f} MB, unpacked: {unpacked / 1e6:.1f} MB"


@pytest.mark.slow
def test_rescoring_a_window_gives_the_same_scores_in_bounded_memory():
    """A model learned from a provisional window re-scores that window to re-decide its pages. Scoring
    it all at once built Python lists per term occurrence (1.9x the unpacked window, on top of what
    learning held); it is scored in batches now, each page's score depending on that page alone."""
    from ingest.blobs import unpack
    from ingest.judge.scoring import Unpacked, fit_window

    window = _zipf_window(11, 1200, ("gold", "mine", "hyesan", "labour"))
    model, scores = fit_window(SEEDS, window, [None] * len(window), "en", None, rescore=True)
    assert len(scores) == len(window) and any(s.terms for s in scores)
    assert scores == [model.score([unpack(b)])[0] for b in window]  # the same to the last bit, page by page
    _, peak, unpacked = _peak_beside_unpacked(window, lambda: model.score(Unpacked(window)))
    assert peak < 0.75 * unpacked, f"scoring peaked at {peak / 1e6:.1f} MB, unpacked: {unpacked / 1e6:.1f} MB"
