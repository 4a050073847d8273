"""Backfill's pre-score (ingest.judge.prescore): the poll's own model on what a candidate's URL and
title say, best first, an opaque URL in the middle rather than last."""

from __future__ import annotations

from ingest.judge.prescore import best_first, url_words
from ingest.judge.relevance import learn_model
from ingest.text.seeds import load_seeds
from ingest.text.terms import term_counts
from tests.conftest import OFF, ON, REPO
from tests.support.web import article_text


def test_url_words_are_a_slugs_words_not_its_ids_dates_or_formats():
    assert url_words("https://e.org/2025/01/15/north-korea-gold-mine_collapse-1234.html") == \
        ["north", "korea", "gold", "mine", "collapse"]
    assert url_words("https://e.org/news/12345") == [] and url_words("https://e.org/?p=991") == []
    assert url_words("https://e.org/index.php?title=Hyesan_gold&id=7") == ["hyesan", "gold"]


def test_on_topic_slugs_and_titles_rank_first_opaque_urls_in_the_middle():
    seeds = [s.text for s in load_seeds(REPO / "seeds")]
    stream = [term_counts("\n\n".join(article_text(n))) for n in ON + OFF] * 3
    model = learn_model(seeds, stream)
    candidates = [("https://e.org/sport/cup-final-penalties-derby", ""),
                  ("https://e.org/2024/05/hyesan-gold-mine-forced-labour", ""),
                  ("https://e.org/news/12345", ""),
                  ("https://e.org/p/991", "Gold smuggled from North Korean mines seized at Dandong"),
                  ("https://e.org/food/ten-easy-pasta-recipes", "")]
    order = [i for i, _ in best_first(model, candidates)]
    assert set(order[:2]) == {1, 3}  # the gold-mining slug and the gold title first
    assert order.index(2) < max(order.index(0), order.index(4))  # the opaque URL is not ranked last
    ranked = dict(best_first(model, candidates))
    assert ranked[2].opaque and not ranked[1].opaque and "gold" in " ".join(ranked[1].words)
