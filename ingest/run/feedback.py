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
* ``rescore`` re-decides recent pages with the current seeds and verdicts:
  by itself a preview that changes nothing and lists what would join and
  leave the corpus; with ``apply`` it does both.
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
from ingest.judge.relevance import Score, Scored, TermStats, borderline, score_stream
from ingest.judge.scoring import score_packed
from ingest.sources.urls import display, normalize, site_label, url_hash
from ingest.store import NewArticle, PageDoc, SqlStore, corpus_text, unpack
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


@dataclass
class RescoreReport:
    pages: int = 0  # pages re-decided
    without_text: int = 0  # rejected pages whose text has expired (keep_rejected)
    threshold: float | None = None
    applied: Applied = field(default_factory=Applied)
    above: list[ReviewItem] = field(default_factory=list)  # pages not in the corpus that now pass: they join
    below: list[ReviewItem] = field(default_factory=list)  # kept articles that now fall below: they leave


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


def _item(store: SqlStore, row: Record, score: float, threshold: float, terms: Sequence[str]) -> ReviewItem:
    kept = False
    title = row["title"] or ""
    site = site_label(row["final_url"] or row["url"])  # the host alone, as every output labels a site
    if row["article_id"] is not None:
        art = store.article(row["article_id"])
        kept = art["withdrawn"] is None
        title = art["title"]
    doc = store.page_doc(row)
    return ReviewItem(page_ref(row["id"]), display(row["final_url"] or row["url"]), title, site, round(score, 6),
                      round(threshold, 6), kept, tuple(terms), snippet(doc.text) if doc is not None else "")


def pick_review(store: SqlStore, ids: Sequence[int], scored: Scored, limit: int) -> list[ReviewItem]:
    """The unjudged kept or rejected pages nearest the threshold, alternately above and below it."""
    if not ids:
        return []
    judged = store.verdicts()
    rows = store.pages_by_ids(ids)
    skip = {i for i, pid in enumerate(ids) if pid in judged or pid not in rows or
            rows[pid]["outcome"] not in ("kept", "rejected")}
    th = scored.threshold.value
    picks = borderline([s.score for s in scored.scores], th, skip, limit)
    return [_item(store, rows[ids[i]], scored.scores[i].score, th, scored.scores[i].terms) for i in picks]


def review(store: SqlStore, seeds: Sequence[str], config: Config, limit: int = 10) -> list[ReviewItem]:
    ids, window, labels = window_stream(store)
    scored = score_packed(seeds, window, labels, config.relevance.language, config.relevance.threshold)
    return pick_review(store, ids, scored, limit)


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
    _promote(store, row, doc, now, done)


def _promote(store: SqlStore, row: Record, doc: PageDoc, now: float, done: Applied) -> None:
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
                         score_packed(seeds, window, labels, config.relevance.language, config.relevance.threshold))


def count_changes(store: SqlStore, ids: Sequence[int], labels: Sequence[bool | None], scored: Scored) -> Preview:
    """The unjudged pages of the window whose decision ``scored`` (the window's scores) would change."""
    th = scored.threshold.value
    rows = store.pages_by_ids([pid for pid, v in zip(ids, labels, strict=True) if v is None])
    join = leave = 0
    joining = []
    for pid, s in zip(ids, scored.scores, strict=True):
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


# -- rescore ------------------------------------------------------------------------

@dataclass
class RescorePlan:
    """What a rescore reads from the store (phase 1); scoring it (phase 2) needs no store."""

    rows: list[Record]
    docs: dict[int, PageDoc]
    window_ids: list[int]
    window: list[bytes]
    verdicts: dict[int, bool]

    def stream(self) -> tuple[list[int], list[bytes], list[str]]:
        """(page ids, packed counts of the window, texts of the rescored pages outside the window)."""
        ids = list(self.window_ids)
        inside = set(ids)
        texts = []
        for pid, doc in self.docs.items():
            if pid not in inside:
                ids.append(pid)
                texts.append(corpus_text(doc.title, doc.text))
        return ids, self.window, texts


def plan_rescore(store: SqlStore, since: float) -> RescorePlan:
    rows = store.pages_since(since)
    docs = {}
    for row in rows:
        doc = store.page_doc(row)
        if doc is not None:
            docs[row["id"]] = doc
    window = store.stream()
    return RescorePlan(rows, docs, [pid for pid, _ in window], [b for _, b in window], store.verdicts())


def score_rescore(seeds: Sequence[str], ids: Sequence[int], window: Sequence[bytes], texts: Sequence[str],
                  verdicts: dict[int, bool], language: str, fixed: float | None) -> Scored:
    """Phase 2, pure CPU (a worker process in the service): the window plus the rescored texts."""
    counts = [unpack(b) for b in window] + [term_counts(t) for t in texts]
    return score_stream(seeds, counts, [verdicts.get(pid) for pid in ids], stats=TermStats(language), fixed=fixed)


