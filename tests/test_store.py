"""Store: atomic corpus files, crash recovery, one writer, schema version."""

from __future__ import annotations

import os
import sqlite3

import pytest

from ingest.store import SCHEMA_VERSION, NewArticle, Source, Store, StoreError


def _article(n: int = 1, **kw) -> NewArticle:
    base = dict(url=f"http://e.org/{n}", canonical_url=f"http://e.org/{n}", title=f"Title {n}", author="",
                site="", language="en", published=None, text=f"Body {n}.\n\nSecond paragraph.",
                text_hash=f"h{n}", score=0.5, threshold=0.2, terms=("gold",))
    return NewArticle(**{**base, **kw})


def _add(store: Store, n: int = 1):
    feed = store.db.execute("SELECT id FROM feeds").fetchone()[0]
    return store.add_article(_article(n), f"http://e.org/{n}", [Source(feed, f"k{n}", f"http://e.org/{n}", "", None)],
                             1000.0, None)


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "store")
    s.sync_feeds([("http://e.org/feed", "")], 0)
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


def test_sync_feeds_keeps_state(store):
    store.update_feed(1, etag='"x"', state="ok")
    store.sync_feeds([("http://e.org/feed", "Renamed"), ("http://e.org/new", "")], 0)
    rows = {f.config_url: f for f in store.feeds(active_only=False)}
    assert rows["http://e.org/feed"].etag == '"x"' and rows["http://e.org/feed"].name == "Renamed"
    store.sync_feeds([("http://e.org/new", "")], 0)
    assert [f.config_url for f in store.feeds()] == ["http://e.org/new"]
    assert len(store.feeds(active_only=False)) == 2  # a removed feed keeps its history
