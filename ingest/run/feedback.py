"""The user's verdicts, and the corpus following them: review, mark, rescore, seeds add.

* ``review`` picks the pages whose verdict would teach the model most: the
  ones nearest the threshold on both sides, kept or rejected, never one
  already judged (on Reuters, 20 such verdicts teach far more than 20 from
  the top; docs/relevance.md).
* ``mark`` records verdicts; ``apply_verdicts`` makes the corpus folder
  follow them: a kept article judged irrelevant moves to ``withdrawn/`` (row
  and text stay; a later "relevant" brings it back under the same name), a
  rejected page judged relevant joins the corpus from its kept text. Verdicts
  are also labels for the model, and the model never overrides them.
* ``rescore`` (ingest.run.rescore) re-decides recent pages with the current
  seeds and verdicts.
* ``add_seed`` turns an article or a text file into a seed file.

Every change to the corpus is one store transaction plus an atomic file
move or write, so a kill at any moment leaves the store consistent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.config import Config
from ingest.judge.decide import effective_threshold
from ingest.judge.quality import ModelReport, estimates, judged_counts
from ingest.judge.relevance import Scored, borderline
from ingest.judge.scoring import score_packed
from ingest.sources.urls import display, normalize, site_of, url_hash
from ingest.store import NewArticle, PageDoc, SqlStore, corpus_text
from ingest.store.contract import Record
from ingest.text.fingerprint import signature
from ingest.text.seeds import MIN_SEED_WORDS, SeedError, load_seeds
from ingest.text.terms import term_counts


class FeedbackError(Exception):
    """A verdict or seed request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class ReviewItem:
    id: str  # opaque page reference that `mark` and `seeds add` accept
    url: str
    title: str
    site: str
    score: float
    threshold: float
    kept: bool
    terms: tuple[str, ...]
    snippet: str = ""  # the text's opening, enough to answer without opening the page

    def as_dict(self) -> dict:
        return {"id": self.id, "url": self.url, "title": self.title, "site": self.site, "score": self.score,
                "threshold": self.threshold, "kept": self.kept, "terms": list(self.terms), "snippet": self.snippet}


SNIPPET_CHARS = 220  # about two lines


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The opening of a text on one line, cut at a word, with an ellipsis when cut."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + " …"


@dataclass
class Applied:
    """What applying verdicts (or a rescore) did to the corpus folder."""

    added: list[str] = field(default_factory=list)  # corpus paths that joined
    restored: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # judged relevant, but the story is already stored
    missing: list[str] = field(default_factory=list)  # judged relevant, but the text is no longer kept
    judged: int = 0  # verdicts applied (one that agrees with the model changes no file, but teaches it)


def page_ref(page_id: int) -> str:
    return f"p{page_id}"


def resolve(store: SqlStore, ref: str) -> Record:
    """The page row an id from `review` (p123), an article id (a45) or a page URL names."""
    m = re.fullmatch(r"\s*([pa]?)(\d+)\s*", ref)
    row = None
    if m and m.group(1) == "a":
        row = store.article_page(int(m.group(2)))
    elif m:
        row = store.page_by_id(int(m.group(2)))
    elif ref.startswith(("http://", "https://")):
        row = store.page(normalize(ref)) or store.page(ref)
        if row is None:
            found = store.article_by_url(ref, normalize(ref))
            if found is not None:
                row = resolve(store, f"a{found}")
    if row is None:
        raise FeedbackError(f"{ref}: no such page or article in the store (use an id from `ingest review`, "
                            f"an article id such as a12, or the page's URL)")
    if row["outcome"] not in ("kept", "rejected", "duplicate") or (row["outcome"] == "duplicate" and
                                                                    row["article_id"] is None):
        raise FeedbackError(f"{ref}: the page was not scored ({row['outcome']}: {row['reason']}); "
                            f"only kept and rejected pages can be judged")
    return row


# -- the model over the store's window ------------------------------------------

