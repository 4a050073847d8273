"""Articles an unlucky or hostile web used to lose: URL evidence that merged or overwrote
different stories, normalisation that changed what was fetched, deferrals counted as
failed attempts, a lost index silently recreated, short copies stored twice."""

from __future__ import annotations

import sqlite3

from tests.conftest import run_cli, write_config
from tests.support.web import Host, article_page, article_text, atom, rss

KEEP_ALL = "[relevance]\nthreshold = 0\n"


def _feed(host, items, name="feed.xml", kind=rss, **kw) -> str:
    return host.add(f"/{name}", kind("F", items), content_type="application/rss+xml", **kw)


def _corpus(tmp_path) -> list[str]:
    return sorted(p.read_text(encoding="utf-8") for p in (tmp_path / "store" / "corpus").glob("*.txt"))


def _pages(tmp_path) -> dict[str, sqlite3.Row]:
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    db.row_factory = sqlite3.Row
    return {r["url"]: r for r in db.execute("SELECT * FROM pages")}


def test_a_canonical_pointing_at_the_home_page_merges_nothing(tmp_path, seeds_dir, web):
    h = web.host(2)
    items = []
    for name in ("on_hyesan_gold", "on_sanctions_gold", "on_mine_collapse"):
        title, body = article_text(name)
        url = h.add(f"/{name}.html", article_page(title, body, canonical=h.url("/")))  # a careless CMS
        items.append({"title": title, "link": url, "guid": name})
    cfg = write_config(tmp_path, [_feed(h, items)], KEEP_ALL)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 3 and s["duplicates"] == 0
    texts = _corpus(tmp_path)
    for name in ("on_hyesan_gold", "on_sanctions_gold", "on_mine_collapse"):
        assert sum(article_text(name)[1][:80] in t for t in texts) == 1


def test_a_page_claiming_another_articles_canonical_does_not_suppress_it(tmp_path, seeds_dir, web):
    real_host, evil = web.host(2), web.host(3)
    title, body = article_text("on_hyesan_gold")
    real = real_host.add("/story.html", article_page(title, body))
    other_title, other_body = article_text("off_football")
    fake = evil.add("/copy.html", article_page(other_title, other_body, canonical=real))
    cfg = write_config(tmp_path, [_feed(evil, [{"title": "x", "link": fake, "guid": "x"}])], KEEP_ALL)
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 1
    # the real article arrives later, at the URL the other page claimed
    cfg = write_config(tmp_path, [_feed(evil, [{"title": "x", "link": fake, "guid": "x"}]),
                                  _feed(real_host, [{"title": title, "link": real, "guid": "r"}])], KEEP_ALL)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 1 and s["duplicates"] == 0
    texts = _corpus(tmp_path)
    assert len(texts) == 2 and any(body[:80] in t for t in texts) and any(other_body[:80] in t for t in texts)
    exported = {a["url"] for a in run_cli("--config", str(cfg), "export").jsonl()}
    assert exported == {real, fake}


def test_an_update_that_is_another_story_does_not_overwrite_a_stored_article(tmp_path, seeds_dir, web):
    h = web.host(2)
    ta, a = article_text("on_hyesan_gold")
    tb, b = article_text("on_sanctions_gold")
    tc, c = article_text("on_mine_collapse")
    pa = h.add("/a.html", article_page(ta, a))
    pb = h.add("/b.html", article_page(tb, b))
    items = [{"title": ta, "link": pa, "guid": "a", "iso": "2026-11-20T08:00:00Z"},
             {"title": tb, "link": pb, "guid": "b", "iso": "2026-11-20T08:00:00Z"}]
    feed = _feed(h, items, kind=atom)
    cfg = write_config(tmp_path, [feed], KEEP_ALL)
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 2
    # entry a is "updated": its page now carries another story and claims b's URL as canonical
    h.add("/a.html", article_page(tc, c, canonical=pb))
    items[0]["iso"] = "2026-11-21T08:00:00Z"
    _feed(h, items, kind=atom)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["updated"] == 0 and s["kept"] == 1
    texts = _corpus(tmp_path)
    assert len(texts) == 3
    for body in (a, b, c):  # nothing overwritten: a and b as they were, c as a new article
        assert sum(body[:80] in t for t in texts) == 1


