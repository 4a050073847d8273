"""`ingest poll` on a terminal shows a progress bar (a plain line every ~10 s when stderr is not one);
`--log-format json` writes one JSON object per log line."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from tests.conftest import REPO, build_news_web, run_cli, write_config

pytestmark = pytest.mark.slow  # subprocesses and whole polls: left out by -m "not slow"


def test_log_format_json(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds + ["http://user:hunter2@127.0.0.7:9/feed.xml?token=t0ps3cret"])
    log = tmp_path / "log.jsonl"
    r = run_cli("--config", str(cfg), "--log-file", str(log), "--log-format", "json", "poll")
    assert r.code == 0
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    kept = [x for x in lines if x.get("event") == "kept"]
    assert len(kept) == 4 and all(float(x["score"]) >= float(x["threshold"]) for x in kept)
    errors = [x for x in lines if x.get("event") == "feed_error"]
    assert len(errors) == 3 and all(x["level"] == "WARNING" and x["feed"] for x in errors)
    text = log.read_text(encoding="utf-8")
    assert "hunter2" not in text and "t0ps3cret" not in text


def _poll(cfg, tty: bool) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120", "TERM": "xterm"}
    cmd = [sys.executable, "-m", "ingest", "--config", str(cfg), "poll"]
    if not tty:
        p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed (the process is gone)
            break
        if not data:
            break
        chunks.append(data)
    out = p.stdout.read()
    p.wait(timeout=240)
    os.close(master)
    return p.returncode, out, b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    code, out, err = _poll(cfg, tty=True)
    assert code == 0 and "kept: 4" in out
    assert "feeds" in err and "5/5" in err and "pages fetched 8" in err and "kept 4" in err
    assert "━" in err  # the bar itself
    assert "event=feed_error" in err  # log lines still reach the terminal, above the bar
    # the same poll with stderr redirected: log lines only, no bar
    tmp2 = tmp_path / "b"
    tmp2.mkdir()
    (tmp2 / "seeds").symlink_to(seeds_dir)
    code, out, err = _poll(write_config(tmp2, news.feeds), tty=False)
    assert code == 0 and "kept: 4" in out
    assert "━" not in err and "pages fetched" not in err and "\x1b[" not in err
    assert "event=feed_error" in err


def test_log_level_in_any_case_and_debug_shows_requests_and_decisions(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds + ["http://user:hunter2@127.0.0.7:9/feed.xml?token=t0ps3cret"])
    log = tmp_path / "log.jsonl"
    r = run_cli("--config", str(cfg), "--log-level", "debug", "--log-file", str(log), "--log-format", "json", "poll")
    assert r.code == 0, r.err
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    requests = [x for x in lines if x.get("event") == "request"]
    assert any(x["status"] == "200" and float(x["ms"]) >= 0 for x in requests)
    assert any(x["status"] == "500" for x in requests)  # the dead feed, with its status
    rejected = [x for x in lines if x.get("event") == "rejected"]
    assert rejected and all(float(x["score"]) < float(x["threshold"]) for x in rejected)
    text = log.read_text(encoding="utf-8")
    assert "hunter2" not in text and "t0ps3cret" not in text
    assert run_cli("--config", str(cfg), "--log-level", "Warning", "status").code == 0


def test_a_poll_without_a_terminal_says_how_far_it_is(tmp_path, seeds_dir, web):
    """Stderr a pipe (cron, CI, a log file): a slow poll prints a plain progress line every
    INGEST_PROGRESS_SECONDS (10 s by default; shortened here), no bar and no escape codes."""
    from tests.support.web import article_page, article_text, rss

    h = web.host(62)
    title, body = article_text("on_hyesan_gold")
    slow = h.add("/slow.html", article_page(title, body), delay=1.5)  # the poll lasts at least this long
    items = [{"title": title, "link": slow, "guid": "s", "date": "Fri, 20 Nov 2026 08:00:00 GMT"}]
    feed = h.add("/rss.xml", rss("Slow", items), content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "INGEST_PROGRESS_SECONDS": "0.3"}
    p = subprocess.run([sys.executable, "-m", "ingest", "--config", str(cfg), "poll"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("poll: ")]
    assert lines and "feeds done" in lines[0] and "pages fetched" in lines[0], p.stderr
    assert "\x1b[" not in p.stderr and "━" not in p.stderr
