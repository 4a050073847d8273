"""Store: atomic corpus files, crash recovery, one writer, schema version."""

from __future__ import annotations

import os
import sqlite3

import pytest

from ingest.store import SCHEMA_VERSION, NewArticle, Source, Store, StoreError
from ingest.text.fingerprint import text_hash


def _article(n: int = 1, **kw) -> NewArticle:
    text = f"Body {n}.\n\nSecond paragraph."
    base = {"url": f"http://e.org/{n}", "canonical_url": f"http://e.org/{n}", "title": f"Title {n}", "author": "",
                "site": "", "language": "en", "published": None, "text": text,
                "text_hash": text_hash(text), "score": 0.5, "threshold": 0.2, "terms": ("gold",)}
    return NewArticle(**{**base, **kw})


def _add(store: Store, n: int = 1):
    feed = store.db.execute("SELECT id FROM feeds").fetchone()[0]
    return store.add_article(_article(n), f"http://e.org/{n}", [Source(feed, f"k{n}", f"http://e.org/{n}", "", None)],
                             1000.0, None)


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "store")
    s.sync_feeds([("http://e.org/feed", "")])
    yield s
    s.close()


def _leftovers(store: Store) -> list[str]:
    return [p.name for p in store.corpus.iterdir() if p.name.startswith(".tmp-")]


def test_article_file_in_seed_format(store):
    aid, path = _add(store)
    assert (store.root / path).read_text(encoding="utf-8") == "Title 1\n\nBody 1.\n\nSecond paragraph.\n"
    assert path.startswith("corpus/000_") and _leftovers(store) == []


def test_failed_commit_leaves_no_file(store, monkeypatch):
    def broken(*a, **kw):
        raise sqlite3.OperationalError("disk I/O error (injected)")

    monkeypatch.setattr(store, "record_entries", broken)
    with pytest.raises(sqlite3.OperationalError):
        _add(store)
    assert list(store.corpus.iterdir()) == []  # neither the final nor the temp file
    assert store.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 0
    monkeypatch.undo()
    _, path = _add(store)
    assert path.startswith("corpus/000_")  # the number was not burnt


def test_crash_between_commit_and_rename_is_repaired(tmp_path, store, monkeypatch):
    def crash(*a, **kw):
        raise KeyboardInterrupt("killed (injected)")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        _add(store)
    monkeypatch.undo()
    assert len(_leftovers(store)) == 1 and not list(store.corpus.glob("0*.txt"))
    store.close()
    reopened = Store.open(tmp_path / "store")  # recovery finishes the rename
    try:
        path = reopened.db.execute("SELECT path FROM articles").fetchone()[0]
        assert (reopened.root / path).read_text(encoding="utf-8").startswith("Title 1\n\n")
        assert _leftovers(reopened) == []
    finally:
        reopened.close()


def test_uncommitted_update_is_discarded_committed_one_kept(tmp_path, store, monkeypatch):
    aid, path = _add(store)
    src = [Source(1, "k1", "http://e.org/1", "", None)]

    def crash(*a, **kw):
        raise KeyboardInterrupt("killed (injected)")

    # killed before the commit: the temp file holds text the row does not know
    monkeypatch.setattr(store, "_upsert_page", crash)
    with pytest.raises(KeyboardInterrupt):
        store.update_article(aid, "Title 1", "New body.", text_hash("New body."), None, "http://e.org/1", src, 2.0)
    monkeypatch.undo()
    # killed after the commit, before the rename
    monkeypatch.setattr(os, "replace", crash)
    (store.corpus / (".tmp-" + path.split("/")[1])).write_text("Title 1\n\nStale body.\n")
    with pytest.raises(KeyboardInterrupt):
        store.update_article(aid, "Title 2", "Newer body.", text_hash("Newer body."), None, "http://e.org/1",
                             src, 3.0)
    monkeypatch.undo()
    store.close()
    reopened = Store.open(tmp_path / "store")
    try:
        assert (reopened.root / path).read_text(encoding="utf-8") == "Title 2\n\nNewer body.\n"
        assert reopened.article(aid)["revisions"] == 1
        assert _leftovers(reopened) == []
    finally:
        reopened.close()


def test_orphan_temp_file_is_removed(tmp_path, store):
    (store.corpus / ".tmp-007_abcdef0123456789.txt").write_text("half")
    store.close()
    reopened = Store.open(tmp_path / "store")
    assert _leftovers(reopened) == []
    reopened.close()


def test_one_writer_per_store(tmp_path, store):
    with pytest.raises(StoreError, match="another ingest process is using this store"):
        Store.open(tmp_path / "store")
    reader = Store.open(tmp_path / "store", writer=False)  # readers are welcome
    reader.close()


def test_newer_schema_is_refused(tmp_path, store):
    store.db.execute("UPDATE schema_version SET version=?", (SCHEMA_VERSION + 1,))
    store.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(tmp_path / "store")


def test_fetcher_recalls_what_the_store_remembers():
    import time

    from ingest.config import FetchSettings
    from ingest.sources.fetch import Fetcher, HostMemory

    now = time.time()
    f = Fetcher(FetchSettings())
    f.recall(HostMemory({"quiet.example": now + 600, "over.example": now - 1},
                        {"https://r.example": (now + 3600, "rules", "User-agent: *\nDisallow: /private/\n")}))
    assert f.host_quiet_until("https://quiet.example/a") == pytest.approx(now + 600)
    assert f.host_quiet_until("https://over.example/a") == 0.0
    assert f.remember() == HostMemory()  # nothing new learned yet


def test_schema_6_drops_site_names_that_hold_a_urls_userinfo(tmp_path):
    """trafilatura's site-name fallback was the URL's netloc, user:password@ included: the upgrade drops
    such names (every output then labels the site by its host)."""
    import sqlite3

    store = Store.open(tmp_path)
    store.close()
    db = sqlite3.connect(tmp_path / "ingest.db")
    db.execute("INSERT INTO articles (id, number, url, canonical_url, title, site, text_hash, score, threshold, "
               "terms, fetched, path) VALUES (1, 1, 'http://u:S3cretPW@e.org/a', 'http://e.org/a', 't', "
               "'u:S3cretPW@e.org', 'h', 1, 0, '[]', 0, 'corpus/a.txt'), (2, 2, 'http://f.org/b', 'http://f.org/b', "
               "'t', 'Example News', 'h2', 1, 0, '[]', 0, 'corpus/b.txt')")
    db.execute("UPDATE schema_version SET version = 5")
    db.commit()
    db.close()
    (tmp_path / "corpus" / "a.txt").write_text("t\n\nx\n")
    (tmp_path / "corpus" / "b.txt").write_text("t\n\nx\n")
    with Store.open(tmp_path) as store:
        assert [r[0] for r in store.db.execute("SELECT site FROM articles ORDER BY id")] == ["", "Example News"]
