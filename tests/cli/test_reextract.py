"""`ingest reextract`: extraction and decisions again from the WARC archive, with the web gone."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import REPO, build_news_web, run_cli, write_config

pytestmark = pytest.mark.slow


def test_reextract_rewrites_changed_texts_from_the_archive_without_the_network(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3])
    assert run_cli("--config", str(cfg), "poll").code == 0
    store = tmp_path / "store"
    db = sqlite3.connect(store / "ingest.db")
    aid, path, title = db.execute("SELECT id, path, title FROM articles ORDER BY id LIMIT 1").fetchone()
    truth = (store / path).read_text(encoding="utf-8")
    # as an older extractor would have stored it: the same article with its text cut short
    stale = f"{title}\n\n{truth.split(chr(10) + chr(10), 2)[1]}\n"
    (store / path).write_text(stale, encoding="utf-8")
    db.execute("UPDATE articles SET text_hash = 'older-extractor' WHERE id = ?", (aid,))
    db.commit()
    kept_before = {r[0] for r in db.execute("SELECT id FROM articles WHERE withdrawn IS NULL")}
    archived = db.execute("SELECT COUNT(*) FROM archive_records").fetchone()[0]
    db.close()
    web.close()  # no network from here on: every page comes from store/archive/
    original = subprocess.run([sys.executable, "-m", "ingest", "--config", str(cfg), "show", f"a{aid}",
                               "--original"], cwd=REPO, capture_output=True, timeout=60)
    assert original.returncode == 0 and b"<html" in original.stdout.lower()
    assert title.encode() in original.stdout  # the page as fetched, bytes as stored
    shown = run_cli("--config", str(cfg), "show", f"a{aid}")
    assert shown.code == 0 and "archived copy: " in shown.out and f"article a{aid}" in shown.out

    dry = run_cli("--config", str(cfg), "reextract", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    d = dry.json()
    assert d["dry_run"] and d["pages"] == archived >= 4 and d["unreadable"] == 0 and d["changed"] == 1, d
    assert (store / path).read_text(encoding="utf-8") == stale  # a dry run changes nothing

    res = run_cli("--config", str(cfg), "reextract", "--json")
    assert res.code == 0, res.err
    r = res.json()
    assert r["changed"] == 1 and r["joined"] == 0 and r["left"] == 0, r
    assert (store / path).read_text(encoding="utf-8") == truth  # rewritten from the archived page
    db = sqlite3.connect(store / "ingest.db")
    assert {r[0] for r in db.execute("SELECT id FROM articles WHERE withdrawn IS NULL")} == kept_before
    db.close()
    again = run_cli("--config", str(cfg), "reextract", "--id", f"a{aid}")
    assert again.code == 0 and "read 1 archived page(s)" in again.out and "0 text(s) changed" in again.out
    assert run_cli("--config", str(cfg), "check").code == 0
    bad = run_cli("--config", str(cfg), "reextract", "--id", "a99999")
    assert bad.code == 2 and "no such page or article" in bad.err


def test_an_article_a_poor_extraction_took_out_joins_again_when_reextracted(tmp_path, seeds_dir, web):
    """An older extractor's text (here: the page's footer alone) made the model drop an on-topic article;
    re-extracted from the archive, its real text passes and it joins the corpus again."""
    from ingest.config import load_config
    from ingest.store import open_store

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3])
    assert run_cli("--config", str(cfg), "poll").code == 0
    with open_store(load_config(cfg)) as store:
        art = next(a for a in store.articles() if "Hyesan" in a["title"] or "gold" in a["title"].lower())
        aid = art["id"]
        store.update_article(aid, art["title"], "Privacy policy. Cookie settings. Subscribe to our newsletter.",
                             "older-extractor", None, art["url"], [], 1.0)
        store.withdraw_article(aid, "rescore", 2.0)  # what the model did with that text
    web.close()
    res = run_cli("--config", str(cfg), "reextract", "--json")
    assert res.code == 0, res.err
    r = res.json()
    assert r["changed"] >= 1 and r["joined"] >= 1 and r["left"] == 0
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    assert db.execute("SELECT withdrawn FROM articles WHERE id = ?", (aid,)).fetchone()[0] is None
    path = db.execute("SELECT path FROM articles WHERE id = ?", (aid,)).fetchone()[0]
    assert "Privacy policy" not in (tmp_path / "store" / path).read_text(encoding="utf-8")
    assert run_cli("--config", str(cfg), "check").code == 0
