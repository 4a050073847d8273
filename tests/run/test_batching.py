"""A page's decision does not depend on how a poll batched it (issue 23, item 2).

The same two polls over a loopback web (first 200 pages, then 136 more) give the same corpus
whether the pages are decided in one chunk, in chunks of 50 (SQLite, in process), or by two
`ingest run` workers sharing the second poll (PostgreSQL, real subprocesses). The texts are
written so that many fall near the threshold: a model re-learned per chunk decides them
differently from one chunking to another.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ingest.config import load_config
from ingest.run.model_keeper import MATURE, REFRESH_PAGES
from ingest.run.poll import Poll
from ingest.sources.fetch import Fetcher
from ingest.store import open_store
from ingest.text.seeds import load_seeds
from tests.conftest import run_cli, write_config
from tests.e2e.test_workers import rows, start
from tests.service.test_service import wait_for
from tests.support.web import article_page, rss

pytestmark = pytest.mark.slow  # subprocesses and whole polls: left out by -m "not slow"

TOPIC = ("gold mine mining alluvial ore Hyesan Ryanggang province North Korean authorities smuggling "
         "foreign currency labour workers prosecutor state security river Amnok sand washing mineral "
         "export sanctions camp forced").split()
OTHER = ("football match league coach season recipe butter oven flour phone battery screen camera "
         "weather storm rain forecast market shares bank election parliament minister festival film "
         "music school teacher hospital doctor train station bridge road traffic holiday beach").split()
FIRST, SECOND = 200, 136
FEEDS = 8  # per poll, two hosts of four feeds each


def _article(rng: random.Random) -> tuple[str, str]:
    share = rng.random() ** 2 * 0.6  # most texts barely on topic, a few strongly: scores spread
    words = [rng.choice(TOPIC) if rng.random() < share else rng.choice(OTHER) for _ in range(rng.randint(120, 260))]
    paras = [" ".join(words[i:i + 40]).capitalize() + "." for i in range(0, len(words), 40)]
    return " ".join(words[:8]).title(), "\n\n".join(paras)


def build(web) -> tuple[list[str], list[str]]:
    """Feeds of the first poll and of the second (all listed from the start; the second poll's
    feeds are added to the config later)."""
    rng = random.Random(23)
    hosts = [web.host(n) for n in (41, 42, 43, 44)]
    feeds: list[list[str]] = [[], []]
    for poll, count, hs in ((0, FIRST, hosts[:2]), (1, SECOND, hosts[2:])):
        per_feed = count // FEEDS
        for f in range(FEEDS):
            host = hs[f % 2]
            items = []
            for i in range(per_feed):
                title, body = _article(rng)
                link = host.add(f"/p{poll}/f{f}/{i}.html", article_page(title, body))
                items.append({"title": title, "link": link, "guid": link})
            feeds[poll].append(host.add(f"/p{poll}/feed{f}.xml", rss(f"Feed {poll}-{f}", items),
                                        content_type="application/rss+xml"))
    return feeds[0], feeds[1]


def gate_second_poll(web) -> threading.Event:
    """The second poll's feeds answer only once both of its hosts have been asked: a worker holding
    one host (its fair share of two) cannot take the other, so both workers must take part however
    fast one of them is. Returns the event (set when both were asked; a timeout lets the test fail
    on the assertions instead of hanging)."""
    asked: set[str] = set()
    both = threading.Event()
    lock = threading.Lock()
    for n in (43, 44):
        host = web.host(n)
        for path, route in list(host.routes.items()):
            if not path.endswith(".xml"):
                continue

            def answer(req, route=route, host=host):
                with lock:
                    asked.add(host.base)
                    if len(asked) == 2:
                        both.set()
                both.wait(timeout=60)
                host.respond(req, 200, route.body, route.headers)

            route.handler = answer
    return both


def poll_in_process(cfg: Path, chunk: int) -> None:
    config = load_config(cfg)
    seeds = [s.text for s in load_seeds(config.paths.seeds)]

    async def go() -> None:
        store = open_store(config)
        try:
            store.sync_feeds((f.url, f.name) for f in config.feeds)
            with ThreadPoolExecutor(2) as ex:
                async with Fetcher(config.fetch) as fetcher:
                    await Poll(config, store, seeds, fetcher, ex, chunk=chunk).run()
        finally:
            store.close()
    asyncio.run(go())


def sqlite_corpus(folder: Path) -> set[str]:
    db = sqlite3.connect(folder / "store" / "ingest.db")
    try:
        return {r[0] for r in db.execute("SELECT url FROM articles WHERE withdrawn IS NULL")}
    finally:
        db.close()


def test_the_same_pages_make_the_same_corpus_however_they_are_batched(tmp_path, seeds_dir, web, pg_url):
    assert FIRST + SECOND < MATURE and min(FIRST, REFRESH_PAGES) > SECOND  # the second poll: one model
    first, second = build(web)
    corpora = []
    for chunk in (10_000, 50):
        folder = tmp_path / f"chunk{chunk}"
        folder.mkdir()
        (folder / "seeds").symlink_to(seeds_dir)
        poll_in_process(write_config(folder, first), chunk)
        poll_in_process(write_config(folder, first + second), chunk)
        corpora.append(sqlite_corpus(folder))
    one, fifty = corpora
    assert 20 < len(one) < FIRST + SECOND - 20  # a real decision: neither all nor nothing kept
    assert one == fifty

    # PostgreSQL: the first poll by `ingest poll`, the second by two workers started together
    folder = tmp_path / "pg"
    folder.mkdir()
    (folder / "seeds").symlink_to(seeds_dir)
    extra = (f'[store]\nurl = "{pg_url}"\n[web]\nlisten = ""\n'
             '[schedule]\npoll_interval = "1h"\nshutdown_timeout = "5s"\n')
    cfg = write_config(folder, first, extra)
    assert run_cli("--config", str(cfg), "feeds", "sync").code == 0
    assert run_cli("--config", str(cfg), "poll").code == 0
    cfg = write_config(folder, first + second, extra)
    both = gate_second_poll(web)
    workers = [start(cfg, folder / f"worker{i}.log") for i in (1, 2)]
    try:
        # both have learned their model from the first poll's window before the new feeds arrive
        wait_for(lambda: all("event=worker_ready" in (folder / f"worker{i}.log").read_text() for i in (1, 2)),
                 what="both workers' models")
        assert run_cli("--config", str(cfg), "feeds", "sync").code == 0
        wait_for(lambda: rows(pg_url, "SELECT COUNT(*) FROM pages WHERE outcome IN ('kept', 'rejected', "
                                      "'duplicate')")[0][0] >= FIRST + SECOND, timeout=180, what="second poll")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=60) for w in workers]
    logs = [(folder / f"worker{i}.log").read_text() for i in (1, 2)]
    assert codes == [0, 0], logs
    assert both.is_set() and all("event=hosts_leased" in log for log in logs), logs  # both took part
    pg = {r[0] for r in rows(pg_url, "SELECT url FROM articles WHERE withdrawn IS NULL")}
    assert pg == one


def test_a_young_models_decisions_are_made_again_by_the_next(tmp_path, seeds_dir, web):
    """While the window is small every model decides provisionally: after a first poll of 200 pages,
    every page is decided as the last model decides it, the early ones included (they were re-decided
    when it was learned), and the poll counted the re-decisions."""
    from ingest.blobs import unpack
    from ingest.run.model_keeper import ModelKeeper

    first, _ = build(web)
    config = load_config(write_config(tmp_path, first))
    seeds = [s.text for s in load_seeds(config.paths.seeds)]

    async def go():
        store = open_store(config)
        try:
            store.sync_feeds((f.url, f.name) for f in config.feeds)
            with ThreadPoolExecutor(2) as ex:
                keeper = ModelKeeper(ex, clock=time.time)
                async with Fetcher(config.fetch) as fetcher:
                    summary = await Poll(config, store, seeds, fetcher, ex, chunk=64, model=keeper).run()
            return summary, keeper, store.stream()
        finally:
            store.close()

    summary, keeper, window = asyncio.run(go())
    assert keeper.fits >= 3 and keeper.fitted is not None and keeper.fitted.n >= 120  # 0, 60, 120 pages
    assert summary.redecided_kept + summary.redecided_withdrawn > 0
    model = keeper.fitted.model
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    urls = dict(db.execute("SELECT id, url FROM pages"))
    db.close()
    scores = model.score([unpack(b) for _, b in window])
    decided = {urls[pid] for (pid, _), s in zip(window, scores, strict=True) if s.score >= model.threshold.value}
    assert sqlite_corpus(tmp_path) == decided
