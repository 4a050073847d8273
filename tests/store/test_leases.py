"""Work sharing in the PostgreSQL store: host leases, page jobs, elections (ingest/store/postgres.py).

Claims race for real: several threads, each with its own connection pool,
claim at the same moment; the hosts they get never overlap.
"""

from __future__ import annotations

import threading

import pytest

from ingest.store import Source


@pytest.fixture
def store(tmp_path, pg_url):
    from ingest.store.postgres import PgStore

    s = PgStore.open(pg_url, tmp_path / "store")
    s.sync_feeds([(f"http://h{i}.example/feed", "") for i in range(12)])
    for f in s.feeds():
        s.update_feed(f.id, next_poll=100.0)
    yield s
    s.close()


def test_concurrent_claims_take_disjoint_hosts(store, pg_url, tmp_path):
    from ingest.store.postgres import PgStore

    others = [PgStore.open(pg_url, tmp_path / f"w{i}") for i in range(4)]
    got: dict[str, dict[str, float]] = {}
    start = threading.Barrier(4)

    def claim(i: int) -> None:
        start.wait()
        got[f"w{i}"] = others[i].claim_hosts(f"w{i}", 200.0, 60.0, 3)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = [h for hosts in got.values() for h in hosts]
    assert len(held) == len(set(held))  # no host twice
    assert all(len(hosts) <= 3 for hosts in got.values())  # each at most its limit (and its fair share)
    for i in range(4):  # claiming on, they take the rest, still without overlap
        held += list(others[i].claim_hosts(f"w{i}", 201.0, 60.0, 3))
    for s in others:
        s.close()
    assert len(held) == len(set(held)) == 12


def test_a_lease_runs_out_and_spacing_is_handed_on(store):
    first = store.claim_hosts("a", 200.0, 60.0, 12)
    assert len(first) == 12
    assert store.claim_hosts("b", 230.0, 60.0, 12) == {}  # all held
    assert store.renew_hosts("a", set(first), 250.0, 60.0) == set(first)
    assert store.claim_hosts("b", 300.0, 60.0, 12) == {}  # renewed until 310
    taken = store.claim_hosts("b", 311.0, 60.0, 12)  # a stopped renewing (killed): b takes over
    assert set(taken) == set(first)
    assert store.renew_hosts("a", set(first), 312.0, 60.0) == set()  # a has lost them
    store.release_hosts("b", {"h0.example": 400.5})
    for f in store.feeds():
        store.update_feed(f.id, next_poll=1000.0 if f.url != "http://h0.example/feed" else 100.0)
    assert store.claim_hosts("c", 320.0, 60.0, 12) == {"h0.example": 400.5}  # no request before b's spacing


def test_fair_share_of_due_hosts(store):
    store.claim_hosts("other", 90.0, 60.0, 0)  # another worker seen: half of the due hosts each
    assert len(store.claim_hosts("me", 100.0, 60.0, 12)) == 6


def test_a_worker_starting_first_takes_its_share_not_everything(store):
    """Issue 24: a worker that claimed four times before the second had registered held all 12
    hosts. Registered workers count from their start; a round takes at most the share left."""
    assert store.register_worker("first", 100.0, 60.0) == 100.0
    # still starting, it has claimed nothing yet; both settle from the first's start
    assert store.register_worker("second", 100.5, 60.0) == 100.0
    taken: dict[str, float] = {}
    for i in range(4):  # four rounds of at most 4 hosts each
        taken |= store.claim_hosts("first", 101.0 + i, 60.0, 4)
    assert len(taken) == 6
    rest = store.claim_hosts("second", 106.0, 60.0, 12)
    assert len(rest) == 6 and not set(rest) & set(taken)


def test_a_worker_joining_a_running_set_settles_from_their_start_not_its_own(store):
    """The settle before a first claim counts from the earliest live worker's start: workers started
    together claim from the same moment; one joining workers that run already (or replacing a dead
    one, no longer live) does not wait."""
    assert store.register_worker("old", 100.0, 60.0) == 100.0
    store.claim_hosts("old", 150.0, 60.0, 1)  # seen at 150
    assert store.register_worker("new", 200.0, 60.0) == 100.0  # old is live: the set started at 100
    assert store.register_worker("later", 400.0, 60.0) == 400.0  # old and new not seen for a lease


def test_a_dead_workers_hosts_come_first(store):
    """Hosts whose holder stopped renewing are taken before hosts that merely wait, and a busy
    worker (orphans_only) takes only those."""
    feeds = store.feeds()
    for f in feeds:
        store.update_feed(f.id, next_poll=1000.0)
    for f in feeds[:3]:
        store.update_feed(f.id, next_poll=100.0)
    dead = store.claim_hosts("dead", 100.0, 60.0, 3)
    assert len(dead) == 3
    for f in feeds[3:]:
        store.update_feed(f.id, next_poll=50.0)  # waiting longer than the dead worker's hosts
    assert set(store.claim_hosts("survivor", 161.0, 60.0, 3)) == set(dead)
    store.release_hosts("survivor", dict.fromkeys(dead, 0.0))
    store.claim_hosts("dead2", 170.0, 60.0, 2)
    assert store.claim_hosts("busy", 200.0, 60.0, 12, orphans_only=True) == {}  # dead2's leases still run
    assert len(store.claim_hosts("busy", 231.0, 60.0, 12, orphans_only=True)) == 2


def test_page_jobs_merge_sources_and_follow_the_host(store):
    feeds = store.feeds()
    a = Source(feeds[0].id, "k1", "http://h5.example/p?x=1", "P", None)
    b = Source(feeds[1].id, "k2", "http://h5.example/p", "P", None)
    assert store.queue_pages([("http://h5.example/p", "http://h5.example/p?x=1", [a])], 150.0) == 1
    assert store.queue_pages([("http://h5.example/p", "http://h5.example/p", [b])], 160.0) == 0  # same job
    assert store.due_deferred(200.0, hosts={"h4.example"}) == []
    [(key, link, sources)] = store.due_deferred(200.0, hosts={"h5.example"})
    assert (key, link, sources) == ("http://h5.example/p", "http://h5.example/p?x=1", [a, b])
    # once decided, both entries are recorded with the page, and a later listing is only a source
    pid = store.record_page(key, [a], 210.0, outcome="empty", reason="no text")
    assert {s.key for s in store.page_sources(pid)} == {"k1", "k2"}
    c = Source(feeds[2].id, "k3", "http://h5.example/p", "P", None)
    assert store.queue_pages([(key, key, [c])], 220.0) == 0
    assert {s.key for s in store.page_sources(pid)} == {"k1", "k2", "k3"}
    assert store.due_deferred(300.0) == []


def test_one_winner_per_slot(store):
    assert store.elect("digest", 7200.0, "a", 7201.0)
    assert not store.elect("digest", 7200.0, "b", 7201.5)
    assert store.elect("digest", 93600.0, "b", 93601.0)  # the next day's slot