def window_stream(store: SqlStore) -> tuple[list[int], list[bytes], list[bool | None]]:
    """The model's window as stored: page ids, packed term counts, the user's verdicts on them."""
    window = store.stream()
    verdicts = store.verdicts()
    return [pid for pid, _ in window], [b for _, b in window], [verdicts.get(pid) for pid, _ in window]


def review_item(store: SqlStore, row: Record, score: float, threshold: float, terms: Sequence[str]) -> ReviewItem:
    kept = False
    title = row["title"] or ""
    doc = store.page_doc(row)
    site = site_of(doc.site if doc is not None else "", row["final_url"] or row["url"])
    if row["article_id"] is not None:
        art = store.article(row["article_id"])
        kept = art["withdrawn"] is None
        title = art["title"]
        site = site_of(art["site"], art["url"])
    return ReviewItem(page_ref(row["id"]), display(row["final_url"] or row["url"]), title, site, round(score, 6),
                      round(threshold, 6), kept, tuple(terms), snippet(doc.text) if doc is not None else "")


def own_thresholds(store: SqlStore, config: Config, ids: Sequence[int]) -> dict[int, float]:
    """Page id -> the threshold its [[feeds]] tables set (the lowest of them), for the pages that have one."""
    by_feed = {f.id: own.threshold for f in store.feeds(active_only=False)
               if (own := config.feed(f.config_url)) is not None and own.threshold is not None}
    if not by_feed or not ids:
        return {}
    out = {}
    for pid, feed_ids in store.feeds_of_pages(ids).items():
        mine = [t for fid in feed_ids if (t := by_feed.get(fid)) is not None]
        if mine:
            out[pid] = min(mine)
    return out


def page_thresholds(ids: Sequence[int], threshold: float, own: Mapping[int, float]) -> list[float]:
    """The threshold that applies to each page: the model's, or its feeds' own (ingest.judge.decide)."""
    return [effective_threshold(threshold, [own[pid]]) if pid in own else threshold for pid in ids]


def pick_review(store: SqlStore, ids: Sequence[int], scored: Scored, limit: int,
                own: Mapping[int, float] | None = None) -> list[ReviewItem]:
    """The unjudged kept or rejected pages nearest the threshold that applies to them, alternately
    above and below it."""
    if not ids:
        return []
    judged = store.verdicts()
    rows = store.pages_by_ids(ids)
    skip = {i for i, pid in enumerate(ids) if pid in judged or pid not in rows or
            rows[pid]["outcome"] not in ("kept", "rejected")}
    ths = page_thresholds(ids, scored.threshold.value, own or {})
    picks = borderline([s.score for s in scored.scores], scored.threshold.value, skip, limit, ths)
    return [review_item(store, rows[ids[i]], scored.scores[i].score, ths[i], scored.scores[i].terms) for i in picks]


def review(store: SqlStore, seeds: Sequence[str], config: Config, limit: int = 10) -> list[ReviewItem]:
    ids, window, labels = window_stream(store)
    scored = score_packed(seeds, window, labels, config.relevance.language, config.relevance.threshold)
    return pick_review(store, ids, scored, limit, own_thresholds(store, config, ids))


# -- verdicts ---------------------------------------------------------------------

def mark(store: SqlStore, refs: Sequence[str], relevant: bool, now: float) -> list[Record]:
    """Record the user's verdict on each page (all or nothing: every ref is checked first), with the
    model's decision on it, which the verdict judges (ingest.judge.quality)."""
    rows = [resolve(store, ref) for ref in refs]
    for row in rows:
        counts = None
        if not store.in_stream(row["id"]):  # an older page: back into the window, so the verdict teaches
            doc = store.page_doc(row)
            counts = term_counts(corpus_text(doc.title, doc.text)) if doc else None
        store.set_verdict(row["id"], row["final_url"] or row["url"], relevant, now, counts, _decision(store, row))
    return rows


