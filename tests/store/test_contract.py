"""The store contract, on both backends: every test runs on SQLite and on PostgreSQL.

Only the contract's methods are used (no SQL), so what passes here holds for
whatever backend ``[store]`` selects. PostgreSQL runs get a database of their
own (tests/pg.py) and are skipped, saying why, when no server answers.
"""

from __future__ import annotations

import re

import pytest

from ingest.store import Decision, NewArticle, PageDoc, SearchError, Source, Store, unpack
from ingest.text.fingerprint import text_hash


def _article(n: int = 1, **kw) -> NewArticle:
    text = kw.pop("text", f"Body {n} about gold mines.\n\nSecond paragraph number {n}.")
    base = {"url": f"http://e.org/{n}", "canonical_url": f"http://e.org/{n}", "title": f"Title {n}", "author": "",
                "site": "e.org", "language": "en", "published": None, "text": text,
                "text_hash": text_hash(text), "score": 0.5, "threshold": 0.2, "terms": ("gold",)}
    return NewArticle(**{**base, **kw})


def _source(store, n, feed_index: int = 0) -> list[Source]:
    feed = store.feeds()[feed_index].id
    return [Source(feed, f"k{n}", f"http://e.org/{n}", f"Entry {n}", None)]


def _add(store, n: int = 1, now: float = 1000.0, **kw):
    return store.add_article(_article(n, **kw), f"http://e.org/{n}", _source(store, n), now, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store.open(tmp_path / "store")
    else:
        from ingest.store.postgres import PgStore

        s = PgStore.open(request.getfixturevalue("pg_url"), tmp_path / "store")
    s.sync_feeds([("http://e.org/feed", ""), ("http://f.org/feed", "Other")])
    yield s
    s.close()


def test_article_round_trip(store):
    aid, path = _add(store)
    art = store.article(aid)
    assert art["canonical_url"] == "http://e.org/1" and art["title"] == "Title 1" and path == art["path"]
    assert path.startswith("corpus/000_")
    assert store.article_body(art) == ("Title 1", "Body 1 about gold mines.\n\nSecond paragraph number 1.")
    assert store.article_text(aid).startswith("Body 1")
    assert store.article_by(canonical_url="http://e.org/1") == aid
    assert store.article_by(text_hash=art["text_hash"]) == aid
    assert store.article_by_url("http://e.org/1", "nothing") == aid
    page = store.article_page(aid)
    assert page["outcome"] == "kept" and store.page_doc(page).text.startswith("Body 1")
    assert [s["url"] for s in store.article_sources(aid)] == ["http://e.org/1"]
    assert [p.key for p in store.page_sources(page["id"])] == ["k1"]
    assert store.seen_entries(store.feeds()[0].id, ["k1", "k2"]) == {"k1": None}
    _, second = _add(store, 2)
    assert second.startswith("corpus/001_")  # numbers run on
    assert [a["id"] for a in store.articles()] == [aid, aid + 1] or len(list(store.articles())) == 2


def test_update_and_withdraw(store):
    aid, path = _add(store)
    new_text = "A corrected body about gold."
    assert store.update_article(aid, "Title 1 (corrected)", new_text, text_hash(new_text), None,
                                "http://e.org/1", _source(store, 1), 2000.0) == path
    art = store.article(aid)
    assert art["revisions"] == 1 and art["updated"] == 2000.0
    assert store.article_text(aid) == new_text
    assert [a["id"] for a in store.articles_between(1500.0, 2500.0)] == [aid]  # changed in place counts
    store.withdraw_article(aid, "user", 3000.0)
    assert store.article(aid)["withdrawn_by"] == "user" and list(store.articles()) == []
    assert store.search("corrected") == []
    store.restore_article(aid)
    assert [a["id"] for a in store.articles()] == [aid]
    assert [h.id for h in store.search("corrected")] == [aid]


def test_rejected_page_keeps_its_text_until_expired(store):
    feed = store.feeds()[0].id
    doc = PageDoc("http://e.org/r", "http://e.org/r", "Coal report", "Coal prices rose in the north.", "", "",
                  "en", None, "h")
    pid = store.record_page("http://e.org/r", [Source(feed, "r", "http://e.org/r", "", None)], 1000.0,
                            outcome="rejected", score=0.15, counts={"coal": 2}, decision=Decision(0.2, ("coal",)),
                            doc=doc, reason="score 0.150 < threshold 0.200")
    row = store.page_by_id(pid)
    assert row["outcome"] == "rejected" and store.page_doc(row) == doc
    assert [p["id"] for p in store.near_misses()] == [pid]  # at least half its threshold
    assert [p["id"] for p in store.pages_since(0.0)] == [pid]
    assert [h.id for h in store.search("coal", rejected=True)] == [pid]
    assert store.search("coal") == []  # rejected pages only when asked
    assert store.expire_rejected_texts(2000.0) == 1
    assert store.page_doc(store.page_by_id(pid)) is None and store.search("coal", rejected=True) == []
    assert dict(store.stream())[pid] and unpack(dict(store.stream())[pid]) == {"coal": 2}


def test_search_syntax_and_filters(store):
    _add(store, 1, text="Gold mining in the north, by forced labour.")
    _add(store, 2, text="Coal mining statistics for the year.", title="Coal")
    _add(store, 3, text="Gold prices and the central bank.", now=5000.0)
    ids = lambda q, **kw: sorted(h.id for h in store.search(q, **kw))  # noqa: E731
    a1, a2, a3 = (store.article_by(canonical_url=f"http://e.org/{n}") for n in (1, 2, 3))
    assert ids("gold") == [a1, a3]
    assert ids('"forced labour"') == [a1] and ids('"labour forced"') == []
    assert ids("min*") == [a1, a2]
    assert ids("gold NOT bank") == [a1]
    assert ids("coal OR bank") == [a2, a3]
    assert ids("(gold OR coal) AND north") == [a1]
    assert ids("gold", since=4000.0) == [a3]
    assert store.search("coal")[0].id == a2  # the title weighs most
    hit = store.search("labour")[0]
    assert "\x02labour\x03" in hit.snippet and hit.site == "e.org"
    for bad, why in [('"unterminated', "a quote is not closed"), ("(gold", "a ( is not closed"),
                     ("OR gold", "OR needs a word before it"), ("gold AND", "AND needs a word after it")]:
        with pytest.raises(SearchError, match=re.escape(why)):
            store.search(bad)
    # hyphenated and dotted words are the phrase they are, never syntax (FTS5 read gold-mine as a column)
    _add(store, 4, text="Kim Jong-un toured the gold-mine with S.A. officials and U.S. envoys.", title="Tour")
    a4 = store.article_by(canonical_url="http://e.org/4")
    for q in ("Jong-un", "gold-mine", "S.A.", "U.S.", "jong-u*"):
        assert ids(q) == [a4], q


def test_deferred_pages_come_back_when_due(store):
    feed = store.feeds()[0].id
    src = [Source(feed, "d", "http://e.org/d?x=1", "", None)]
    assert store.defer_page("http://e.org/d", "http://e.org/d?x=1", src, 1000.0, 1100.0, "Retry-After")
    assert store.due_deferred(1050.0) == []
    [(key, link, sources)] = store.due_deferred(1100.0)
    assert (key, link, sources) == ("http://e.org/d", "http://e.org/d?x=1", src)
    assert store.page("http://e.org/d")["outcome"] == "deferred"
    assert not store.defer_page("http://e.org/d", "http://e.org/d", src, 1000.0 + 8 * 86400, 0.0, "still")
    assert store.page("http://e.org/d")["outcome"] == "error"  # given up after a week


def test_feeds_schedule_and_health(store):
    a, b = store.feeds()
    store.update_feed(a.id, next_poll=100.0, state="ok", last_success=90.0, interval=60.0)
    store.update_feed(b.id, next_poll=500.0, retry_after=800.0)
    assert [f.id for f in store.due_feeds(200.0)] == [a.id]
    assert [f.id for f in store.pollable_feeds(900.0)] == [a.id, b.id]
    assert store.next_due() == 100.0 and store.next_due(exclude=[a.id]) == 800.0
    assert store.health(100.0, 3600.0).ok
    assert not store.health(100_000.0, 3600.0).ok
    store.sync_feeds([("http://e.org/feed", ""), ("http://f.org/feed", "", False)])
    assert not [f for f in store.pollable_feeds(900.0) if f.id == b.id]  # paused


def test_the_corpus_is_listed_by_published_date_with_stable_pages(store):
    """Newest published first, whenever it was fetched; a page without a date by the day it was fetched
    (UTC); ``before`` the last (day, id) shown gives the next page, nothing twice, nothing skipped."""
    aid, _ = _add(store)
    aid2, _ = _add(store, 2)
    old, _ = _add(store, 5, now=900_000.0, published="1999-12-31T23:00:00Z")
    new, _ = _add(store, 6, now=900_000.0, published="2030-01-02")
    listed = store.list_articles()
    assert [a["id"] for a in listed] == [new, old, aid2, aid]  # added last, listed by their dates
    assert [a["day"] for a in listed] == ["2030-01-02", "1999-12-31", "1970-01-01", "1970-01-01"]
    seen, before = [], None
    while page := store.list_articles(before=before, limit=1):
        seen.append(page[0]["id"])
        before = (page[0]["day"], page[0]["id"])
    assert seen == [a["id"] for a in listed]


def test_counts_lists_and_state(store):
    key0 = store.state_key()
    aid, _ = _add(store)
    assert store.state_key() != key0
    _add(store, 2)
    assert store.feed_counts()[store.feeds()[0].id] == (2, 2)
    first = store.list_articles(limit=1)[0]
    assert first["id"] == aid + 1
    assert [a["id"] for a in store.list_articles(before=(first["day"], first["id"]))] == [aid]
    assert store.sites() == ["e.org"]
    assert store.rolling_since(1) == pytest.approx(1000.0 - 1e-6)
    assert store.metrics_snapshot()["articles"] == 2
    run = store.start_run("poll", 1000.0)
    store.finish_run(run, 1001.0, {"kept": 2})
    assert store.record_digest(0.0, 1000.0, 2, None) == store.last_digest_id()
    assert store.last_digest_until() == 1000.0 and len(store.digest_rows()) == 1


def test_verdicts_and_learning_counts(store):
    aid, _ = _add(store)
    pid = store.article_page(aid)["id"]
    store.set_verdict(pid, "http://e.org/1", False, 1100.0, counts={"gold": 1})
    assert store.verdicts() == {pid: False} and store.in_stream(pid)
    [pending] = store.pending_verdicts()
    assert store.learning_counts() == (1, 0, 1, 1)
    store.verdict_applied(pending["id"], 1200.0)
    assert store.pending_verdicts() == [] and store.learning_counts()[3] == 0


def test_near_candidates_share_a_band(store):
    from ingest.text.fingerprint import band_keys, signature

    text = " ".join(f"word{i}" for i in range(300))
    sig = signature(text)
    aid, _ = store.add_article(_article(7, text=text, minhash=sig), "http://e.org/7", _source(store, 7), 1.0, None)
    found = store.near_candidates(list(band_keys(sig)))
    assert [a for a, _ in found] == [aid] and bytes(found[0][1]) == sig


def test_check_finds_nothing_wrong_in_a_fresh_store(store):
    _add(store)
    assert store.check().ok


def test_sync_feeds_keeps_state(store):
    store.update_feed(store.feeds()[0].id, etag='"x"', state="ok")
    store.sync_feeds([("http://e.org/feed", "Renamed"), ("http://e.org/new", "")])
    rows = {f.config_url: f for f in store.feeds(active_only=False)}
    assert rows["http://e.org/feed"].etag == '"x"' and rows["http://e.org/feed"].name == "Renamed"
    store.sync_feeds([("http://e.org/new", "")])
    assert [f.config_url for f in store.feeds()] == ["http://e.org/new"]
    assert len(store.feeds(active_only=False)) == 3  # removed feeds keep their history


def test_model_window_keeps_the_newest_and_every_judged_page(store, monkeypatch):
    import ingest.store.pages
    from ingest.run.feedback import mark
    from ingest.store import Decision, PageDoc, unpack

    monkeypatch.setattr(ingest.store.pages, "STREAM_WINDOW", 3)
    monkeypatch.setattr(ingest.store.pages, "TRIM_SLACK", 0)  # trimmed at every page here
    feed = store.feeds()[0].id
    ids = []
    for i in range(6):
        doc = PageDoc(f"http://e.org/r{i}", f"http://e.org/r{i}", f"Rejected {i}", f"text number {i} here", "",
                      "", "en", None, f"h{i}")
        ids.append(store.record_page(f"http://e.org/r{i}", [Source(feed, f"r{i}", f"http://e.org/r{i}", "", None)],
                                     1000.0 + i, outcome="rejected", score=0.1, counts={"word": i + 1, f"t{i}": 1},
                                     decision=Decision(0.2, ("word",)), doc=doc))
        if i == 1:
            store.set_verdict(ids[1], "http://e.org/r1", False, 1001.5)  # judged while in the window
    window = dict(store.stream())
    assert set(window) == {ids[1], ids[3], ids[4], ids[5]}  # the 3 newest beyond the judged one, and it
    assert unpack(window[ids[5]]) == {"word": 6, "t5": 1}
    # a verdict on a page that had left the window puts it back, from its kept text
    mark(store, [f"p{ids[0]}"], True, 1010.0)
    window = dict(store.stream())
    assert ids[0] in window and unpack(window[ids[0]])["rejected"] == 2  # a title word counts twice


def test_host_memory_round_trip_and_expiry(store):
    store.save_host_memory({"a.example": 2000.0, "b.example": 500.0},
                           {"https://a.example": (5000.0, "rules", "User-agent: *\nDisallow: /x\n"),
                            "https://b.example": (900.0, "unreachable", None)}, now=1000.0)
    quiet, robots = store.host_memory(1000.0)
    assert quiet == {"a.example": 2000.0}  # b's window was over when saved
    assert robots == {"https://a.example": (5000.0, "rules", "User-agent: *\nDisallow: /x\n")}
    assert store.host_memory(1000.0, {"b.example"}) == ({}, {})  # a worker's leased hosts only
    assert store.host_memory(1000.0, {"a.example"})[1] == {"https://a.example": (5000.0, "rules",
                                                                                 "User-agent: *\nDisallow: /x\n")}
    store.save_host_memory({"a.example": 3000.0}, {}, now=1000.0)  # a later answer replaces the window
    assert store.host_memory(1000.0)[0] == {"a.example": 3000.0}
    assert store.host_memory(4000.0) == ({}, {"https://a.example": (5000.0, "rules", "User-agent: *\nDisallow: /x\n")})


def test_update_feed_takes_only_feed_columns(store):
    feed = store.feeds()[0]
    store.update_feed(feed.id, title="T", interval=60.0)
    assert store.feeds()[0].title == "T"
    with pytest.raises(ValueError, match="not feed columns"):
        store.update_feed(feed.id, **{"title=NULL, url": "x"})
    assert store.feeds()[0].url == "http://e.org/feed"


def test_deliveries_are_retried_until_sent(store):
    d1 = store.record_digest(0.0, 100.0, 3, None)
    d2 = store.record_digest(100.0, 200.0, 0, None)
    store.record_delivery(d1, "apprise:abc", 150.0, "HTTP 500")
    store.record_delivery(d2, "apprise:abc", 250.0, None)
    assert store.undelivered_digests("apprise:abc", since=0.0) == [d1]
    assert store.undelivered_digests("apprise:abc", since=150.0) == []  # older than the retry window
    assert store.undelivered_digests("email:me@example.org", since=0.0) == []  # never tried there
    store.record_delivery(d1, "apprise:abc", 300.0, None)
    assert store.undelivered_digests("apprise:abc", since=0.0) == []
    assert [r["id"] for r in store.digests_by_ids([d2, d1])] == [d1, d2]


def test_pages_by_urls(store):
    feed = store.feeds()[0]
    src = [Source(feed.id, "k", "http://e.org/p", "", None)]
    pid = store.record_page("http://e.org/p", src, 1000.0, outcome="empty", reason="no text")
    got = store.pages_by_urls(["http://e.org/p", "http://e.org/none"])
    assert list(got) == ["http://e.org/p"] and got["http://e.org/p"]["id"] == pid


def test_model_window_is_trimmed_in_batches(store, monkeypatch):
    """Pages leave the window a batch at a time (TRIM_SLACK past its size), not one per page: with
    several writers, decisions do not all queue on the oldest row."""
    import ingest.store.pages

    monkeypatch.setattr(ingest.store.pages, "STREAM_WINDOW", 3)
    monkeypatch.setattr(ingest.store.pages, "TRIM_SLACK", 2)
    feed = store.feeds()[0].id
    sizes = []
    for i in range(8):
        store.record_page(f"http://e.org/w{i}", [Source(feed, f"w{i}", f"http://e.org/w{i}", "", None)],
                          1000.0 + i, outcome="rejected", score=0.1, counts={"w": i + 1})
        sizes.append(len(store.stream()))
    assert sizes == [1, 2, 3, 4, 5, 3, 4, 5]  # grows to 3 + 2, then back to the newest 3


def test_a_feeds_changes_of_state_and_interval_are_its_history(store):
    """Each change of state or interval is recorded with when and why (the feed page shows them); an
    update that changes neither records nothing."""
    fid = store.feeds()[0].id
    store.update_feed(fid, state="ok", interval=1800.0, last_poll=1000.0)
    store.update_feed(fid, etag='"x"', last_poll=1100.0)  # neither changes
    store.update_feed(fid, state="error", state_reason="HTTP 500", last_poll=1200.0)
    history = [(h["at"], h["state"], h["interval"], h["reason"]) for h in store.feed_history(fid)]
    assert history == [(1200.0, "error", 1800.0, "HTTP 500"), (1000.0, "ok", 1800.0, "")]


def test_backfill_candidates_are_recorded_once_and_continue_where_a_run_stopped(store):
    """A site's candidates: each URL once (normalised), whichever source lists it again; the pending ones
    best pre-score first, unscored last; fetched ones never pending again; counts by source."""
    from datetime import UTC, datetime

    site = "http://e.org"
    first = [("http://e.org/a?utm_source=x", "sitemap", "http://e.org/sitemap.xml", datetime(2025, 1, 2, tzinfo=UTC),
              ""),
             ("http://e.org/b", "sitemap", "http://e.org/sitemap.xml", None, "Gold at Hyesan"),
             ("http://e.org/c", "feed", "http://e.org/feed?paged=2", None, "")]
    assert store.add_candidates(site, first, 100.0) == 3
    assert store.add_candidates(site, [("http://e.org/a", "link", "http://e.org/b", None, "")], 200.0) == 0
    rows = {r["link"]: r for r in store.pending_candidates(site)}
    assert set(rows) == {"http://e.org/a?utm_source=x", "http://e.org/b", "http://e.org/c"}
    assert rows["http://e.org/a?utm_source=x"]["date"].startswith("2025-01-02")
    store.set_prescores([(rows["http://e.org/c"]["id"], 0.9), (rows["http://e.org/a?utm_source=x"]["id"], 0.2)])
    assert [r["link"] for r in store.pending_candidates(site)] == ["http://e.org/c", "http://e.org/a?utm_source=x",
                                                                   "http://e.org/b"]
    store.mark_candidates_fetched([rows["http://e.org/c"]["id"]], 300.0)
    assert [r["link"] for r in store.pending_candidates(site, limit=1)] == ["http://e.org/a?utm_source=x"]
    assert store.candidate_counts(site) == {"sitemap": 2, "feed": 1, "archive": 0, "link": 0, "fetched": 1}
    assert store.pending_candidates("http://f.org") == []
    store.mark_candidates_fetched([rows["http://e.org/b"]["id"]], 400.0)
    assert store.backfill_fetched_since(250.0) == (2, 300.0)  # the service's daily budget: spent, and since when
    assert store.backfill_fetched_since(350.0) == (1, 400.0)
    assert store.backfill_fetched_since(500.0) == (0, None)


def test_backfill_never_offers_a_page_the_store_knows_and_remembers_each_site(store):
    """A candidate whose URL the store already holds as a page (polled, kept, rejected, given up) is not
    pending; one that failed fewer than MAX_PAGE_ATTEMPTS times is. A site's row keeps its state."""
    from ingest.store import MAX_PAGE_ATTEMPTS

    site = "http://e.org"
    links = [f"http://e.org/{c}" for c in "abcd"]
    store.add_candidates(site, [(u, "sitemap", "http://e.org/sitemap.xml", None, "") for u in links], 10.0)
    store.record_page("http://e.org/a", [], 11.0, outcome="rejected", score=0.1)
    store.record_page("http://e.org/b", [], 11.0, outcome="error", reason="HTTP 500")
    for _ in range(MAX_PAGE_ATTEMPTS):
        store.record_page("http://e.org/c", [], 11.0, outcome="error", reason="HTTP 500")
    assert [r["link"] for r in store.pending_candidates(site)] == ["http://e.org/b", "http://e.org/d"]
    ids = {r["link"]: r["id"] for r in store.pending_candidates(site)}
    store.record_page("http://e.org/d", [], 12.0, outcome="rejected", score=0.2)
    store.mark_candidates_fetched([ids["http://e.org/d"]], 12.0)
    assert store.backfill_outcomes(site) == {"rejected": 1}
    assert store.backfill_site(site) is None
    store.set_backfill_site(site, discovered=5.0, discovery_requests=7)
    store.set_backfill_site(site, stopped="yield", recent="0010")
    row = store.backfill_site(site)
    assert (row["discovered"], row["discovery_requests"], row["stopped"], row["recent"]) == (5.0, 7, "yield", "0010")
    assert [r["site"] for r in store.backfill_sites()] == [site]
    with pytest.raises(ValueError):
        store.set_backfill_site(site, **{"stopped = 'x' --": 1})


def test_archive_records_are_indexed_read_checked_and_pruned_on_both_backends(store, tmp_path):
    """The archive's index (ingest.store.archive_index) speaks the same SQL on SQLite and PostgreSQL."""
    from ingest.sources.exchange import Exchange

    pid = store.record_page("http://e.org/a", [], 10.0, outcome="rejected", score=0.1)
    ex = Exchange("http://e.org/a", "GET", (("Host", "e.org"),), "HTTP/1.1", 200, "OK",
                  (("Content-Type", "text/html"),), b"<html><body>gold</body></html>")
    writer = store.archive_writer(1 << 20)
    ref = writer.write((ex,), "rejected")
    store.index_record(pid, ref, "rejected")
    assert store.page_record(pid) == ref
    rows = store.archived_pages(None, [pid])
    assert [r["id"] for r in rows] == [pid] and rows[0]["r_offset"] == ref.offset
    assert store.archived_pages(11.0) == []  # fetched at 10
    assert store.check_archive() == ([], [])
    assert store.archive_size()[0] == 1
    store.close_archive()  # the file is no longer this process's: it may go
    import os

    path = store.root / "archive" / ref.file
    os.utime(path, (1.0, 1.0))
    size = path.stat().st_size
    assert store.prune_rejected_archive(100.0) == (1, size)
    assert store.page_record(pid) is None and not path.exists()
