"""Full-text search (SQLite FTS5) kept in step with the corpus, and the health check."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from tests.conftest import build_news_web, run_cli, stale_polls, write_config


def _setup(tmp_path, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 4
    return news, cfg


def _search(cfg, *args):
    r = run_cli("--config", str(cfg), "search", "--json", *args)
    assert r.code == 0, r.err
    return r.jsonl()


def test_search_ranks_highlights_and_understands_fts5_syntax(tmp_path, seeds_dir, web):
    _, cfg = _setup(tmp_path, web)
    hits = _search(cfg, "gold")
    assert hits and all(h["kind"] == "article" for h in hits)
    assert all("[gold]" in h["snippet"].lower() for h in hits)
    assert hits[0]["rank"] <= hits[-1]["rank"]  # best first
    # a title match outranks a text-only one
    titled = [h for h in hits if "gold" in h["title"].lower()]
    assert titled and hits[0] in titled
    phrase = _search(cfg, '"forced labor"')
    assert phrase and all("forced labor" in h["snippet"].lower().replace("[", "").replace("]", "")
                          for h in phrase)
    assert _search(cfg, "hyes*")  # prefix
    with_coal = {h["id"] for h in _search(cfg, "gold")} - {h["id"] for h in _search(cfg, "gold NOT sanctions")}
    assert with_coal  # NOT removes the sanctions story
    assert _search(cfg, "penalty") == []  # rejected pages are not in by default
    rejected = _search(cfg, "penalty", "--rejected")
    assert rejected and rejected[0]["kind"] == "page" and rejected[0]["id"].startswith("p")
    r = run_cli("--config", str(cfg), "search", '"unbalanced')
    assert r.code == 2 and "a quote is not closed" in r.err and "fts5" not in r.err
    for q in ("gold-mine", "S.A.", "Jong-un"):  # ordinary queries, not FTS5 syntax errors
        r = run_cli("--config", str(cfg), "search", q)
        assert r.code == 0 and "fts5" not in r.err and "no such column" not in r.err, (q, r.err)
    r = run_cli("--config", str(cfg), "search", "gold", "--limit", "1")
    assert r.code == 0 and r.out.count("\n") == 3  # one hit: title, URL, snippet


def test_search_follows_verdicts_updates_and_expiry(tmp_path, seeds_dir, web):
    news, cfg = _setup(tmp_path, web)
    (hit,) = [h for h in _search(cfg, "Hyesan") if "hyesan" in h["url"]]
    assert run_cli("--config", str(cfg), "mark", hit["id"], "--irrelevant").code == 0
    assert hit["id"] not in {h["id"] for h in _search(cfg, "Hyesan")}  # withdrawn: not in the corpus view
    assert run_cli("--config", str(cfg), "mark", hit["id"], "--relevant").code == 0
    assert hit["id"] in {h["id"] for h in _search(cfg, "Hyesan")}
    # rejected texts leave the index when they expire
    cfg.write_text(cfg.read_text() + '\n[relevance]\nkeep_rejected = "1s"\n')
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    db.execute("UPDATE pages SET fetched = fetched - 3600 WHERE outcome = 'rejected'")
    db.commit()
    db.close()
    run_cli("--config", str(cfg), "poll")
    assert _search(cfg, "penalty", "--rejected") == []


def test_an_older_store_is_back_filled(tmp_path, seeds_dir, web):
    _, cfg = _setup(tmp_path, web)
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    db.execute("DROP TABLE articles_fts")
    db.execute("DROP TABLE pages_fts")
    db.execute("UPDATE schema_version SET version = 3")
    db.commit()
    db.close()
    assert run_cli("--config", str(cfg), "poll").code == 0  # a writer migrates
    assert len(_search(cfg, "gold")) >= 3 and _search(cfg, "penalty", "--rejected")


def test_status_check_for_cron_and_containers(tmp_path, seeds_dir, web):
    _, cfg = _setup(tmp_path, web)
    r = run_cli("--config", str(cfg), "status", "--check")
    assert r.code == 0 and r.out.startswith("ok: last successful poll") and "store writable" in r.out
    stale_polls(tmp_path / "store", days=10)
    r = run_cli("--config", str(cfg), "status", "--check")
    assert r.code == 1 and r.out.startswith("unhealthy") and "no poll has succeeded" in r.out


def test_status_check_reports_an_unwritable_store(tmp_path, seeds_dir, web):
    _, cfg = _setup(tmp_path, web)
    store = tmp_path / "store"
    if subprocess.run(["chattr", "+i", str(store)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i (read-only even for root) is not available here")
    try:
        r = run_cli("--config", str(cfg), "status", "--check")
    finally:
        subprocess.run(["chattr", "-i", str(store)])
    assert r.code == 1 and "store not writable" in r.out