def apply_rescore(store: SqlStore, plan: RescorePlan, ids: Sequence[int], scored: Scored, now: float,
                  apply: bool = False) -> RescoreReport:
    """Phase 3: pages that now pass join the corpus (or come back to it, when an earlier rescore took
    them out), kept articles that now fall below leave it; without ``apply`` both are only listed
    (a preview). User verdicts always stand; each change is its own transaction."""
    report = RescoreReport(without_text=len(plan.rows) - len(plan.docs))
    th = scored.threshold.value
    report.threshold = th
    pos = {pid: i for i, pid in enumerate(ids)}
    verdicts = store.verdicts()  # fresh: a verdict given while scoring wins
    for row in plan.rows:
        if row["id"] not in plan.docs:
            continue
        report.pages += 1
        s = scored.scores[pos[row["id"]]]
        verdict = verdicts.get(row["id"])
        row = store.page_by_id(row["id"]) or row  # as it is now
        art = store.article(row["article_id"]) if row["article_id"] is not None else None
        if s.score >= th and verdict is not False:
            joins = (art is None and row["outcome"] == "rejected") or (art is not None and
                                                                         art["withdrawn_by"] == "rescore")
            if joins:
                report.above.append(_item(store, row, s.score, th, s.terms))
            if joins and apply and art is None:
                _promote(store, row, plan.docs[row["id"]], now, report.applied)
            elif joins and apply and art is not None:
                store.restore_article(art["id"])
                report.applied.restored.append(art["path"])
        elif s.score < th and verdict is not True and art is not None and art["withdrawn"] is None \
                and row["outcome"] == "kept":
            report.below.append(_item(store, row, s.score, th, s.terms))
            if apply:
                store.withdraw_article(art["id"], "rescore", now)
                report.applied.withdrawn.append(art["path"])
    return report


RESCORE_REQUEST = "rescore_request"  # meta: `ingest rescore --apply` asks the running service to do it
RESCORE_RESULT = "rescore_result"  # meta: the service's answer, with the request's id


def report_dict(report: RescoreReport, applied: bool) -> dict:
    """The report as `rescore --json` prints it (and as the service answers a request)."""
    a = report.applied
    return {"pages": report.pages, "without_text": report.without_text, "applied": applied,
            "threshold": report.threshold, "added": a.added, "restored": a.restored, "withdrawn": a.withdrawn,
            "duplicates": a.duplicates, "join": [it.as_dict() for it in report.above],
            "leave": [it.as_dict() for it in report.below], "below": [it.as_dict() for it in report.below]}


def rescore(store: SqlStore, seeds: Sequence[str], config: Config, since: float, now: float,
            apply: bool = False) -> RescoreReport:
    """Re-decide the kept and rejected pages fetched since ``since`` (all three phases, in this process)."""
    plan = plan_rescore(store, since)
    ids, window, texts = plan.stream()
    scored = score_rescore(seeds, ids, window, texts, plan.verdicts, config.relevance.language,
                           config.relevance.threshold)
    return apply_rescore(store, plan, ids, scored, now, apply)


def redecide(store: SqlStore, ids: Sequence[int], scores: Sequence[Score], threshold: float, now: float,
             own: Mapping[int, float | None] | None = None) -> Applied:
    """Re-decide the window's provisional pages (decided by a model that had learned from too few
    pages, ingest.run.model_keeper) with a better model: a rejected page that now passes joins the
    corpus, a kept article that now falls below leaves it (withdrawn by "rescore", so it comes back
    if a later model keeps it again). Pages the user judged are never re-decided. Each change is
    its own transaction; the store's writer only (one process, or under the story's lock). ``own``:
    the [[feeds]] tables' own thresholds by feed id, applied as a poll applies them."""
    done = Applied()
    own = {fid: t for fid, t in (own or {}).items() if t is not None}
    verdicts = store.verdicts()
    rows = store.pages_by_ids([pid for pid in ids if pid not in verdicts])
    for pid, s in zip(ids, scores, strict=True):
        row = rows.get(pid)
        if row is None or row["outcome"] not in ("kept", "rejected"):
            continue
        th = threshold
        if own:  # a feed the user trusts more keeps more of its pages (ingest.judge.decide)
            th = effective_threshold(threshold, [own.get(src.feed_id) for src in store.page_sources(pid)])
        keep = s.score >= th
        art = store.article(row["article_id"]) if row["article_id"] is not None else None
        if keep and art is None and row["outcome"] == "rejected":
            doc = store.page_doc(row)
            if doc is not None:
                with store.exclusive([f"url:{normalize(doc.url)}", f"text:{doc.text_hash}"]):
                    if (store.page_by_id(pid) or row)["outcome"] == "rejected":  # another worker may have
                        _promote(store, row, doc, now, done)
        elif keep and art is not None and art["withdrawn_by"] == "rescore":
            store.restore_article(art["id"])
            done.restored.append(art["path"])
        elif not keep and art is not None and art["withdrawn"] is None and row["outcome"] == "kept":
            store.withdraw_article(art["id"], "rescore", now)
            done.withdrawn.append(art["path"])
    return done


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
