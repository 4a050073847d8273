"""Several `ingest run` workers on one PostgreSQL database, over a loopback web of 10 hosts.

Every article once, every page requested once, per-host limits and spacing
kept across workers (the web's own request log says so), and a worker killed
with SIGKILL mid-poll loses nothing: its leases run out and the other worker
finishes. The workers are real subprocesses; tests wait on rows and logs.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, write_config
from tests.service.test_service import wait_for
from tests.support.web import article_page, rss

HOSTS = range(11, 21)  # 127.0.0.11 .. 127.0.0.20
FEEDS_PER_HOST = 5
HOST_DELAY = 0.4
WORDS = ("gold mine labour camp export province border ministry report worker company river village "
         "market price shipment official survey road railway factory harvest school hospital court "
         "election budget treaty summit energy water weather forest coast island bank loan tax trade").split()


def _text(rng: random.Random) -> str:
    return "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + "." for _ in range(4))


def build(web, page_delay: float = 0.0) -> tuple[list[str], int, set[tuple[str, str]]]:
    """50 feeds on 10 hosts. Each feed lists two pages of its own host and one page of the next
    host (a page job for whoever holds that host); every page is listed by two feeds, and one
    story is published at two URLs on two hosts. Returns (feed URLs, distinct stories, pages)."""
    rng = random.Random(7)
    hosts = [web.host(n) for n in HOSTS]
    pages: set[tuple[str, str]] = set()
    texts: dict[tuple[int, int], str] = {}
    for hi in range(len(hosts)):
        for p in range(2 * FEEDS_PER_HOST):
            texts[(hi, p)] = _text(rng)
    texts[(len(hosts) - 1, 0)] = texts[(0, 0)]  # the same story on two hosts: one article
    for (hi, p), text in texts.items():
        host = hosts[hi]
        host.add(f"/news/{p}", article_page(f"Story {hi}-{p}", text), delay=page_delay)
        pages.add((host.ip, f"/news/{p}"))
    feeds = []
    for hi, host in enumerate(hosts):
        nxt = hosts[(hi + 1) % len(hosts)]
        for f in range(FEEDS_PER_HOST):
            items = [{"title": f"Story {hi}-{p}", "link": host.url(f"/news/{p}"), "guid": f"{hi}-{p}"}
                     for p in (2 * f, 2 * f + 1)]
            items.append({"title": "Across", "link": nxt.url(f"/news/{(2 * f + 2) % (2 * FEEDS_PER_HOST)}"),
                          "guid": f"x{hi}-{f}"})
            feeds.append(host.add(f"/feed{f}.xml", rss(f"Feed {hi}-{f}", items), content_type="application/rss+xml"))
    return feeds, len(texts) - 1, pages


def config(tmp_path: Path, feeds: list[str], pg_url: str, lease: str = "30s") -> Path:
    extra = (f'[store]\nurl = "{pg_url}"\nlease = "{lease}"\n'
             '[relevance]\nthreshold = 0\n[web]\nlisten = ""\n'
             '[schedule]\npoll_interval = "2s"\nmin_interval = "1h"\nshutdown_timeout = "5s"\n')
    cfg = write_config(tmp_path, feeds, extra)
    text = cfg.read_text().replace("host_delay = 0", f'host_delay = "{HOST_DELAY}s"\nper_host = 1')
    cfg.write_text(text)
    return cfg


def start(cfg: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "run"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=err, env=env)


def rows(pg_url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        return conn.execute(sql).fetchall()


def finished(pg_url: str, feeds: int, stories: int) -> bool:
    polled = rows(pg_url, "SELECT COUNT(*) FROM feeds WHERE last_poll IS NOT NULL")[0][0]
    waiting = rows(pg_url, "SELECT COUNT(*) FROM pages WHERE retry_at IS NOT NULL")[0][0]
    kept = rows(pg_url, "SELECT COUNT(*) FROM articles")[0][0]
    return polled == feeds and waiting == 0 and kept >= stories


def page_requests(web) -> Counter:
    return Counter((h.ip, r.path) for h in web.hosts.values() for r in h.requests if r.path.startswith("/news/"))


def kill_the_busier(a: subprocess.Popen, b: subprocess.Popen, pg_url: str
                    ) -> tuple[subprocess.Popen, subprocess.Popen, str, float]:
    """SIGKILL the worker holding the most hosts: (victim, survivor, the victim's worker name,
    time.monotonic() at the kill)."""
    holders = rows(pg_url, "SELECT worker, COUNT(*) FROM host_leases WHERE worker IS NOT NULL GROUP BY worker "
                           "ORDER BY 2 DESC")
    assert holders, "no host leased mid-poll"
    victim = a if f":{a.pid}:" in holders[0][0] else b
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.wait(timeout=30)
    return victim, b if victim is a else a, holders[0][0], killed


def stop(*workers: subprocess.Popen) -> None:
    """SIGTERM the workers still running and wait for them."""
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
            w.wait(timeout=60)


def test_two_workers_share_the_work_exactly_once(tmp_path, seeds_dir, web, pg_url):
    feeds, stories, pages = build(web)
    cfg = config(tmp_path, feeds, pg_url)
    assert run_cli("--config", str(cfg), "migrate").code == 0
    workers = [start(cfg, tmp_path / f"worker{i}.log") for i in (1, 2)]
    try:
        # both workers up (each has looked for work once) before the feeds arrive
        wait_for(lambda: rows(pg_url, "SELECT COUNT(*) FROM workers")[0][0] == 2, what="both workers")
        sync = run_cli("--config", str(cfg), "feeds", "sync")
        assert sync.code == 0 and "50 from" in sync.out, sync.err
        wait_for(lambda: finished(pg_url, len(feeds), stories), timeout=180, what="all feeds and pages done")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=60) for w in workers]
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in (1, 2)]
    assert codes == [0, 0], logs
    # every story once: the same text at two URLs on two hosts is one article
    assert rows(pg_url, "SELECT COUNT(*) FROM articles")[0][0] == stories
    assert rows(pg_url, "SELECT COUNT(*) FROM pages WHERE outcome = 'duplicate'")[0][0] == 1
    # every page requested once, across both workers
    requested = page_requests(web)
    assert set(requested) == pages and set(requested.values()) == {1}
    for h in web.hosts.values():
        assert h.max_in_flight <= 1, h.ip  # per_host = 1, across both workers
        # host_delay between request starts, as the server saw them. On a loaded machine a request
        # can reach the server late (a busy event loop, the server's thread waiting for the GIL):
        # a quarter of the delay is the bar, and after a request that opened a connection (late by
        # the connect too) only the order counts. A worker starting before the other's spacing
        # ran out shows as a gap near zero.
        reqs = sorted(h.requests, key=lambda r: r.at)
        opened = {r.peer: r for r in reversed(reqs)}  # first request of each connection
        for prev, nxt in zip(reqs, reqs[1:], strict=False):
            bar = 0.0 if opened[prev.peer] is prev else HOST_DELAY / 4
            assert nxt.at - prev.at >= bar, (h.ip, prev.path, nxt.path, nxt.at - prev.at)
    # both workers took part
    assert all("event=hosts_leased" in log for log in logs), logs
    # every entry of every feed is recorded, each page as its story's source
    assert rows(pg_url, "SELECT COUNT(*) FROM entries")[0][0] == len(feeds) * 3
    assert rows(pg_url, "SELECT COUNT(*) FROM entries WHERE page_id IS NULL")[0][0] == 0
    # the corpus folder is written from the database, idempotently
    out = tmp_path / "corpus-out"
    first = run_cli("--config", str(cfg), "corpus", "sync", str(out))
    assert first.code == 0 and f"{stories} written" in first.out
    assert len(list(out.glob("*.txt"))) == stories
    again = run_cli("--config", str(cfg), "corpus", "sync", str(out))
    assert "0 written" in again.out and f"{stories} unchanged" in again.out


def test_a_worker_with_the_web_view_counts_its_polls_in_metrics(tmp_path, seeds_dir, web, pg_url):
    """A PostgreSQL worker's passes are counted in the web view's /metrics. The metrics are made
    with the web view, which starts after the worker is set up: the worker must get them then
    (a worker made before once kept none, and /metrics showed no poll)."""
    from tests.out.test_web import _free_port, polls_counted

    feeds, _, _ = build(web)
    listen = f"127.0.0.1:{_free_port()}"
    cfg = config(tmp_path, feeds[:5], pg_url)
    cfg.write_text(cfg.read_text().replace('[web]\nlisten = ""', f'[web]\nlisten = "{listen}"'))
    assert run_cli("--config", str(cfg), "migrate").code == 0
    assert run_cli("--config", str(cfg), "feeds", "sync").code == 0
    worker = start(cfg, tmp_path / "worker.log")
    try:
        wait_for(lambda: polls_counted(listen, 1), timeout=180, what="the worker's pass counted in /metrics")
        kept_rows = rows(pg_url, "SELECT COUNT(*) FROM articles")[0][0]
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
    assert code == 0, (tmp_path / "worker.log").read_text()
    assert kept_rows >= 1


def test_a_killed_worker_loses_nothing(tmp_path, seeds_dir, web, pg_url):
    feeds, stories, pages = build(web, page_delay=0.3)
    cfg = config(tmp_path, feeds, pg_url, lease="3s")
    assert run_cli("--config", str(cfg), "migrate").code == 0
    a = start(cfg, tmp_path / "a.log")
    b = start(cfg, tmp_path / "b.log")
    try:
        wait_for(lambda: rows(pg_url, "SELECT COUNT(*) FROM workers")[0][0] == 2, what="both workers")
        assert run_cli("--config", str(cfg), "feeds", "sync").code == 0
        # mid-poll: some articles stored, hosts leased by both
        wait_for(lambda: rows(pg_url, "SELECT COUNT(*) FROM articles")[0][0] >= 5, timeout=120,
                 what="the first articles")
        _, survivor, _, _ = kill_the_busier(a, b, pg_url)
        wait_for(lambda: finished(pg_url, len(feeds), stories), timeout=180, what="the survivor finishing")
    finally:
        stop(a, b)
    assert survivor.returncode == 0
    assert rows(pg_url, "SELECT COUNT(*) FROM articles")[0][0] == stories
    assert rows(pg_url, "SELECT COUNT(DISTINCT canonical_url), COUNT(DISTINCT text_hash) FROM articles")[0] == \
        (stories, stories)
    # every page fetched (some twice: the ones in flight when the worker died), none lost
    assert set(page_requests(web)) == pages
    assert rows(pg_url, "SELECT COUNT(*) FROM entries WHERE page_id IS NULL")[0][0] == 0
    assert rows(pg_url, "SELECT COUNT(*) FROM host_leases WHERE worker IS NOT NULL")[0][0] == 0
    assert "event=leases_lost" not in (tmp_path / ("a.log" if survivor is a else "b.log")).read_text()


pytestmark = pytest.mark.timeout(600)
