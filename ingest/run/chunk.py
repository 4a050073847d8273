"""Deciding a chunk of a poll's pages: score them against the seeds (with the process's model,
ingest.run.model_keeper, in a worker process), then decide and commit each page in the store's
thread: a deferral, a skip, an update in place, a duplicate of a stored story, a
rejection, or a new article. No await between the decisions of a chunk, so overlapping polls
never interleave their writes."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest.config import Config, FeedSettings
from ingest.judge.decide import Deferred, Outcome, Refresh, Skipped, effective_threshold, leaders, refresh, relevance
from ingest.judge.identity import identify
from ingest.judge.relevance import Score, Scored, Threshold
from ingest.judge.scoring import score_packed
from ingest.run.feedback import window_stream
from ingest.run.model_keeper import ModelKeeper
from ingest.run.page_fetch import PageJob, PageResult
from ingest.run.progress import ProgressHook
from ingest.run.summary import PollSummary
from ingest.sources.urls import display, normalize, site_label
from ingest.store import Decision, NewArticle, PageDoc, SqlStore, StoreThread
from ingest.text.analysis import Analysed
from ingest.text.fingerprint import band_keys
from ingest.text.terms import term_counts

log = logging.getLogger("ingest")


@dataclass(frozen=True)
class Alert:
    """A kept article scoring above [notify] instant_above: sent at once (ingest.out.notify)."""

    title: str
    url: str  # as displayed (no credentials)
    site: str
    score: float
    terms: tuple[str, ...]


@dataclass
class Decided:
    """What deciding a chunk did: its counts, the feeds with a page to try again, the alerts."""

    summary: PollSummary = field(default_factory=PollSummary)
    retry_feeds: set[int] = field(default_factory=set)
    alerts: list[Alert] = field(default_factory=list)


class ChunkDecider:
    def __init__(self, config: Config, store: SqlStore, seeds: Sequence[str], keeper: ModelKeeper, db: StoreThread,
                 *, clock: Callable[[], float], settings: dict[int, FeedSettings | None],
                 warned: set[str], progress: ProgressHook | None = None) -> None:
        self.config, self.store, self.seeds, self.keeper, self.db = config, store, list(seeds), keeper, db
        self.clock, self.settings, self.warned, self.progress = clock, settings, warned, progress

    async def settle(self) -> PollSummary:
        """The poll's last word (ModelKeeper.settle): its provisional decisions re-made by a model that has
        seen all its pages."""
        own = {fid: st.threshold for fid, st in self.settings.items() if st is not None}
        applied = await self.keeper.settle(self.db, self.store, self.seeds, self.config.relevance, own)
        out = PollSummary()
        out.redecided_kept = len(applied.added) + len(applied.restored)
        out.redecided_withdrawn = len(applied.withdrawn)
        return out

    async def decide(self, chunk: Sequence[tuple[PageJob, PageResult]]) -> Decided:
        """Decide the chunk's pages in order, in segments: each segment holds no more new pages than the
        model may still decide before it is due to be learned again (ModelKeeper.current), so where
        the model changes depends on the pages, never on where the poll cut its chunks."""
        out = Decided()
        rest = list(chunk)
        while rest:
            own = {fid: st.threshold for fid, st in self.settings.items() if st is not None}
            model, room, applied = await self.keeper.current(self.db, self.store, self.seeds,
                                                             self.config.relevance, own)
            out.summary.redecided_kept += len(applied.added) + len(applied.restored)
            out.summary.redecided_withdrawn += len(applied.withdrawn)
            for w in model.threshold.warnings:
                if w not in out.summary.warnings:
                    out.summary.warnings.append(w)
                if w not in self.warned:
                    self.warned.add(w)
                    log.warning("event=seeds_warning reason=%r", w)
            segment: list[tuple[PageJob, PageResult]] = []
            analysed: list[Analysed] = []
            while rest and (len(analysed) < room or not isinstance(rest[0][1], Analysed)):
                item = rest.pop(0)
                segment.append(item)
                if isinstance(item[1], Analysed):
                    analysed.append(item[1])
            scores = await self.keeper.score(model, [a.counts for a in analysed])
            by_page = {id(a): sc for a, sc in zip(analysed, scores, strict=True)}
            await self.db(self._store_pages, segment, (by_page, model.threshold), out)
        return out

    def _store_pages(self, done: Sequence[tuple[PageJob, PageResult]],
                     scored: tuple[dict[int, Score], Threshold | None], out: Decided) -> None:
        """In the store's thread: record the decisions, then archive the pages' exchanges (a record is
        indexed only once its bytes are written: a kill in between leaves a page without a record, never
        an index row pointing at a partial one)."""
        self._decide_pages(done, scored, out)
        if self.config.archive.enabled:
            self._archive(done)

    def _archive(self, done: Sequence[tuple[PageJob, PageResult]]) -> None:
        writer = self.store.archive_writer(self.config.archive.max_file_size)
        jobs = [job for job, _ in done if job.warc is not None]
        rows = self.store.pages_by_urls([job.key for job in jobs]) if jobs else {}
        records = []
        for job in jobs:
            row = rows.get(job.key)
            if row is not None and row["outcome"] in ("kept", "duplicate", "rejected") and job.warc is not None:
                kind = "rejected" if row["outcome"] == "rejected" else "kept"
                records.append((row["id"], writer.append(job.warc, kind), kind))
            job.warc = None  # written: not held until the poll ends
        self.store.index_records(records)  # one transaction for the chunk, after every record is written

    def _decide_pages(self, done: Sequence[tuple[PageJob, PageResult]],
                      scored: tuple[dict[int, Score], Threshold | None], out: Decided) -> None:
        store, now, count = self.store, self.clock(), out.summary
        scores, threshold = scored
        batch: list[tuple[PageJob, Analysed]] = []
        for job, result in done:
            if isinstance(result, Deferred):
                if store.defer_page(job.key, job.link, job.sources, now, result.until, result.reason):
                    count.deferred += 1
                    log.info("page=%s event=page_deferred until=%s reason=%r", job.link,
                             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.until)), result.reason)
                else:
                    count.page_errors += 1
                    log.warning("page=%s event=page_given_up reason=%r", job.link, result.reason)
                continue
            if isinstance(result, Skipped):
                outcome = result.outcome
                count.page_errors += outcome is Outcome.ERROR
                count.empty += outcome is Outcome.EMPTY
                count.blocked += outcome is Outcome.BLOCKED
                log.info("page=%s event=page_%s reason=%r", job.link, outcome.value, result.reason)
                if outcome is Outcome.ERROR:
                    out.retry_feeds |= job.feed_ids
                store.record_page(job.key, job.sources, now, outcome=outcome.value, reason=result.reason,
                                  final_url=result.final_url)
                continue
            if job.refresh:
                known = store.page(job.key)
                if known is not None and known["article_id"] is not None and known["outcome"] == "kept" and \
                        self._refresh(job, result, known["article_id"], now, count):
                    continue
            batch.append((job, result))
        if not batch:
            return
        assert threshold is not None
        count.threshold = threshold.value
        # exact copies inside the chunk: one leads, the others follow it (URL evidence alone merges nothing)
        follows = leaders([a.text_hash for _, a in batch])
        article_ids: dict[int, int | None] = {}
        for i, ((job, a), lead) in enumerate(zip(batch, follows, strict=True)):
            if lead is None:
                # other workers may be deciding the same story right now: the check and the insert hold
                # its identities (URLs, text hash, LSH bands) so only one of them keeps it (one writer: no-op)
                with store.exclusive(story_keys(a)):
                    article_ids[i] = self._decide(job, a, scores[id(a)], threshold, now, out)
                continue
            count.duplicates += 1
            store.record_page(job.key, job.sources, now, outcome=Outcome.DUPLICATE.value, final_url=a.page.url,
                              article_id=article_ids.get(lead), reason="same article as another page of this poll")

    def _refresh(self, job: PageJob, a: Analysed, article_id: int, now: float, count: PollSummary) -> bool:
        """A known article fetched again because its entry was updated. An edit of the same story
        replaces the text in place; another story (the page now says something else) is not an
        update: returns False and the page is decided as a new one."""
        stored = self.store.article(article_id)
        same = stored["text_hash"] == a.text_hash
        kind = refresh(stored["text_hash"], None if same else self.store.article_text(article_id), a.text_hash,
                       a.text)
        if kind is Refresh.SAME:
            self.store.record_entries(job.sources, None, now, article_id)  # remember the new updated date
            return True
        if kind is Refresh.OTHER_STORY:
            log.info("page=%s event=update_is_another_story article=%d", job.link, article_id)
            return False
        path = self.store.update_article(article_id, a.title, a.text, a.text_hash, a.minhash, job.key, job.sources,
                                         now)
        count.updated += 1
        log.info("page=%s event=updated path=%s", job.link, path)
        return True

    def _decide(self, job: PageJob, a: Analysed, score: Score, threshold: Threshold, now: float,
                out: Decided) -> int | None:
        count, title, text = out.summary, a.title, a.text
        # the same story as a stored article (same text, a declared URL whose text agrees, a near copy)?
        ident = identify(self.store, text, a.text_hash, a.page.canonical_url, normalize(a.page.url), a.minhash)
        if ident.article_id is not None:
            count.duplicates += 1
            self.store.record_page(job.key, job.sources, now, outcome="duplicate", final_url=a.page.url,
                                   article_id=ident.article_id, score=score.score, reason=ident.reason)
            log.info("page=%s event=duplicate article=%d reason=%r", job.link, ident.article_id, ident.reason)
            return ident.article_id
        published = a.page.date or next((s.published for s in job.sources if s.published), None) or job.published
        value = effective_threshold(threshold.value, [own.threshold if (own := self.settings.get(fid)) else None
                                                      for fid in job.feed_ids])
        if value != threshold.value:
            threshold = dataclasses.replace(threshold, value=value)
        if relevance(score.score, threshold.value, ident.article_id) is Outcome.REJECTED:
            count.rejected += 1
            doc = PageDoc(url=a.page.url, canonical_url=a.page.canonical_url, title=title, text=text,
                          author=a.page.author, site=a.page.site, language=a.page.language, published=published,
                          text_hash=a.text_hash)
            self.store.record_page(job.key, job.sources, now, outcome="rejected", final_url=a.page.url,
                                   score=score.score, counts=a.counts if job.window else None, doc=doc,
                                   decision=Decision(threshold.value, score.terms),
                                   reason=f"score {score.score:.3f} < threshold {threshold.value:.3f}")
            log.debug("page=%s event=rejected score=%.3f threshold=%.3f terms=%s", job.link, score.score,
                      threshold.value, ",".join(score.terms[:5]))
            return None
        art = NewArticle(url=a.page.url, canonical_url=ident.key, title=title, author=a.page.author,
                         site=a.page.site, language=a.page.language, published=published,
                         text=text, text_hash=a.text_hash, score=score.score, threshold=threshold.value,
                         terms=score.terms, minhash=a.minhash)
        aid, path = self.store.add_article(art, job.key, job.sources, now, a.page.url,
                                           counts=a.counts if job.window else None)
        count.kept += 1
        if self.progress is not None:
            self.progress.kept()
        above = self.config.notify.instant_above
        if above is not None and score.score > above:
            out.alerts.append(Alert(title, display(a.page.url), site_label(a.page.url), score.score,
                                    tuple(score.terms)))
        log.info("page=%s event=kept score=%.3f threshold=%.3f path=%s terms=%s", job.link, score.score,
                 threshold.value, path, ",".join(score.terms[:5]))
        return aid


def story_keys(a: Analysed) -> list[str]:
    """What identifies a page's story for the near-duplicate check: URLs, text hash, LSH bands."""
    keys = [f"url:{normalize(a.page.url)}", f"text:{a.text_hash}"]
    if a.page.canonical_url:
        keys.append(f"url:{normalize(a.page.canonical_url)}")
    if a.minhash is not None:
        keys += [f"band:{k}" for k in band_keys(a.minhash)]
    return keys


def score_texts(config: Config, store: SqlStore, seeds: Sequence[str], texts: Sequence[str]) -> Scored:
    """Score texts as a poll of them on this store would end: with the model learned from the store's
    window *and* these texts (a poll's last model has seen its pages, and re-decides the ones it decided
    provisionally). Scoring them with the window's model alone never learned from them: on a fresh
    store, held-out topics lost half their F1 (bench/relevance.py --score-command)."""
    _, window, labels = window_stream(store)
    counts = [term_counts(t) for t in texts]
    scored = score_packed(seeds, window, labels, config.relevance.language, config.relevance.threshold, counts)
    return Scored(scored.scores[len(window):], scored.threshold)
