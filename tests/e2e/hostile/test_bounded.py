"""Bounded everything: server-given delays and user-given durations are capped or refused,
a failing poll backs off, config values fail at load, every command cleans up its worker
processes on a signal, SIGHUP reloads what can be reloaded; and honest command-line errors."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, build_news_web, run_cli, write_config
from tests.service.test_service import FAST, start, wait_for
from tests.support.web import article_page, article_text, rss

KEEP_ALL = "[relevance]\nthreshold = 0\n"


def _feed(host, items, name="feed.xml", **kw) -> str:
    return host.add(f"/{name}", rss("F", items), content_type="application/rss+xml", **kw)


def test_huge_retry_after_is_capped_and_nothing_overflows(tmp_path, seeds_dir, web):
    h, pages = web.host(2), web.host(3)
    huge = "9" * 20
    feed_busy = h.add("/busy.xml", "busy", status=503, content_type="text/plain", headers={"Retry-After": huge})
    title, body = article_text("on_hyesan_gold")
    pages.add("/a.html", "slow down", status=429, content_type="text/plain", headers={"Retry-After": huge})
    pages.add("/b.html", article_page(title, body))
    feed = _feed(h, [{"title": "a", "link": pages.url("/a.html"), "guid": "a"},
                     {"title": "b", "link": pages.url("/b.html"), "guid": "b"}])
    cfg = write_config(tmp_path, [feed_busy, feed], KEEP_ALL + '[schedule]\nmax_interval = "2h"\n')
    cfg.write_text(cfg.read_text().replace("robots = false", "robots = false\nper_host = 1"))
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    (retry_after,) = db.execute("SELECT retry_after FROM feeds WHERE config_url=?", (feed_busy,)).fetchone()
    # a server's delay is its request, honoured whatever max_interval says (issue 34), up to a bound of its own
    assert time.time() + 2 * 3600 < retry_after <= time.time() + 30 * 86400
    for (retry_at,) in db.execute("SELECT retry_at FROM pages WHERE retry_at IS NOT NULL"):
        assert retry_at <= time.time() + 30 * 86400
    db.close()
    for args in (("status",), ("status", "--json"), ("digest", "--since", "1d"), ("export",), ("poll",)):
        r = run_cli("--config", str(cfg), *args)
        assert r.code == 0 and "Traceback" not in r.err, (args, r.err)


def test_absurd_durations_are_clear_errors(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [])
    for args in (("digest", "--since", "99999999999d"), ("rescore", "--since", "99999999999d")):
        r = run_cli("--config", str(cfg), *args)
        assert r.code == 2 and "between 0 and 100 years" in r.err and "Traceback" not in r.err, args
    cfg = write_config(tmp_path, [], '[schedule]\nmax_interval = "99999999999d"\n')
    r = run_cli("--config", str(cfg), "status")
    assert r.code == 2 and "[schedule.max_interval]" in r.err


def test_config_values_that_could_only_fail_later_fail_at_load(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [], '[relevance]\nlanguage = "zz"\n')
    r = run_cli("--config", str(cfg), "poll")
    assert r.code == 2 and "[relevance.language]" in r.err and "zz" in r.err and str(cfg) in r.err


def test_a_poll_that_fails_in_its_store_phase_backs_off(tmp_path, seeds_dir, web):
    """A store that refuses every article (here: a trigger) fails each poll in its store phase:
    the service retries with a growing delay, like a failed feed, instead of at once in a loop."""
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/a.html", article_page(title, body))
    feed = _feed(h, [{"title": title, "link": page, "guid": "a"}])
    cfg = write_config(tmp_path, [feed], KEEP_ALL + '[schedule]\npoll_interval = "1s"\nmin_interval = "1s"\n'
                       'shutdown_timeout = "1s"\n')
    run_cli("--config", str(cfg), "status")
    from ingest.store import Store

    Store.open(tmp_path / "store").close()
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    db.execute("CREATE TRIGGER boom BEFORE INSERT ON articles BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    db.commit()
    db.close()
    log = tmp_path / "service.log"
    proc = start(cfg, "--log-file", str(log))
    try:
        wait_for(lambda: log.exists() and log.read_text().count("event=poll_crashed") >= 3,
                 what="three crashed polls")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    hits = [r.at for r in h.hits("/feed.xml")]
    gaps = [b - a for a, b in zip(hits, hits[1:], strict=False)]
    # backoff 1 s, 2 s, 4 s (+-20 %): never a tight loop
    assert len(hits) >= 3 and all(g >= 0.75 for g in gaps[:2]) and gaps[1] >= 1.5, gaps
    text = log.read_text()
    assert "failures=1 next_try_in=" in text and "failures=2 next_try_in=" in text


def _processes_with(marker: str) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                out.append(int(proc.name))
        except OSError:
            continue
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_ingest_poll_leaves_no_worker_behind(tmp_path, seeds_dir, web, sig):
    h = web.host(2)
    items = []
    for i, name in enumerate(("on_hyesan_gold", "on_sanctions_gold")):
        title, body = article_text(name)
        url = h.add(f"/p{i}.html", article_page(title, body), delay=0 if i == 0 else 60)  # one hangs
        items.append({"title": title, "link": url, "guid": name})
    cfg = write_config(tmp_path, [_feed(h, items)], KEEP_ALL)
    marker = f"INGEST_TEST_MARK={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "poll", "--json"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the first page is stored and its worker pool is running when the signal comes
        wait_for(lambda: h.hits("/p1.html") and len(_processes_with(marker)) >= 3,
                 what="the poll waiting on a hanging page, with its workers")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert f"interrupted by {sig.name}" in err and '"interrupted"' in out
    wait_for(lambda: not _processes_with(marker), what="the fork server and workers to exit")
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    assert db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 1  # what was complete is kept


def test_workers_exit_when_their_parent_is_killed(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    url = h.add("/p.html", article_page(title, body), delay=60)
    title2, body2 = article_text("on_sanctions_gold")
    url2 = h.add("/q.html", article_page(title2, body2))
    cfg = write_config(tmp_path, [_feed(h, [{"title": "q", "link": url2, "guid": "q"},
                                            {"title": "p", "link": url, "guid": "p"}])], KEEP_ALL)
    marker = f"INGEST_TEST_MARK={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "poll"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: h.hits("/p.html") and len(_processes_with(marker)) >= 3,
                 what="a poll with its workers")
        proc.kill()  # no chance to clean up
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_for(lambda: not _processes_with(marker), what="orphaned workers to exit")


def test_sighup_reloads_fetch_settings_and_the_digest_cron(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:1], FAST + 'digest = "0 7 * * *"\n')
    log = tmp_path / "service.log"
    proc = start(cfg, "--log-file", str(log))
    host = web.host(2)
    try:
        wait_for(lambda: host.hits("/rss.xml"), what="the first poll")
        text = cfg.read_text()
        text = text.replace("timeout = 10", 'timeout = 10\nuser_agent = "reloaded-agent/2 (+mailto:x@example.org)"')
        text = text.replace('digest = "0 7 * * *"', 'digest = "30 6 * * 1"')
        text = text.replace('store = "store"', 'store = "elsewhere"')
        cfg.write_text(text)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "event=reloaded" in log.read_text(), what="the reload")
        lines = log.read_text()
        assert "event=reload_needs_restart keys=paths.store" in lines
        reloaded = next(line for line in lines.splitlines() if "event=reloaded" in line)
        assert "fetch.user_agent" in reloaded and "schedule.digest" in reloaded and "paths.store" not in reloaded
        assert "event=digest_rescheduled" in lines and "30 6 * * 1" in lines
        # the next request uses the new settings (the RDF feed has no dates: it is polled every second)
        rdf = web.host(4)
        feeds = news.feeds[:1] + [news.feeds[2]]
        text = cfg.read_text().replace('store = "elsewhere"', 'store = "store"')
        text += f'\n[[feeds]]\nurl = "{feeds[1]}"\n'
        cfg.write_text(text)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any(r.headers.get("user-agent", "").startswith("reloaded-agent/2") for r in rdf.requests),
                 what="a request with the reloaded User-Agent")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert not (tmp_path / "elsewhere").exists()


def test_text_plain_pages_are_read_as_text(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/a.txt", f"{title}\n\n{body}\n", content_type="text/plain; charset=utf-8")
    cfg = write_config(tmp_path, [_feed(h, [{"title": title, "link": page, "guid": "a"}])], KEEP_ALL)
    s = run_cli("--config", str(cfg), "poll", "--json").json()
    assert s["kept"] == 1 and s["empty"] == 0
    (art,) = run_cli("--config", str(cfg), "export").jsonl()
    assert art["title"] == title and body.split("\n\n")[0] in art["text"]


def test_a_closed_pipe_is_not_a_store_error(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds, KEEP_ALL)
    run_cli("--config", str(cfg), "poll")
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "export"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line (`ingest export | head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == "", err


def test_output_and_log_file_errors_name_the_file(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [])
    r = run_cli("--config", str(cfg), "digest", "--since", "1d", "--output", "/no/such/dir/x.md")
    assert r.code == 1 and "--output /no/such/dir/x.md: cannot write" in r.err and "store" not in r.err
    r = run_cli("--config", str(cfg), "--log-file", "/no/such/dir/ingest.log", "status")
    assert r.code == 2 and "--log-file /no/such/dir/ingest.log" in r.err and "Traceback" not in r.err


def test_a_read_only_store_can_be_read(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds, KEEP_ALL)
    run_cli("--config", str(cfg), "poll")
    store = tmp_path / "store"
    locked = [store / "ingest.db", store]
    if subprocess.run(["chattr", "+i", str(locked[0])], capture_output=True).returncode != 0:
        pytest.skip("chattr +i (an immutable file, read-only even for root) is not available here")
    try:
        subprocess.run(["chattr", "+i", str(store)], check=True)
        for args in (("status",), ("export",), ("digest", "--since", "7d"), ("check",)):
            r = run_cli("--config", str(cfg), *args)
            assert r.code == 0, (args, r.err)
        assert len(run_cli("--config", str(cfg), "export").jsonl()) == 8
        r = run_cli("--config", str(cfg), "poll")  # a writer says what is wrong
        assert r.code == 1 and "Traceback" not in r.err
    finally:
        for p in locked:
            subprocess.run(["chattr", "-i", str(p)])


def test_a_user_agent_httpx_cannot_send_fails_at_load(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [])
    cfg.write_text(cfg.read_text().replace("timeout = 10", 'timeout = 10\nuser_agent = "bot\\nX-Injected: 1"'))
    r = run_cli("--config", str(cfg), "poll")
    assert r.code == 2 and "[fetch.user_agent]" in r.err


def test_a_feed_whose_host_asked_for_quiet_is_deferred_not_failed(tmp_path, seeds_dir, web):
    """A page's 429 quiets its whole host; the feed on that host is then not fetched until the
    Retry-After passes, and that is no error of the feed (no backoff, no failing state)."""
    h = web.host(2)
    h.add("/busy.html", "slow down", status=429, content_type="text/plain", headers={"Retry-After": "3600"})
    feed = _feed(h, [{"title": "b", "link": h.url("/busy.html"), "guid": "b"}])
    cfg = write_config(tmp_path, [feed], FAST)
    log = tmp_path / "service.log"
    proc = start(cfg, "--log-file", str(log))
    try:
        wait_for(lambda: log.exists() and "event=feed_deferred" in log.read_text(), what="a deferred feed")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    state, errors, next_poll = db.execute("SELECT state, consecutive_errors, next_poll FROM feeds").fetchone()
    assert state == "ok" and errors == 0 and next_poll > time.time() + 3000
    assert len(h.hits("/busy.html")) == 1
