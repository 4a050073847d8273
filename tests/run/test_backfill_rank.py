"""Backfill's order and stop rule (ingest.run.backfill_rank), without I/O."""

from __future__ import annotations

import random
from datetime import date

from ingest.run.backfill_rank import MIN_RANKED, YIELD_WINDOW, Item, SiteQueue, YieldRule


def _item(i: int, score: float, *, opaque: bool = False, day: date | None = None) -> Item:
    return Item(i, f"http://e.org/{i}", f"http://e.org/{i}", "sitemap", "http://e.org/sitemap.xml", day, "",
                score, (), opaque)


def test_best_first_each_once_and_a_raised_score_counts_once():
    q = SiteQueue(random.Random(1))
    for i, s in enumerate([0.1, 0.5, 0.3, 0.9]):
        q.add(_item(i, s))
    q.add(_item(9, 0.99))  # a second id for a URL it holds already (e.g. a related link) is ignored...
    assert len(q) == 5
    q.raise_to(q.get("http://e.org/0"), 0.7)  # raised: its stale heap entry is skipped
    assert [q.pop_best().id for _ in range(5)] == [9, 3, 0, 1, 2]
    assert q.pop_best() is None and len(q) == 0


def test_a_deferred_candidate_goes_back_and_a_random_draw_takes_each_once():
    q = SiteQueue(random.Random(2))
    for i in range(20):
        q.add(_item(i, i / 20))
    best = q.pop_best()
    q.put_back(best)
    assert q.pop_best().id == best.id
    drawn = {q.pop_random().id for _ in range(19)}
    assert len(drawn) == 19 and best.id not in drawn
    assert q.pop_random() is None and q.pop_best() is None


def test_opaque_candidates_near_a_kept_articles_day_rise_to_the_top_decile():
    q = SiteQueue(random.Random(3))
    for i in range(100):
        q.add(_item(i, i / 100))
    near = _item(200, 0.0, opaque=True, day=date(2024, 5, 3))
    far = _item(201, 0.0, opaque=True, day=date(2024, 6, 30))
    q.add(near)
    q.add(far)
    assert q.raise_near(date(2024, 5, 1)) == 1
    assert near.score == q.high() >= 0.9 and far.score == 0.0
    order = [q.pop_best().id for _ in range(15)]
    assert 200 in order and 201 not in order


def test_a_title_ranks_an_opaque_candidate_by_its_words():
    q = SiteQueue(random.Random(4))
    q.add(_item(1, 0.5))
    opaque = _item(2, 0.0, opaque=True)
    q.add(opaque)
    q.titled(opaque, "Gold mine collapse", 0.8, ("gold", "mine"))
    assert not opaque.opaque and q.pop_best().id == 2


def test_the_yield_rule_goes_on_while_the_ranking_beats_a_random_draw_and_stops_after():
    rule = YieldRule()
    for _ in range(MIN_RANKED - 1):
        rule.add(False, sample=False)
    assert not rule.exhausted_yield()  # never before MIN_RANKED ranked fetches
    rule.add(False, sample=False)
    assert rule.exhausted_yield()  # nothing kept in the whole window
    rich = YieldRule()
    for i in range(200):  # a site where 1 page in 4 is on the topic: its random sample says so
        rich.add(i % 4 == 0, sample=True)
    assert 0.2 < rich.base_rate < 0.3
    for i in range(YIELD_WINDOW):  # a ranking keeping 1 in 3: barely better than the draw
        rich.add(i % 3 == 0, sample=False)
    assert rich.exhausted_yield()  # 20 kept < 2 x base rate x window
    sparse = YieldRule()
    for _ in range(100):
        sparse.add(False, sample=True)  # a site with almost nothing on the topic
    for i in range(YIELD_WINDOW):
        sparse.add(i % 20 == 0, sample=False)  # 3 in 60: far above its draw
    assert not sparse.exhausted_yield()
    sample_only = YieldRule()
    for _ in range(500):
        sample_only.add(True, sample=True)  # the sample never moves the window
    assert sample_only.ranked == 0 and sample_only.recent == ""