def _decision(store: SqlStore, row: Record) -> str:
    """The model's decision on a page: kept while its article is in the corpus (or was taken out by a
    rescore, i.e. by the model: then rejected), else rejected."""
    art = store.article(row["article_id"]) if row["article_id"] is not None else None
    if art is not None and art["withdrawn"] is None:
        return "kept"
    return "rejected"


MODEL_META = "model"  # the meta key of the last model's report, written by ingest.run.model_keeper


def model_report(store: SqlStore) -> ModelReport:
    """The last model learned (as the process that learned it recorded it), the verdicts so far,
    and precision and recall estimated from them."""
    raw = store.get_meta(MODEL_META)
    m = json.loads(raw) if raw else {}
    window, relevant, irrelevant, _ = store.learning_counts()
    outcomes = store.verdict_outcomes()
    precision, recall = estimates(outcomes)
    tp, fp, fn = judged_counts(outcomes)
    return ModelReport(m.get("learned"), int(m.get("pages", window)), m.get("model", "none"), m.get("threshold"),
                       float(m.get("share", 0.0)), float(m.get("separation", 1.0)), tuple(m.get("warnings", ())),
                       relevant, irrelevant, precision, recall, tp + fp, tp + fn)


def apply_verdicts(store: SqlStore, now: float) -> Applied:
    """Make the corpus folder follow the verdicts not yet applied (the store's writer only)."""
    done = Applied()
    for v in store.pending_verdicts():
        row = store.page_by_id(v["page_id"])
        if row is not None:
            _follow(store, row, v["verdict"] == "relevant", "user", now, done)
        store.verdict_applied(v["id"], now)
        done.judged += 1
    return done


def _follow(store: SqlStore, row: Record, relevant: bool, by: str, now: float, done: Applied) -> None:
    art = store.article(row["article_id"]) if row["article_id"] is not None else None
    if not relevant:
        if art is not None and art["withdrawn"] is None:  # kept, or a copy of it: the story leaves
            store.withdraw_article(art["id"], by, now)
            done.withdrawn.append(art["path"])
        elif art is not None and art["withdrawn_by"] == "rescore" and by == "user":  # dropped/ -> withdrawn/
            store.withdraw_article(art["id"], by, now)
        return
    if art is not None:
        if art["withdrawn"] is not None:
            store.restore_article(art["id"])
            done.restored.append(art["path"])
        return
    doc = store.page_doc(row)
    if doc is None:
        done.missing.append(row["url"])
        return
    promote(store, row, doc, now, done)


def promote(store: SqlStore, row: Record, doc: PageDoc, now: float, done: Applied) -> None:
    """A rejected page joins the corpus, unless its story is already there (then it is a duplicate of it)."""
    from ingest.judge.identity import identify

    minhash = signature(doc.text)
    ident = identify(store, doc.text, doc.text_hash, doc.canonical_url, normalize(doc.url), minhash)
    existing = ident.article_id
    sources = store.page_sources(row["id"])
    if existing is not None:
        store.record_page(row["url"], sources, now, outcome="duplicate", final_url=row["final_url"],
                          article_id=existing, score=row["score"], reason="judged relevant; same story as "
                          f"article {existing}")
        done.duplicates.append(row["url"])
        art = store.article(existing)
        if art["withdrawn"] is not None:
            store.restore_article(existing)
            done.restored.append(art["path"])
        return
    new = NewArticle(url=doc.url, canonical_url=ident.key, title=doc.title, author=doc.author,
                     site=doc.site, language=doc.language, published=doc.published, text=doc.text,
                     text_hash=doc.text_hash, score=row["score"] or 0.0, threshold=row["threshold"] or 0.0,
                     terms=tuple(json.loads(row["terms"] or "[]")), minhash=minhash)
    _, path = store.add_article(new, row["url"], sources, now, row["final_url"])
    done.added.append(path)


