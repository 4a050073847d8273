"""`ingest poll` on a terminal shows a progress bar (and nothing extra when stderr is not one);
`--log-format json` writes one JSON object per log line."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

from .conftest import REPO, build_news_web, run_cli, write_config


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
