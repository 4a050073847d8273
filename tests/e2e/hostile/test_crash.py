"""Crash safety: SIGKILL at random moments, full disks, unusable stores.

`ingest poll` runs as a subprocess against ~50 feeds and is killed with
SIGKILL at 20 random moments (fetching, extracting, committing, renaming),
restarted each time; a final clean poll must leave every article stored
exactly once, the database intact, every row with its file and every file
with its row, and no temp files.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time

from ingest.store import Store
from tests.conftest import REPO, run_cli, write_config
from tests.support.web import article_page, rss

WORDS = ("gold mine labour border river province quota state security party source report village market "
         "winter harvest railway factory school hospital soldier trader smuggler export import China "
         "currency price rice coal iron copper worker family official inspection campaign").split()


def story(rng: random.Random, n: int) -> tuple[str, str]:
    """A distinct made-up story: no two share enough text to be near-duplicates."""
    title = f"Story {n}: " + " ".join(rng.choice(WORDS) for _ in range(6))
    paras = []
    for _ in range(6):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 18))).capitalize() + "."
                     for _ in range(4)]
        paras.append(" ".join(sentences))
    return title, "\n\n".join(paras)


def build(web, n_feeds: int = 50, per_feed: int = 4) -> tuple[list[str], set[str]]:
    rng = random.Random(42)
    feeds, pages = [], set()
    for f in range(n_feeds):
        h = web.host(2 + f % 5)
        items = []
        for e in range(per_feed):
            title, body = story(rng, f * per_feed + e)
            url = h.add(f"/f{f}/{e}.html", article_page(title, body))
            pages.add(url)
            items.append({"title": title, "link": url, "guid": f"{f}-{e}"})
        feeds.append(h.add(f"/feed{f}.xml", rss(f"F{f}", items), content_type="application/rss+xml"))
    return feeds, pages


def poll(cfg, kill_after: float | None = None, **kw) -> int | None:
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "--log-level", "WARNING",
                             "poll"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    if kill_after is None:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        return proc.returncode
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if kw.get("start_new_session") else proc.kill()
    proc.wait()
    return proc.returncode


def check_store(store, expected_urls: set[str] | None = None) -> None:
    db = sqlite3.connect(store / "ingest.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT url, path FROM articles").fetchall()
    files = {f"corpus/{p.name}" for p in (store / "corpus").iterdir()}
    assert {p for _, p in rows} == files  # every row has its file, every file its row; no temp files
    assert not list((store / "digests").glob(".tmp-*")) if (store / "digests").exists() else True
    if expected_urls is not None:
        urls = [u for u, _ in rows]
        assert len(urls) == len(set(urls))  # exactly once
        assert set(urls) == expected_urls


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(web, tmp_path, seeds_dir):
    feeds, pages = build(web)
    cfg = write_config(tmp_path, feeds, "[relevance]\nthreshold = 0\n")
    # how long a clean poll takes here, on a scratch store
    (tmp_path / "scratch").mkdir()
    scratch = write_config(tmp_path / "scratch", feeds, "[relevance]\nthreshold = 0\n", seeds=str(seeds_dir))
    started = time.monotonic()
    poll(scratch)
    full = time.monotonic() - started
    rng = random.Random(7)
    for _ in range(20):
        # process group kill: the worker processes die with it, as in a real crash
        poll(cfg, kill_after=rng.uniform(0.3, full * 1.1), start_new_session=True)
        if (tmp_path / "store" / "ingest.db").exists():
            Store.open(tmp_path / "store").close()  # what the next start does: finish or undo the last write
            check_store(tmp_path / "store")  # consistent after every kill
    poll(cfg)
    store = tmp_path / "store"
    check_store(store, pages)
    db = sqlite3.connect(store / "ingest.db")
    assert db.execute("SELECT COUNT(*) FROM pages WHERE outcome='kept'").fetchone()[0] == len(pages)


def test_sigkill_during_digest(web, tmp_path, seeds_dir):
    feeds, pages = build(web, n_feeds=10)
    cfg = write_config(tmp_path, feeds, "[relevance]\nthreshold = 0\n")
    poll(cfg)
    rng = random.Random(3)
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "digest"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.5))
        proc.kill()
        proc.wait()
    r = run_cli("--config", str(cfg), "digest", "--format", "json")
    assert r.code == 0
    check_store(tmp_path / "store", pages)
    digests = sqlite3.connect(tmp_path / "store" / "ingest.db").execute(
        "SELECT since, until, items FROM digests ORDER BY id").fetchall()
    assert sum(n for _, _, n in digests) == len(pages)  # every article in exactly one recorded digest
    assert all(a[1] == b[0] for a, b in zip(digests, digests[1:], strict=False))  # periods chain up


def test_full_disk_gives_a_clear_error_and_a_consistent_store(web, tmp_path, seeds_dir):
    feeds, pages = build(web, n_feeds=10)
    cfg = write_config(tmp_path, feeds, "[relevance]\nthreshold = 0\n")

    def small_disk():  # files may not grow past 150 KB: writes fail as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    proc = subprocess.run([sys.executable, "-m", "ingest", "--config", str(cfg), "poll"], cwd=REPO,
                          capture_output=True, text=True, preexec_fn=small_disk, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "cannot write the store" in proc.stderr and "Traceback" not in proc.stderr
    poll(cfg)  # with room again, the next run completes the job
    check_store(tmp_path / "store", pages)


def test_unusable_store_folder(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [], store="/proc/seed-ingest-store")
    r = run_cli("--config", str(cfg), "poll")
    assert r.code == 1 and "cannot use the store folder" in r.err


def test_sigkill_during_rescore_leaves_a_consistent_store(web, tmp_path, seeds_dir):
    """`rescore --apply` promotes 40 rejected pages one transaction at a time; killed at random moments and run
    again, every page ends in the corpus exactly once."""
    feeds, pages = build(web, n_feeds=10, per_feed=4)
    cfg = write_config(tmp_path, feeds, "[relevance]\nthreshold = 1\n")  # everything rejected, text kept
    poll(cfg)
    assert not list((tmp_path / "store" / "corpus").iterdir())
    cfg = write_config(tmp_path, feeds, "[relevance]\nthreshold = 0\n")  # now everything passes

    def rescore(kill_after: float | None = None) -> None:
        proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "rescore", "--apply"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kill_after is None:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()[-2000:]
            return
        corpus = tmp_path / "store" / "corpus"
        start = len(list(corpus.iterdir()))
        deadline = time.monotonic() + 120
        # wait on state, not time: kill once this run has written something (or finished)
        while proc.poll() is None and len(list(corpus.iterdir())) <= start and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(kill_after)
        proc.kill()
        proc.wait()

    rng = random.Random(3)
    partial = []
    for _ in range(6):
        rescore(kill_after=rng.uniform(0, 0.05))
        Store.open(tmp_path / "store").close()
        check_store(tmp_path / "store")
        partial.append(len(list((tmp_path / "store" / "corpus").iterdir())))
    assert any(0 < n < len(pages) for n in partial), partial  # some kills did land mid-way
    rescore()
    check_store(tmp_path / "store", expected_urls=pages)
