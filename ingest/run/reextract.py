"""``ingest reextract``: extraction, relevance and story identity again, from the WARC archive alone.

The upgrade path after a trafilatura release (or other extraction settings): every archived page
(``--since``, or the pages named) is read back from its record (ingest.store.archive, one seek each;
no network request) and analysed again in the worker processes, exactly as a poll analyses a fetched
page. Where the text changed, a kept article's corpus file is rewritten in place (atomically, as an
update is) and a rejected page's stored text replaced, with their term counts in the model's window.
Then the pages are re-decided as `ingest rescore --apply` does (ingest.run.rescore): a page that now
passes joins the corpus, a kept article that now falls below leaves it; the user's verdicts stand.
``dry_run`` changes nothing and says what would change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from ingest.config import Config
from ingest.run.rescore import apply_rescore, plan_rescore, score_rescore
from ingest.store import PageDoc, SqlStore
from ingest.store.archive import RecordRef, read_record
from ingest.store.archive_index import ARCHIVE
from ingest.store.contract import Record
from ingest.text.analysis import Analysed, analyse

CHUNK = 256  # pages read and analysed at a time (spread over the worker processes)


@dataclass
class ReextractReport:
    pages: int = 0  # archived pages read again
    unreadable: int = 0  # a record that could not be read (see `ingest check`)
    empty: int = 0  # no text extracted this time (the stored text is kept)
    changed: int = 0  # texts that changed
    joined: int = 0  # pages that joined the corpus (or came back to it)
    left: int = 0  # articles that left it
    dry_run: bool = False

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _analyse_one(item: tuple[bytes, str, str]) -> Analysed | None:
    body, url, ctype = item
    return analyse(body, url, ctype)


def reextract(store: SqlStore, seeds: Sequence[str], config: Config, executor: Executor, now: float, *,
              since: float | None = None, page_ids: Sequence[int] = (), dry_run: bool = False) -> ReextractReport:
    report = ReextractReport(dry_run=dry_run)
    rows = store.archived_pages(since, page_ids)
    folder = store.root / ARCHIVE
    new_docs: dict[int, PageDoc] = {}
    new_counts: dict[int, dict[str, int]] = {}
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        items, readable = [], []
        for row in chunk:
            ref = RecordRef(row["r_file"], row["r_offset"], row["r_length"], row["r_uri"], row["r_date"],
                            row["r_digest"])
            try:
                headers, body = read_record(folder, ref)
            except (OSError, ValueError):
                report.unreadable += 1
                continue
            items.append((body, ref.uri, headers.get_header("Content-Type") or ""))
            readable.append(row)
        # in the worker processes, as a poll's extraction: spread over all of them
        analysed = list(executor.map(_analyse_one, items, chunksize=4)) if items else []
        for row, a in zip(readable, analysed, strict=True):
            report.pages += 1
            if a is None:
                report.empty += 1
                continue
            changed = _apply_text(store, row, a, now, dry_run)
            if changed is not None:
                report.changed += 1
                new_docs[row["id"]] = changed
                new_counts[row["id"]] = a.counts
    _redecide(store, seeds, config, now, since, page_ids, new_docs, new_counts, dry_run, report)
    return report


def _apply_text(store: SqlStore, row: Record, a: Analysed, now: float, dry_run: bool) -> PageDoc | None:
    """The page's new text where it differs from the stored one (written unless ``dry_run``)."""
    old = store.page_doc(row)
    if old is None or old.text_hash == a.text_hash:
        return None
    doc = dataclasses.replace(old, title=a.title or old.title, text=a.text, text_hash=a.text_hash)
    if dry_run:
        return doc
    art = store.article(row["article_id"]) if row["article_id"] is not None else None
    if row["outcome"] == "kept" and art is not None:
        store.update_article(art["id"], doc.title, doc.text, doc.text_hash, a.minhash, row["url"], [], now)
    elif row["outcome"] == "rejected":
        store.set_page_doc(row["id"], doc)
    else:
        return None  # a duplicate's text is its article's, an error page has none
    store.set_window_counts(row["id"], a.counts)
    return doc


def _redecide(store: SqlStore, seeds: Sequence[str], config: Config, now: float, since: float | None,
              page_ids: Sequence[int], docs: dict[int, PageDoc], counts: dict[int, dict[str, int]], dry_run: bool,
              report: ReextractReport) -> None:
    """Re-decide the pages read again, as `ingest rescore` does, on their texts as they are now (in a
    dry run, as they would be)."""
    from ingest.blobs import pack

    plan = plan_rescore(store, since or 0.0, config, page_ids)
    if dry_run:  # the texts a real run would have written
        plan.docs.update({k: v for k, v in docs.items() if k in plan.docs})
        plan.window = [pack(counts[pid]) if pid in counts else b for pid, b in zip(plan.window_ids, plan.window,
                                                                                  strict=True)]
    ids, window, texts = plan.stream()
    scored = score_rescore(seeds, ids, window, texts, plan.verdicts, config.relevance.language,
                           config.relevance.threshold)
    done = apply_rescore(store, plan, ids, scored, now, apply=not dry_run)
    report.joined = len(done.above)
    report.left = len(done.below)
