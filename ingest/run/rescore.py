"""Re-deciding recent pages with the model learned again from the seeds and every verdict.

* ``rescore`` (the command): by itself a preview that changes nothing and lists what would join and
  leave the corpus; with ``apply`` it does both. Three phases: ``plan_rescore`` reads the store,
  ``score_rescore`` is pure CPU (a worker process in the service), ``apply_rescore`` writes.
* ``redecide``: a poll's closing re-decision of the pages a model learned from too few pages decided
  (ingest.run.model_keeper).

Each page is judged against the threshold that applies to it (a feed's own, ingest.judge.decide);
the user's verdicts always stand. Each change to the corpus is its own transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ingest.config import Config
from ingest.judge.decide import effective_threshold
from ingest.judge.relevance import Score, Scored, TermStats, score_stream
from ingest.run.feedback import Applied, ReviewItem, own_thresholds, page_thresholds, promote, review_item
from ingest.sources.urls import normalize
from ingest.store import PageDoc, SqlStore, corpus_text, unpack
from ingest.store.contract import Record
from ingest.text.terms import term_counts


@dataclass
class RescoreReport:
    pages: int = 0  # pages re-decided
    without_text: int = 0  # rejected pages whose text has expired (keep_rejected)
    threshold: float | None = None
    applied: Applied = field(default_factory=Applied)
    above: list[ReviewItem] = field(default_factory=list)  # pages not in the corpus that now pass: they join
    below: list[ReviewItem] = field(default_factory=list)  # kept articles that now fall below: they leave



@dataclass
class RescorePlan:
    """What a rescore reads from the store (phase 1); scoring it (phase 2) needs no store."""

    rows: list[Record]
    docs: dict[int, PageDoc]
    window_ids: list[int]
    window: list[bytes]
    verdicts: dict[int, bool]
    own: dict[int, float] = field(default_factory=dict)  # page id -> its feeds' own threshold

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


def plan_rescore(store: SqlStore, since: float, config: Config | None = None,
                 page_ids: Sequence[int] = ()) -> RescorePlan:
    """``config``: for the [[feeds]] tables' own thresholds (none without it). ``page_ids``: only those
    pages (their texts alone are read)."""
    rows = store.pages_since(since)
    if page_ids:
        wanted = set(page_ids)
        rows = [r for r in rows if r["id"] in wanted]
    docs = {}
    for row in rows:
        doc = store.page_doc(row)
        if doc is not None:
            docs[row["id"]] = doc
    window = store.stream()
    own = own_thresholds(store, config, [r["id"] for r in rows]) if config is not None else {}
    return RescorePlan(rows, docs, [pid for pid, _ in window], [b for _, b in window], store.verdicts(), own)


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
    model_th = scored.threshold.value
    report.threshold = model_th
    pos = {pid: i for i, pid in enumerate(ids)}
    verdicts = store.verdicts()  # fresh: a verdict given while scoring wins
    for row in plan.rows:
        if row["id"] not in plan.docs:
            continue
        report.pages += 1
        s = scored.scores[pos[row["id"]]]
        th = page_thresholds([row["id"]], model_th, plan.own)[0]
        verdict = verdicts.get(row["id"])
        row = store.page_by_id(row["id"]) or row  # as it is now
        art = store.article(row["article_id"]) if row["article_id"] is not None else None
        if s.score >= th and verdict is not False:
            joins = (art is None and row["outcome"] == "rejected") or (art is not None and
                                                                         art["withdrawn_by"] == "rescore")
            if joins:
                report.above.append(review_item(store, row, s.score, th, s.terms))
            if joins and apply and art is None:
                promote(store, row, plan.docs[row["id"]], now, report.applied)
            elif joins and apply and art is not None:
                store.restore_article(art["id"])
                report.applied.restored.append(art["path"])
        elif s.score < th and verdict is not True and art is not None and art["withdrawn"] is None \
                and row["outcome"] == "kept":
            report.below.append(review_item(store, row, s.score, th, s.terms))
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
    plan = plan_rescore(store, since, config)
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
                        promote(store, row, doc, now, done)
        elif keep and art is not None and art["withdrawn_by"] == "rescore":
            store.restore_article(art["id"])
            done.restored.append(art["path"])
        elif not keep and art is not None and art["withdrawn"] is None and row["outcome"] == "kept":
            store.withdraw_article(art["id"], "rescore", now)
            done.withdrawn.append(art["path"])
    return done