def test_an_update_of_the_same_story_is_rewritten_in_place(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/a.html", article_page(title, body))
    items = [{"title": title, "link": page, "guid": "a", "iso": "2026-11-20T08:00:00Z"}]
    cfg = write_config(tmp_path, [_feed(h, items, kind=atom)], KEEP_ALL)
    run_cli("--config", str(cfg), "poll")
    edited = body + "\n\nUpdate: the provincial authorities did not answer requests for comment on Tuesday."
    h.add("/a.html", article_page(title, edited))
    items[0]["iso"] = "2026-11-21T08:00:00Z"
    _feed(h, items, kind=atom)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["updated"] == 1 and s["kept"] == 0
    (text,) = _corpus(tmp_path)
    assert "did not answer requests for comment" in text


def test_query_parameters_that_select_content_are_fetched_as_given(tmp_path, seeds_dir, web):
    h = web.host(2)
    items = []
    for i, name in enumerate(("on_hyesan_gold", "on_sanctions_gold", "on_mine_collapse"), start=1):
        title, body = article_text(name)
        h.add(f"/view.php?cid={i}&ref=rss", article_page(title, body))
        items.append({"title": title, "link": h.url(f"/view.php?cid={i}&ref=rss"), "guid": f"g{i}"})
    h.add("/view.php", "<html><body><p>index</p></body></html>")
    cfg = write_config(tmp_path, [_feed(h, items)], KEEP_ALL)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 3
    assert sorted(r.path for r in h.requests if r.path.startswith("/view.php")) == \
        [f"/view.php?cid={i}&ref=rss" for i in (1, 2, 3)]
    # tracking parameters alone still make one page: same identity, one fetch
    title, body = article_text("on_forced_labour_report")
    page = h.add("/report.html", article_page(title, body))
    items = [{"title": title, "link": page + "?utm_source=rss&utm_medium=feed", "guid": "r1"},
             {"title": title, "link": page + "?fbclid=abc", "guid": "r2"}]
    cfg = write_config(tmp_path, [_feed(h, items, name="two.xml")], KEEP_ALL)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 1 and len([r for r in h.requests if r.path.startswith("/report.html")]) == 1


def test_deferred_pages_are_not_attempts_and_are_fetched_when_allowed(tmp_path, seeds_dir, web):
    """A host's Retry-After is checked when each request's turn comes: pages queued behind a 429
    are deferred, never sent, never counted as failures, and fetched once the host allows it,
    even when the feed no longer lists them."""
    feeds_host, pages_host = web.host(2), web.host(3)
    items = []
    names = ("on_hyesan_gold", "on_sanctions_gold", "on_mine_collapse")
    for i, name in enumerate(names):
        title, body = article_text(name)
        items.append({"title": title, "link": pages_host.url(f"/p{i}.html"), "guid": name})
        pages_host.add(f"/p{i}.html", "busy", status=429, content_type="text/plain",
                       headers={"Retry-After": "3600"})
    feed = _feed(feeds_host, items)
    cfg = write_config(tmp_path, [feed], KEEP_ALL)
    # per_host = 1: the pages queue one behind the other on their host
    cfg.write_text(cfg.read_text().replace("robots = false", "robots = false\nper_host = 1"))
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert len([r for r in pages_host.requests if r.path.startswith("/p")]) == 1  # the others never went out
    # the one that went out was answered "later, in an hour": deferred too, not a failure
    assert s["deferred"] == 3 and s["page_errors"] == 0
    pages = _pages(tmp_path)
    deferred = [p for p in pages.values() if p["outcome"] == "deferred"]
    assert len(deferred) == 3 and all(p["attempts"] == 0 for p in deferred)
    # more polls while the host says "later" (each a new process: the store remembers the window): no
    # request goes out, and no attempt is added to any of them
    sent = len(pages_host.requests)
    for _ in range(3):
        run_cli("--config", str(cfg), "poll")
    assert len(pages_host.requests) == sent
    pages = _pages(tmp_path)
    assert sorted(p["attempts"] for p in pages.values() if p["outcome"] == "deferred") == [0, 0, 0]
    # the host recovers and its hour has passed (the stored time is the clock here); the feed
    # has dropped the entries meanwhile: the deferred pages are fetched all the same
    for i, name in enumerate(names):
        pages_host.add(f"/p{i}.html", article_page(*article_text(name)))
    _feed(feeds_host, [])
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    db.execute("UPDATE pages SET retry_at = 0 WHERE outcome = 'deferred'")
    db.execute("DELETE FROM hosts")
    db.commit()
    db.close()
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 3 and s["deferred"] == 0
    exported = run_cli("--config", str(cfg), "export").jsonl()
    assert len(exported) == 3 and all(a["feeds"] == [feed] for a in exported)  # provenance kept


def test_unreadable_robots_txt_defers_and_is_asked_again_soon(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/a.html", article_page(title, body))
    h.add("/robots.txt", "oops", status=503, content_type="text/plain")
    cfg = write_config(tmp_path, [_feed(h, [{"title": title, "link": page, "guid": "a"}])], KEEP_ALL)
    cfg.write_text(cfg.read_text().replace("robots = false", "robots = true"))
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["deferred"] == 1 and s["blocked"] == 0 and s["page_errors"] == 0 and not h.hits("/a.html")
    (row,) = list(_pages(tmp_path).values())
    assert row["outcome"] == "deferred" and row["attempts"] == 0
    assert row["retry_at"] - row["fetched"] <= 600  # minutes, not an hour


def test_a_missing_or_empty_index_next_to_corpus_files_is_refused(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/a.html", article_page(title, body))
    cfg = write_config(tmp_path, [_feed(h, [{"title": title, "link": page, "guid": "a"}])], KEEP_ALL)
    run_cli("--config", str(cfg), "poll")
    store = tmp_path / "store"
    files = sorted((store / "corpus").glob("*.txt"))
    for f in store.glob("ingest.db*"):
        f.unlink()
    for args in (("poll",), ("status",), ("export",)):
        r = run_cli("--config", str(cfg), *args)
        assert r.code == 1 and "ingest.db is missing" in r.err and "corpus file" in r.err, args
    assert not (store / "ingest.db").exists() and sorted((store / "corpus").glob("*.txt")) == files
    (store / "ingest.db").write_bytes(b"")
    r = run_cli("--config", str(cfg), "poll")
    assert r.code == 1 and "is empty (0 bytes)" in r.err
    assert (store / "ingest.db").stat().st_size == 0


def test_check_reports_and_repairs_what_is_safe(tmp_path, seeds_dir, web):
    h = web.host(2)
    items = []
    for name in ("on_hyesan_gold", "on_sanctions_gold"):
        title, body = article_text(name)
        items.append({"title": title, "link": h.add(f"/{name}.html", article_page(title, body)), "guid": name})
    cfg = write_config(tmp_path, [_feed(h, items)], KEEP_ALL)
    run_cli("--config", str(cfg), "poll")
    r = run_cli("--config", str(cfg), "check")
    assert r.code == 0 and "store is consistent" in r.err
    corpus = tmp_path / "store" / "corpus"
    gone = sorted(corpus.glob("*.txt"))[0]
    gone.unlink()  # deleted by hand
    (corpus / "999_stray.txt").write_text("a file no row knows\n\ntext\n", encoding="utf-8")
    (corpus / ".tmp-998_x.txt").write_text("half written", encoding="utf-8")
    r = run_cli("--config", str(cfg), "check", "--json")
    report = r.json()
    assert r.code == 1 and not report["ok"]
    assert any(gone.name in m for m in report["missing"])
    assert report["orphans"] == ["corpus/999_stray.txt"] and report["temp_files"] == ["corpus/.tmp-998_x.txt"]
    r = run_cli("--config", str(cfg), "check", "--repair")
    assert r.code == 1  # the missing file can only come back from a backup
    assert "orphans/" in r.out and "missing file" in r.out
    assert (tmp_path / "store" / "orphans" / "999_stray.txt").exists()
    assert not list(corpus.glob(".tmp-*"))


def test_short_copies_that_lost_a_paragraph_are_one_story(tmp_path, seeds_dir, web):
    a, b = web.host(2), web.host(3)
    paras = ["North Korea sent about 300 prisoners to a gold mine near Hyesan this month, a defector group said.",
             "The group said the prisoners work twelve-hour shifts without pay or safety equipment.",
             "Officials in Pyongyang did not respond to a request for comment."]
    title = "Prisoners sent to Hyesan gold mine"
    full = a.add("/full.html", article_page(title, "\n\n".join(paras)))
    cut = b.add("/cut.html", article_page(title, "\n\n".join(paras[:2])))  # lost its last paragraph
    other = a.add("/other.html", article_page("Coal exports fall", "North Korea's coal exports fell by a third "
                                              "this year, customs data showed, as sanctions tightened on "
                                              "shipments through Chinese ports.\n\nTraders expect prices to rise "
                                              "again next spring, officials in Dandong said on Monday."))
    cfg = write_config(tmp_path, [_feed(a, [{"title": title, "link": full, "guid": "f"},
                                            {"title": "c", "link": other, "guid": "o"}]),
                                  _feed(b, [{"title": title, "link": cut, "guid": "c"}])], KEEP_ALL)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 2 and s["duplicates"] == 1


def test_schema_2_store_is_migrated_and_reindexed(tmp_path, seeds_dir, web):
    """A store of the previous release gains the deferral columns; its near-duplicate index is
    rebuilt for the new banding, so old articles still catch their copies."""
    from ingest.text import fingerprint

    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/a.html", article_page(title, body))
    cfg = write_config(tmp_path, [_feed(h, [{"title": title, "link": page, "guid": "a"}])], KEEP_ALL)
    run_cli("--config", str(cfg), "poll")
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    db.execute("DROP INDEX pages_retry")
    for col in ("retry_at", "deferred_since", "pending"):
        db.execute(f"ALTER TABLE pages DROP COLUMN {col}")
    db.execute("DELETE FROM lsh")
    db.execute("INSERT INTO lsh SELECT 12345, id FROM articles")  # an old band key
    db.execute("UPDATE schema_version SET version = 2")
    db.commit()
    db.close()
    copy = web.host(3).add("/copy.html", article_page("Copy: " + title, body + "\n\nRead more on our site."))
    cfg = write_config(tmp_path, [_feed(h, [{"title": title, "link": page, "guid": "a"}]),
                                  _feed(web.host(3), [{"title": title, "link": copy, "guid": "c"}])], KEEP_ALL)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["duplicates"] == 1 and s["kept"] == 0
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    assert db.execute("SELECT COUNT(*) FROM lsh").fetchone()[0] == fingerprint.BANDS
    assert {r[1] for r in db.execute("PRAGMA table_info(pages)")} >= {"retry_at", "deferred_since", "pending"}


def test_host_router_ignores_unknown_query_like_a_real_server(web):
    """The test web itself: a route without a query answers links carrying tracking parameters."""
    h: Host = web.host(2)
    h.add("/x.html", "x")
    import httpx

    assert httpx.get(h.url("/x.html?utm_source=a")).text == "x"
