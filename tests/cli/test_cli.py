"""The score, export and status commands, and the help that documents them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, build_news_web, run_cli, write_config
from tests.support.web import FIXTURES


def test_score_json_lines(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [])
    files = sorted((FIXTURES / "articles").glob("*.txt"))
    r = run_cli("--config", str(cfg), "score", "--json", *map(str, files))
    assert r.code == 0, r.err
    rows = r.jsonl()
    assert [row["path"] for row in rows] == [str(f) for f in files]
    for row in rows:
        assert set(row) == {"path", "score", "relevant", "threshold", "terms"}
        assert row["relevant"] == Path(row["path"]).name.startswith("on_")
        assert row["relevant"] == (row["score"] >= row["threshold"])
    hyesan = next(r for r in rows if "hyesan" in r["path"])
    assert {"gold", "mining"} <= set(hyesan["terms"])
    # nothing was written by scoring
    assert not list((tmp_path / "store" / "corpus").glob("*.txt"))


def test_score_stdin(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [])
    text = (FIXTURES / "articles" / "on_sanctions_gold.txt").read_text()
    p = subprocess.run([sys.executable, "-m", "ingest", "--config", str(cfg), "score", "--json", "-"],
                       input=text, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert p.returncode == 0, p.stderr
    assert '"path": "-"' in p.stdout


@pytest.mark.slow
def test_score_matches_poll_decisions(tmp_path, seeds_dir, web):
    """`score` on the texts a poll sees, on an equal (fresh) store, makes the poll's decisions, learning
    from the texts it scores as the poll's window does."""
    import httpx

    from ingest.text.analysis import analyse
    from ingest.text.corpus import render

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    assert run_cli("--config", str(cfg), "poll", "--json").code == 0
    kept_urls = {a["url"] for a in run_cli("--config", str(cfg), "export").jsonl()}
    other = tmp_path / "other"
    other.mkdir()
    (other / "seeds").symlink_to(seeds_dir)
    files = {}
    for name, url in news.pages.items():
        analysed = analyse(httpx.get(url).content, url)
        files[url] = other / f"{name}.txt"
        files[url].write_text(render(analysed.title, analysed.text), encoding="utf-8")
    rows = run_cli("--config", str(write_config(other, [])), "score", "--json", *map(str, files.values())).jsonl()
    decided = {row["path"]: row for row in rows}
    # the same decisions, under the model that has seen these texts: the one `rescore` learns from the
    # poll's window now (the poll itself decided them with the model of an empty window)
    rescored = run_cli("--config", str(cfg), "rescore", "--json").json()
    assert {row["threshold"] for row in rows} == {rescored["threshold"]}
    assert rescored["join"] == rescored["leave"] == []
    for url, f in files.items():
        assert decided[str(f)]["relevant"] == (url in kept_urls), url


@pytest.mark.slow
def test_export_fields(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    run_cli("--config", str(cfg), "poll")
    rows = run_cli("--config", str(cfg), "export").jsonl()
    assert len(rows) == 4
    for row in rows:
        assert {"id", "url", "canonical_url", "title", "text", "author", "published", "fetched", "feeds",
                "score", "path"} <= set(row)
        assert row["text"] and row["title"] and row["path"].startswith("corpus/")
        assert (tmp_path / "store" / row["path"]).read_text(encoding="utf-8").startswith(row["title"] + "\n\n")
    hyesan = next(r for r in rows if r["url"] == news.pages["on_hyesan_gold"])
    assert sorted(hyesan["feeds"]) == sorted(news.feeds[:2])
    assert hyesan["author"] == "Staff Reporter" and hyesan["published"].startswith("2026-11-20")


def test_status_json_and_text(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    before = run_cli("--config", str(cfg), "status", "--json").json()
    assert [f["state"] for f in before] == ["new"] * 5
    run_cli("--config", str(cfg), "poll")
    rows = {f["url"]: f for f in run_cli("--config", str(cfg), "status", "--json").json()}
    a = rows[news.feeds[0]]
    assert a["state"] == "ok" and a["entries_seen"] == 4 and a["articles_kept"] == 2
    assert a["last_poll"] and a["last_success"] and a["last_error"] is None
    text = run_cli("--config", str(cfg), "status").out
    assert "HTTP 500" in text and news.feeds[0] in text
    assert "relevance: cosine" in text and "window of 8 recent pages" in text and "0 relevant, 0 not" in text


def test_help_reads_like_docs():
    r = subprocess.run([sys.executable, "-m", "ingest", "--help"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0
    for cmd in ("poll", "score", "export", "status", "review", "mark", "rescore", "seeds"):
        assert cmd in r.stdout
    r = subprocess.run([sys.executable, "-m", "ingest", "score", "--help"], capture_output=True, text=True, cwd=REPO)
    assert "same store" in r.stdout


def test_mistyped_commands_and_options_are_named_with_the_nearest_real_one(tmp_path):
    """`ingest pol`, `ingest mark p3 --relavant`, `ingest serve --port 9000`, a feed URL without its
    scheme: each answer names the mistake and what was meant (exit 2), as config typos already do."""
    cfg = tmp_path / "config.toml"
    cfg.write_text("", encoding="utf-8")
    cases = {("pol",): "did you mean `ingest poll`?",
             ("feeds", "ad", "x"): "did you mean `ingest feeds add`?",
             ("mark", "p3", "--relavant"): "no option --relavant; did you mean --relevant?",
             ("serve", "--port", "9000"): "no option --port; did you mean --listen?",
             ("poll", "--jsn"): "did you mean --json?",
             ("feeds", "add", "127.0.0.1:18431/feeds/world.xml"): "did you mean http://127.0.0.1:18431/feeds/world.xml?"}
    for args, said in cases.items():
        r = run_cli("--config", str(cfg), *args)
        assert r.code == 2 and said in r.err, (args, r.err)
    assert run_cli("--config", str(cfg), "--log-level", "debug", "status", "--json").code == 0  # values are no typos


def test_a_missing_config_points_to_something_a_pip_user_has(tmp_path):
    """The error names `ingest example-config`, which prints an annotated config that loads as it is
    and holds every key of the schema."""
    from ingest.config import load_config
    from ingest.config.schema import KEYS

    missing = tmp_path / "config.toml"
    r = run_cli("--config", str(missing), "status")
    assert r.code == 2 and f"ingest example-config > {missing}" in r.err and "docs/" not in r.err
    r = run_cli("--config", str(missing), "example-config")
    assert r.code == 0
    missing.write_text(r.out, encoding="utf-8")
    assert load_config(missing).feeds == ()  # it loads as it is; `feeds add` appends the feeds
    assert all(f"{k.name} = " in r.out for k in KEYS)
    r = run_cli("--config", str(missing), "feeds", "add", "http://127.0.0.1:9/feed.xml")  # nothing listens there
    assert r.code == 1 and load_config(missing).feeds == ()
