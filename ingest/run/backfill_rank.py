"""Backfill's order and its stop rule, without I/O: a site's pending candidates best first
(ingest.judge.prescore gives each its pre-score), raised as the fetching learns (a related-story
link's text, the dates around kept articles), and the yield rule that says when the rest of a
site's ranking is noise.

The yield rule: a site stops when its last YIELD_WINDOW ranked fetches kept fewer than
``max(YIELD_MIN_KEPT, 2 x the site's base rate x YIELD_WINDOW)`` pages, the base rate being the kept
share of the site's random sample (Laplace-smoothed; 1 in 50 before the sample says more). A
ranking still finding on-topic pages keeps a higher yield than a random draw from the site; once it
does no better than twice a random draw, the rest of it is what a random walk through the site
would find, at the price of a request per page.
"""

from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

YIELD_WINDOW = 60  # ranked fetches the rule looks back over
YIELD_MIN_KEPT = 2  # fewer kept than this in the window: stop (whatever the base rate)
MIN_RANKED = 60  # a site is never stopped for its yield before this many ranked fetches
PRIOR_FETCHED, PRIOR_KEPT = 50, 1  # the base rate before the site's random sample says more: 1 in 50
DATE_SPAN = 2  # days either side of a kept article's date whose opaque candidates are raised
SAMPLE_EVERY = 10  # one fetch in this many is a random pending candidate (the model's background)


@dataclass
class Item:
    """A candidate as the fetch loop holds it."""

    id: int
    link: str
    url: str  # normalised
    source: str
    found_in: str
    day: date | None
    title: str
    score: float  # its pre-score (raised as the loop learns)
    words: tuple[str, ...] = ()
    opaque: bool = False
    done: bool = False  # taken (fetched or being fetched)


@dataclass
class SiteQueue:
    """A site's pending candidates, best pre-score first; a random one on request (the sample)."""

    rng: random.Random
    _heap: list[tuple[float, int, int]] = field(default_factory=list)  # (-score, order, id): lazy
    _items: dict[int, Item] = field(default_factory=dict)
    _by_url: dict[str, Item] = field(default_factory=dict)
    _opaque_days: dict[date, list[int]] = field(default_factory=dict)
    _order: int = 0
    _left: int = 0  # pending (not taken)
    _scores: list[float] = field(default_factory=list)  # sorted pre-scores of the items with words
    _pool: list[int] = field(default_factory=list)  # ids for the random draw (lazy: taken ones leave when drawn)

    def add(self, item: Item) -> None:
        if item.url in self._by_url:
            return
        self._items[item.id] = item
        self._by_url[item.url] = item
        self._left += not item.done
        if item.opaque and item.day is not None:
            self._opaque_days.setdefault(item.day, []).append(item.id)
        if not item.opaque:
            bisect.insort(self._scores, item.score)
        self._pool.append(item.id)
        self._push(item)

    def _push(self, item: Item) -> None:
        self._order += 1
        heapq.heappush(self._heap, (-item.score, self._order, item.id))

    def __len__(self) -> int:
        return self._left

    def get(self, url: str) -> Item | None:
        return self._by_url.get(url)

    def pop_best(self) -> Item | None:
        while self._heap:
            neg, _, iid = heapq.heappop(self._heap)
            item = self._items[iid]
            if item.done or -neg != item.score:  # taken already, or a stale entry of a raised score
                continue
            item.done = True
            self._left -= 1
            return item
        return None

    def pop_random(self) -> Item | None:
        """A pending candidate drawn uniformly (O(1) amortised: a site may list 500,000)."""
        pool = self._pool
        while pool:
            i = self.rng.randrange(len(pool))
            pool[i], pool[-1] = pool[-1], pool[i]
            item = self._items[pool.pop()]
            if not item.done:
                item.done = True
                self._left -= 1
                return item
        return None

    def raise_to(self, item: Item, score: float) -> None:
        """A pending candidate near a kept article: ranked higher (never lower)."""
        if not item.done and score > item.score:
            item.score = score
            self._push(item)

    def titled(self, item: Item, title: str, score: float, words: tuple[str, ...]) -> None:
        """An opaque candidate got a title (a related-story link's text): ranked by it, up or down."""
        if item.done:
            return
        item.title, item.opaque, item.score, item.words = title, False, score, words
        bisect.insort(self._scores, score)
        self._push(item)

    def put_back(self, item: Item) -> None:
        """A taken candidate that was not fetched after all (the host asked for quiet)."""
        item.done = False
        self._left += 1
        self._pool.append(item.id)
        self._push(item)

    def high(self) -> float:
        """The pre-score of the site's top decile (what a candidate near a kept article is raised to)."""
        if not self._scores:
            return 0.0
        return self._scores[min(len(self._scores) - 1, int(0.9 * len(self._scores)))]

    def raise_near(self, day: date, span: int = DATE_SPAN) -> int:
        """Opaque candidates dated within ``span`` days of a kept article: stories of one subject come in
        runs (a mine collapse, then its follow-ups), and an opaque URL has nothing else to go by."""
        to, n = self.high(), 0
        for d in range(-span, span + 1):
            for iid in self._opaque_days.get(day + timedelta(days=d), ()):
                item = self._items[iid]
                if not item.done and item.score < to:
                    self.raise_to(item, to)
                    n += 1
        return n


@dataclass
class YieldRule:
    """A site's recent ranked outcomes and its random sample's: says when to stop (module docstring)."""

    recent: str = ""  # "1" kept, "0" not, oldest first, at most YIELD_WINDOW
    ranked: int = 0  # ranked fetches this run
    sample_fetched: int = 0
    sample_kept: int = 0

    def add(self, kept: bool, sample: bool) -> None:
        if sample:
            self.sample_fetched += 1
            self.sample_kept += kept
            return
        self.ranked += 1
        self.recent = (self.recent + ("1" if kept else "0"))[-YIELD_WINDOW:]

    @property
    def base_rate(self) -> float:
        return (self.sample_kept + PRIOR_KEPT) / (self.sample_fetched + PRIOR_FETCHED)

    @property
    def needed(self) -> float:
        """Kept pages the window must hold to go on."""
        return max(YIELD_MIN_KEPT, 2 * self.base_rate * YIELD_WINDOW)

    def exhausted_yield(self) -> bool:
        if self.ranked < MIN_RANKED or len(self.recent) < YIELD_WINDOW:
            return False
        return self.recent.count("1") < self.needed
