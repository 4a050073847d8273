"""The relevance loop through the real path, for bench/relevance.py --feedback.

A stream of texts arrives in order and is decided by `ingest poll`'s own
stages (ingest.run.chunk.ChunkDecider with the process's ModelKeeper) on a
real SQLite store in a temporary folder, in chunks of 256 as a poll commits
them. Then a user works the loop: `review` (ingest.run.feedback.review) names
5 pages, the user gives each its true verdict (`mark`, applied at once as the
CLI does), and every 10 verdicts `rescore --apply` re-decides the window.
Measured: F1 of the corpus (a page counts as kept when its story is in the
corpus folder) on the pages never judged, label-free and after each step.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ingest.config import load_config
from ingest.run.chunk import ChunkDecider
from ingest.run.feedback import apply_verdicts, mark, review
from ingest.run.model_keeper import ModelKeeper
from ingest.run.page_fetch import PageJob
from ingest.run.rescore import rescore
from ingest.store import Source, StoreThread, open_store
from ingest.text.analysis import analyse

STEPS = (0, 10, 20, 40)
logging.getLogger("ingest").setLevel(logging.ERROR)  # the model's warnings, once per refit: noise here
CHUNK = 256


def _f1(kept: dict[str, bool], truth: dict[str, bool], skip: set[str]) -> float:
    tp = sum(1 for u, k in kept.items() if k and truth[u] and u not in skip)
    fp = sum(1 for u, k in kept.items() if k and not truth[u] and u not in skip)
    fn = sum(1 for u, k in kept.items() if not k and truth[u] and u not in skip)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _corpus(db_path: Path) -> dict[str, bool]:
    """Each scored page's URL -> is its story in the corpus folder now."""
    db = sqlite3.connect(db_path)
    try:
        return {url: bool(active) for url, active in db.execute(
            "SELECT p.url, a.id IS NOT NULL AND a.withdrawn IS NULL FROM pages p "
            "LEFT JOIN articles a ON a.id = p.article_id WHERE p.outcome IN ('kept', 'rejected', 'duplicate')")}
    finally:
        db.close()


@dataclass
class Curve:
    f1: dict[int, float]  # verdicts so far -> F1 of the corpus on the held-out pages
    false_joins: dict[int, int] = field(default_factory=dict)  # unrelated pages that joined in the round
    # what the round did to F1, on the same pages before and after it (those not judged by its end)
    round_change: dict[int, float] = field(default_factory=dict)


def run_loop(seed_texts: list[str], texts: list[str], truth: list[bool], steps: tuple[int, ...] = STEPS,
             rescore_every: int = 10, held_out_final: bool = False, corpus_out: dict | None = None) -> Curve:
    """F1 of the corpus on never-judged pages after each of ``steps`` verdicts (5 per round from
    `review`, `rescore --apply` after every ``rescore_every``)."""
    with tempfile.TemporaryDirectory(prefix="seed-ingest-bench-") as tmp:
        root = Path(tmp)
        (root / "seeds").mkdir()
        for i, t in enumerate(seed_texts):
            (root / "seeds" / f"{i:03d}.txt").write_text(t, encoding="utf-8")
        (root / "config.toml").write_text('[paths]\nseeds = "seeds"\nstore = "store"\n', encoding="utf-8")
        config = load_config(root / "config.toml")
        urls = [f"http://bench.example/{i}" for i in range(len(texts))]
        by_url = dict(zip(urls, truth, strict=True))
        store = open_store(config)
        db = StoreThread()
        try:
            store.sync_feeds([("http://bench.example/feed", "bench")])
            feed_id = store.feeds()[0].id

            async def poll() -> None:
                with ThreadPoolExecutor(1) as ex:
                    keeper = ModelKeeper(ex, clock=time.time)
                    decider = ChunkDecider(config, store, seed_texts, keeper, db, clock=time.time, settings={},
                                           warned=set())
                    for lo in range(0, len(texts), CHUNK):
                        chunk = []
                        for url, text in zip(urls[lo:lo + CHUNK], texts[lo:lo + CHUNK], strict=True):
                            a = analyse(text.encode("utf-8"), url, "text/plain; charset=utf-8")
                            assert a is not None
                            job = PageJob(url, url, [Source(feed_id, url, url, a.title, None)], {feed_id})
                            chunk.append((job, a))
                        await decider.decide(chunk)
                    if hasattr(decider, "settle"):  # as Poll.run ends (absent before 0.3: a baseline run)
                        await decider.settle()

            asyncio.run(poll())
        finally:
            db.close()
        snaps = {0: _corpus(store.root / "ingest.db")}
        if corpus_out is not None:
            corpus_out.update(snaps[0])
        judged_by: dict[int, set[str]] = {0: set()}
        judged: set[str] = set()
        now = time.time()
        for n in range(5, steps[-1] + 1, 5):
            items = review(store, seed_texts, config, 5)
            for it in items:
                mark(store, [it.id], by_url[it.url], now)
                judged.add(it.url)
            apply_verdicts(store, now)
            if n % rescore_every == 0:
                rescore(store, seed_texts, config, 0.0, now, apply=True)
            if n in steps:
                snaps[n] = _corpus(store.root / "ingest.db")
                judged_by[n] = set(judged)
        # held out: with ``held_out_final`` the pages never judged by the end (one set for every step, so the
        # curve compares like with like), else the pages not judged at that step
        out = Curve({n: _f1(snap, by_url, judged if held_out_final else judged_by[n]) for n, snap in snaps.items()})
        steps_seen = sorted(snaps)
        for a, b in itertools.pairwise(steps_seen):  # unrelated pages that joined between two steps
            out.false_joins[b] = sum(1 for u, k in snaps[b].items() if k and not snaps[a].get(u) and not by_url[u])
            out.round_change[b] = _f1(snaps[b], by_url, judged_by[b]) - _f1(snaps[a], by_url, judged_by[b])
        store.close()
        return out


def run_loop_corpus(seed_texts: list[str], texts: list[str], truth: list[bool]) -> dict[str, bool]:
    """The corpus a poll of ``texts`` (in this order) leaves, by page URL (bench.example/<index>)."""
    out: dict[str, bool] = {}
    run_loop(seed_texts, texts, truth, steps=(0,), corpus_out=out)
    return out
