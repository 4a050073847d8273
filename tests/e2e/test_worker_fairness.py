"""How `ingest run` workers on PostgreSQL share hosts (issue 24): real subprocesses, a loopback web,
and the web's own request log as the witness.

* two workers started together each take a fair share of the hosts due at start;
* a pass polls every feed of its hosts that falls due while it holds them (one lease, not one per feed);
* a worker killed with SIGKILL: each of its hosts is contacted again within lease + 5 s, though
  the survivor is busy with hosts of its own.
"""

from __future__ import annotations

import re
import signal

import pytest

from tests.conftest import run_cli
from tests.e2e.test_workers import _text, config, kill_the_busier, rows, start, stop
from tests.service.test_service import wait_for
from tests.support.web import article_page, rss

pytestmark = pytest.mark.timeout(600)


def _leased(log: str) -> list[set[str]]:
    """The host sets of a worker's hosts_leased events, in order."""
    return [set(m.group(1).split(",")) for m in re.finditer(r"event=hosts_leased worker=\S+ hosts=(\S+)", log)]


def _site(web, ips: range, feeds_per_host: int, pages_per_feed: int, page_delay: float) -> tuple[list[str], int]:
    import random

    rng = random.Random(5)
    feeds, pages = [], 0
    for n in ips:
        host = web.host(n)
        for f in range(feeds_per_host):
            items = []
            for p in range(pages_per_feed):
                path = f"/news/{f}-{p}"
                host.add(path, article_page(f"Story {n}-{f}-{p}", _text(rng)), delay=page_delay)
                items.append({"title": f"Story {n}-{f}-{p}", "link": host.url(path), "guid": path})
                pages += 1
            feeds.append(host.add(f"/feed{f}.xml", rss(f"Feed {n}-{f}", items), content_type="application/rss+xml"))
    return feeds, pages


def _stored(pg_url: str) -> int:
    return rows(pg_url, "SELECT COUNT(*) FROM pages WHERE retry_at IS NULL")[0][0]


def _polled(pg_url: str) -> int:
    return rows(pg_url, "SELECT COUNT(*) FROM feeds WHERE last_poll IS NOT NULL")[0][0]


def test_workers_started_together_share_the_hosts_due_at_start(tmp_path, seeds_dir, web, pg_url):
    """Issue 24, item 1: with 12 hosts due at start, the worker that started first held all 12 and
    the other sat idle. A worker registers, then waits a moment before its first claim (a worker
    starting alongside is counted), and a round takes at most the share left."""
    feeds, pages = _site(web, range(31, 43), 1, 1, page_delay=2.0)
    # the settle must outlast the second worker's start-up (imports), which on a saturated machine
    # takes longer than the default 5 s; the lease bounds the settle to half of it
    cfg = config(tmp_path, feeds, pg_url, lease="60s")
    cfg.write_text(cfg.read_text() + "[worker]\nstart_settle = \"25s\"\n")
    assert run_cli("--config", str(cfg), "migrate").code == 0
    assert run_cli("--config", str(cfg), "feeds", "sync").code == 0
    import psycopg

    with psycopg.connect(pg_url) as conn:  # every host due before the workers start
        conn.execute("UPDATE feeds SET next_poll = 0")
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    workers = [start(cfg, logs[0])]
    try:
        # the first is up (registered, its model learned: nothing holds it back from claiming but the
        # settle) before the second starts: it must not take every host meanwhile
        wait_for(lambda: rows(pg_url, "SELECT COUNT(*) FROM workers")[0][0] == 1
                 and "event=model_learned" in logs[0].read_text(), what="the first worker")
        workers.append(start(cfg, logs[1]))
        wait_for(lambda: _stored(pg_url) == pages and _polled(pg_url) == len(feeds), timeout=180,
                 what="every page stored")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=60) for w in workers]
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], texts
    taken = [{h.split(":")[0] for h in set().union(*_leased(t))} for t in texts]
    # each holds a share: the first to claim cannot take more than half while the other is counted
    assert all(len(t) >= 4 for t in taken), [sorted(t) for t in taken]
    assert taken[0] | taken[1] == {f"127.0.0.{n}" for n in range(31, 43)}


