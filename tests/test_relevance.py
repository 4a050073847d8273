"""Relevance: tokens, idf, scores, explanations and the automatic threshold."""

from __future__ import annotations

from ingest.relevance import SeedModel, TermStats, calibrate, percentile, score_batch, split_title, term_counts, tokens

from .conftest import REPO
from .web import FIXTURES

SEEDS = [p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").glob("*.txt"))]
ARTICLES = {p.stem: p.read_text(encoding="utf-8") for p in (FIXTURES / "articles").glob("*.txt")}


def test_tokens_fold_plurals_and_possessives():
    assert tokens("North Korea's mines, 2,000 tons") == ["north", "korea", "mine", "ton"]
    assert tokens("Countries’ policies") == ["country", "policy"]


def test_title_detection():
    assert split_title("A short headline\n\nBody text.")[0] == "A short headline"
    assert split_title("This is a sentence that ends with a period.\nMore.")[0] == ""
    assert split_title("single line only")[0] == ""


def test_idf_prior_and_stream():
    stats = TermStats()
    assert stats.idf("the") < 0.1 < 2 < stats.idf("gold") < stats.idf("ryanggang")
    # a word that is rare in general English but in every stream document loses its weight
    before = stats.idf("mln")
    stats.add([{"mln": 1}] * 500)
    assert stats.idf("mln") < before / 3


def test_on_topic_scores_above_off_topic_with_reasons():
    counts = [term_counts(t) for t in ARTICLES.values()]
    scores, threshold = score_batch(SEEDS, counts, TermStats(), history=[])
    by_name = dict(zip(ARTICLES, scores, strict=True))
    on = [s.score for n, s in by_name.items() if n.startswith("on_")]
    off = [s.score for n, s in by_name.items() if n.startswith("off_")]
    assert min(on) > threshold.value > max(off)
    assert "gold" in by_name["on_hyesan_gold"].terms[:5]


def test_threshold_leans_on_the_background_as_it_grows():
    model = SeedModel([term_counts(s) for s in SEEDS], TermStats())
    empty = calibrate(model, [])
    assert empty.background_n == 0 and empty.value > 0
    noisy = calibrate(model, [0.05, 0.06, 0.04, 0.3] * 500)
    quiet = calibrate(model, [0.01, 0.02, 0.015] * 500)
    assert quiet.value < noisy.value
    assert quiet.background_level < noisy.background_level


def test_fixed_threshold_overrides():
    _, th = score_batch(SEEDS, [term_counts(ARTICLES["off_recipe"])], TermStats(), [], fixed=0.0)
    assert th.value == 0.0


def test_percentile_matches_numpy_linear():
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 99) == 5
