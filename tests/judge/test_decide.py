"""The poll's decisions on their own: pure functions over typed values (ingest.judge.decide)."""

from __future__ import annotations

from ingest.judge.decide import Outcome, Refresh, effective_threshold, is_update, leaders, refresh, relevance

STORY = ("Gold output at the Hyesan mine rose sharply this year as prisoners from the nearby labour camp were "
         "sent down the shafts in shifts of twelve hours, according to two former workers who fled to China. "
         "Both said the ore is trucked to the border at night and sold to traders for cash in dollars.")


def test_relevance():
    assert relevance(0.5, 0.4, None) is Outcome.KEPT
    assert relevance(0.4, 0.4, None) is Outcome.KEPT  # at the threshold: kept
    assert relevance(0.39, 0.4, None) is Outcome.REJECTED
    assert relevance(0.99, 0.4, 7) is Outcome.DUPLICATE  # a stored story is never kept twice


def test_effective_threshold_takes_the_most_trusting_feed():
    assert effective_threshold(0.4, []) == 0.4
    assert effective_threshold(0.4, [None]) == 0.4
    assert effective_threshold(0.4, [None, 0.1]) == 0.1
    assert effective_threshold(0.4, [0.6]) == 0.6  # a stricter feed of its own
    assert effective_threshold(0.4, [0.6, None]) == 0.4  # another feed listing it keeps the poll's


def test_leaders_group_exact_copies():
    assert leaders([]) == []
    assert leaders(["a", "b", "a", "c", "b", "a"]) == [None, None, 0, None, 1, 0]


def test_refresh():
    assert refresh("h1", None, "h1", STORY) is Refresh.SAME
    edited = STORY.replace("rose sharply", "rose by a third") + " The mine's manager declined to comment."
    assert is_update(STORY, edited)
    assert refresh("h1", STORY, "h2", edited) is Refresh.EDIT
    other = ("The national football team beat its rival two to one on Sunday evening in front of a crowd of "
             "forty thousand, with both goals scored in the second half after a long injury break.")
    assert refresh("h1", STORY, "h3", other) is Refresh.OTHER_STORY
    assert refresh("h1", None, "h2", edited) is Refresh.OTHER_STORY  # the stored text is gone: not provably an edit