def test_a_pass_polls_the_feeds_of_its_hosts_that_fall_due_while_it_runs(tmp_path, seeds_dir, web, pg_url):
    """Issue 24, item 3: the feeds of one host fall due over a few seconds (a first poll's spread);
    a pass that holds the host polls them all, rather than leasing the host again for each."""
    feeds, pages = _site(web, range(51, 52), 10, 2, page_delay=0.3)
    cfg = config(tmp_path, feeds, pg_url)
    cfg.write_text(cfg.read_text().replace('poll_interval = "2s"', 'poll_interval = "1h"'))
    assert run_cli("--config", str(cfg), "migrate").code == 0
    log = tmp_path / "w.log"
    worker = start(cfg, log)
    try:
        wait_for(lambda: rows(pg_url, "SELECT COUNT(*) FROM workers")[0][0] == 1, what="the worker")
        assert run_cli("--config", str(cfg), "feeds", "sync").code == 0
        spread = rows(pg_url, "SELECT MAX(next_poll) - MIN(next_poll) FROM feeds")[0][0]
        assert spread > 2.0  # the feeds really fall due at different times
        wait_for(lambda: _stored(pg_url) == pages and _polled(pg_url) == len(feeds), timeout=180,
                 what="every feed polled")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    leases = [h for h in _leased(log.read_text()) if any(x.startswith("127.0.0.51") for x in h)]
    assert len(leases) == 1, log.read_text()


def test_a_dead_workers_hosts_are_contacted_within_lease_and_five_seconds(tmp_path, seeds_dir, web, pg_url):
    """Issue 24, item 4: after kill -9, a busy survivor picked the last hosts up 41 s after the lease
    ran out. A worker takes a dead worker's hosts at once, whatever its own backlog."""
    lease = 6.0  # short, for the bound below; a worker starved for a lease on a saturated machine counts as dead
    feeds, pages = _site(web, range(61, 73), 3, 10, page_delay=0.3)  # each host busy for ~20 s
    cfg = config(tmp_path, feeds, pg_url, lease=f"{lease:g}s")
    assert run_cli("--config", str(cfg), "migrate").code == 0
    a, b = start(cfg, tmp_path / "a.log"), start(cfg, tmp_path / "b.log")
    try:
        wait_for(lambda: rows(pg_url, "SELECT COUNT(*) FROM workers")[0][0] == 2, what="both workers")
        assert run_cli("--config", str(cfg), "feeds", "sync").code == 0
        # mid-poll (pages requested; they are committed at the end of a pass), both holding hosts
        wait_for(lambda: sum(len(h.requests) for h in web.hosts.values()) >= 40 and len(rows(
            pg_url, "SELECT DISTINCT worker FROM host_leases WHERE worker IS NOT NULL")) == 2,
            timeout=120, what="both workers holding hosts, pages requested")
        _, survivor, name, killed = kill_the_busier(a, b, pg_url)
        orphans = {r[0] for r in rows(pg_url, f"SELECT host FROM host_leases WHERE worker = '{name}'")}
        assert orphans
        wait_for(lambda: _stored(pg_url) == pages and _polled(pg_url) == len(feeds), timeout=240,
                 what="the survivor finishing")
    finally:
        stop(a, b)
    assert survivor.returncode == 0
    late = {}
    by_ip = {h.ip: h for h in web.hosts.values()}
    for host in orphans:
        after = [r.at for r in by_ip[host.split(":")[0]].requests if r.at > killed]
        if after:  # a host whose work was all committed before the kill has nothing left to ask
            late[host] = round(min(after) - killed, 1)
    assert late, "the dead worker left no work"
    assert max(late.values()) <= lease + 5, late