@dataclass(frozen=True)
class Preview:
    """How many unjudged pages of the window the model, learned again now, would decide otherwise."""

    join: int  # rejected now, would be kept
    leave: int  # kept now, would be rejected
    joining: tuple[tuple[str, float, tuple[str, ...]], ...] = ()  # (title, score, terms) of those that would join

    def __bool__(self) -> bool:
        return bool(self.join or self.leave)

    def sentence(self) -> str:
        return (f"with your verdicts the model would now decide {self.join + self.leave} other page(s) "
                f"differently ({self.join} would join the corpus, {self.leave} would leave it): "
                f"`ingest rescore --apply` applies that")


def preview(store: SqlStore, seeds: Sequence[str], config: Config) -> Preview:
    """Learn the model from the window and the verdicts as they are now, and count the unjudged pages
    whose decision it would change (what `rescore --apply` would do to the window)."""
    ids, window, labels = window_stream(store)
    if not ids:
        return Preview(0, 0)
    return count_changes(store, ids, labels,
                         score_packed(seeds, window, labels, config.relevance.language, config.relevance.threshold),
                         own_thresholds(store, config, ids))


def count_changes(store: SqlStore, ids: Sequence[int], labels: Sequence[bool | None], scored: Scored,
                  own: Mapping[int, float] | None = None) -> Preview:
    """The unjudged pages of the window whose decision ``scored`` (the window's scores) would change,
    each against the threshold that applies to it."""
    ths = page_thresholds(ids, scored.threshold.value, own or {})
    rows = store.pages_by_ids([pid for pid, v in zip(ids, labels, strict=True) if v is None])
    join = leave = 0
    joining = []
    for pid, s, th in zip(ids, scored.scores, ths, strict=True):
        row = rows.get(pid)
        if row is None or row["outcome"] not in ("kept", "rejected"):
            continue
        kept = _decision(store, row) == "kept"
        if not kept and s.score >= th:
            join += 1
            joining.append((row["title"] or display(row["final_url"] or row["url"]), s.score, s.terms))
        leave += kept and s.score < th
    joining.sort(key=lambda j: -j[1])
    return Preview(join, leave, tuple(joining))


# -- seeds ----------------------------------------------------------------------------

def add_seed(store: SqlStore | None, config: Config, ref: str, now: float) -> tuple[Path, Record | None]:
    """Write an article (id or URL) or a text file into the seeds folder as ``NNN_<hex>.txt``.
    Returns the new file and, for an article, its page row (the caller records it as relevant)."""
    folder = config.paths.seeds
    path = Path(ref)
    row = None
    if path.is_file():
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise FeedbackError(f"{ref}: cannot read as UTF-8 text: {exc}") from None
        text = text.strip() + "\n"
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    else:
        if store is None:
            raise FeedbackError(f"{ref}: no such file, and no store to look the id up in")
        row = resolve(store, ref)
        doc = store.page_doc(row)
        if doc is None:
            raise FeedbackError(f"{ref}: the page's text is no longer kept ([relevance] keep_rejected)")
        text = corpus_text(doc.title, doc.text)
        key = url_hash(doc.canonical_url)
    if len(text.split()) < MIN_SEED_WORDS:
        raise FeedbackError(f"{ref}: fewer than {MIN_SEED_WORDS} words; a seed should be a whole article")
    folder.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in folder.iterdir() if p.is_file()]
    if any(n.endswith(f"_{key}.txt") for n in names):
        raise FeedbackError(f"{ref}: already a seed ({next(n for n in names if n.endswith(f'_{key}.txt'))})")
    numbers = [int(m.group(1)) for n in names if (m := re.match(r"(\d+)_", n))]
    final = folder / f"{max(numbers, default=-1) + 1:03d}_{key}.txt"
    tmp = folder / f".tmp-{final.name}"
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(final)
    try:
        load_seeds(folder)
    except SeedError as exc:  # never leave the folder unusable
        final.unlink(missing_ok=True)
        raise FeedbackError(str(exc)) from None
    return final, row
