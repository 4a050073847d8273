"""Ranking a site's history before fetching it (backfill's best-first, issue 36): each candidate's
pre-score is the poll's own model (seeds, verdicts, the stream's idf) applied to what is known of it
without a request: the words of its URL path (a slug such as ``north-korea-gold-mine-collapse``) and
any title a sitemap or feed gave it.

A candidate whose URL gives no words and that has no title (``/news/12345``, ``?p=991``) is not
ranked last: it takes the median pre-score of the site's candidates that have words, so an opaque
site's on-topic articles stay reachable (the fetch loop then learns from the dates and links around
the pages it keeps).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ingest.judge.model import Model
from ingest.text.terms import term_counts

# path words that say nothing of a story: formats, sections of every site, a CMS's own
_NOISE = {"html", "htm", "php", "asp", "aspx", "jsp", "shtml", "index", "amp", "www", "news", "article",
          "articles", "story", "stories", "post", "posts", "blog", "content", "view", "id", "page", "en", "english"}
_SPLIT = re.compile(r"[/\-_.+,;=&?%]+")
_WORDY = re.compile(r"^[^\W\d_]{2,}$", re.UNICODE)  # letters only: ids, dates and hashes are not words


@dataclass(frozen=True)
class PreScore:
    score: float
    words: tuple[str, ...]  # the words it was ranked by (the model's top terms), for the dry run's report
    opaque: bool  # no words to rank it by: given the site's median


def url_words(url: str) -> list[str]:
    """The words of a URL's path and query values (lower case; ids, dates, file types left out)."""
    parts = urlsplit(url)
    raw = unquote(parts.path) + " " + " ".join(v for kv in parts.query.split("&") for v in kv.split("=")[1:])
    return [w for w in (t.lower() for t in _SPLIT.split(raw.replace(" ", "/"))) if _WORDY.match(w) and w not in _NOISE]


def prescore(model: Model, candidates: Sequence[tuple[str, str]]) -> list[PreScore]:
    """The pre-score of each (url, title) under ``model``, in order."""
    texts = [" ".join(filter(None, [title, " ".join(url_words(url))])) for url, title in candidates]
    has = [bool(t.strip()) for t in texts]
    scores = model.score([term_counts(t) for t in texts])
    known = [s.score for s, h in zip(scores, has, strict=True) if h]
    middle = statistics.median(known) if known else 0.0
    return [PreScore(s.score, s.terms[:5], False) if h else PreScore(middle, (), True)
            for s, h in zip(scores, has, strict=True)]


def best_first(model: Model, candidates: Sequence[tuple[str, str]]) -> list[tuple[int, PreScore]]:
    """The candidates' indexes with their pre-scores, best first (ties: the order they were found in)."""
    scored = list(enumerate(prescore(model, candidates)))
    return sorted(scored, key=lambda item: (-item[1].score, item[0]))
