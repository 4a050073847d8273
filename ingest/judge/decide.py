"""The decisions of a poll, as pure functions over typed values (no store, no network).

``Poll`` gathers the facts (a page's fetch result, its score, which stored
article it is, if any) and commits what these functions decide; they are
unit-tested on their own (tests/judge/test_decide.py).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ingest.judge.dedup import same_story

UPDATE_JACCARD = 0.3  # an in-place update is the same story at a looser bar than a copy:
UPDATE_CONTAINMENT = 0.6  # edits add, cut and reword; a different story shares almost nothing


class Outcome(enum.Enum):
    """What became of a page (the ``pages.outcome`` column)."""

    KEPT = "kept"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"  # another page of a story already stored (or kept in the same poll)
    EMPTY = "empty"  # no extractable text, or not an HTML page
    BLOCKED = "blocked"  # robots.txt says no
    ERROR = "error"  # the request failed: tried again at a later poll
    DEFERRED = "deferred"  # not sent yet: the host asked for quiet, or robots.txt is unreadable


@dataclass(frozen=True)
class Skipped:
    """A page with no text to decide on."""

    outcome: Outcome  # EMPTY, BLOCKED or ERROR
    reason: str
    final_url: str | None = None


@dataclass(frozen=True)
class Deferred:
    """A page whose request was not sent: try again at ``until`` (not an attempt)."""

    until: float
    reason: str


class Refresh(enum.Enum):
    """A stored article fetched again because its entry says it was updated."""

    SAME = "same"  # the text did not change
    EDIT = "edit"  # an edit of the same story: rewritten in place
    OTHER_STORY = "other_story"  # the page now tells another story: decided as a new page


def is_update(old_text: str, new_text: str) -> bool:
    """Is ``new_text`` an edit of ``old_text`` (then it replaces it in place) rather than another story?"""
    return same_story(old_text, new_text, jaccard=UPDATE_JACCARD, contained=UPDATE_CONTAINMENT)


def refresh(stored_hash: str, stored_text: str | None, new_hash: str, new_text: str) -> Refresh:
    if stored_hash == new_hash:
        return Refresh.SAME
    if stored_text is not None and is_update(stored_text, new_text):
        return Refresh.EDIT
    return Refresh.OTHER_STORY


def effective_threshold(poll: float, feed_thresholds: Iterable[float | None]) -> float:
    """The poll's threshold, or the lowest [[feeds]] threshold among the feeds that listed the page
    (a feed the user trusts more keeps more of its own pages); a feed without one counts as the poll's."""
    return min((poll if t is None else t for t in feed_thresholds), default=poll)


def relevance(score: float, threshold: float, duplicate_of: int | None) -> Outcome:
    """KEPT, REJECTED, or DUPLICATE when the page is a story already stored."""
    if duplicate_of is not None:
        return Outcome.DUPLICATE
    return Outcome.KEPT if score >= threshold else Outcome.REJECTED


def leaders(text_hashes: Sequence[str]) -> list[int | None]:
    """Exact copies inside one batch: for each item, None when it leads (first with its text),
    else the index of the item it follows."""
    first: dict[str, int] = {}
    out: list[int | None] = []
    for i, h in enumerate(text_hashes):
        lead = first.setdefault(h, i)
        out.append(None if lead == i else lead)
    return out
