"""`ingest run` as a real subprocess: schedule, signals, the store lock, restarts."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from tests.conftest import REPO, build_news_web, run_cli, write_config
from tests.support.web import article_page, article_text, rss

FAST = '[schedule]\npoll_interval = "1s"\nmin_interval = "1s"\nshutdown_timeout = "1s"\n'


def start(cfg, *extra) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), *extra, "run"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for(predicate, timeout: float = 90.0, what: str = "condition") -> None:
    """Wait on state (files, rows, server logs); the timeout only ends a test that is stuck."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 20) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def consistent(store) -> None:
    db = sqlite3.connect(store / "ingest.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    paths = {r[0] for r in db.execute("SELECT path FROM articles")}
    files = {f"corpus/{p.name}" for p in (store / "corpus").iterdir()}
    assert paths == files  # every row has its file, every file its row, no temp files


def test_service_polls_on_schedule_and_stops_cleanly(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds, FAST)
    proc = start(cfg)
    try:
        # the RDF feed dates nothing, so it keeps the 1 s poll_interval; the others adapt to
        # their entries' dates (a few a week: a day between polls)
        wait_for(lambda: len(web.host(4).hits("/rdf.xml")) >= 3, what="three polls of the RDF feed")
        # while it runs, the store is locked against a second writer
        r = run_cli("--config", str(cfg), "poll")
        assert r.code == 1 and "another ingest process is using this store" in r.err
        second = start(cfg)
        assert second.wait(timeout=30) == 1
        assert "another ingest process" in second.stderr.read()
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "event=service_started" in err and "event=poll_done" in err and "event=service_stopped" in err
    assert len(web.host(2).hits("/rss.xml")) == 1  # its interval adapted to a day
    consistent(tmp_path / "store")
    assert len(list((tmp_path / "store" / "corpus").glob("*.txt"))) == 4


def test_sigterm_during_a_poll_commits_what_is_complete(tmp_path, seeds_dir, web):
    h = web.host(2)
    items = []
    for i, name in enumerate(["on_hyesan_gold", "on_forced_labour_report", "on_sanctions_gold", "on_mine_collapse"]):
        title, body = article_text(name)
        delay = 0 if i < 2 else 30  # two pages answer at once, two hang
        url = h.add(f"/p{i}.html", article_page(title, body), delay=delay)
        items.append({"title": title, "link": url, "guid": f"g{i}"})
    feed = h.add("/feed.xml", rss("F", items), content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed], FAST)
    cfg.write_text(cfg.read_text().replace("host_delay = 0", "host_delay = 0\nper_host = 4"))
    proc = start(cfg)
    wait_for(lambda: len(h.hits("/p3.html")) >= 1 and len(h.hits("/p2.html")) >= 1, what="hanging requests")
    started = time.monotonic()
    code, err = stop(proc)
    assert code == 0, err
    assert time.monotonic() - started < 10, err  # shutdown_timeout 1s, not the 30 s the pages hang
    assert "event=abandoning_poll" in err
    consistent(tmp_path / "store")
    assert len(list((tmp_path / "store" / "corpus").glob("*.txt"))) == 2  # the complete ones were committed
    # nothing is lost: the abandoned pages are fetched by the next run
    for i in (2, 3):
        h.routes[f"/p{i}.html"].delay = 0
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.json()["kept"] == 2
    consistent(tmp_path / "store")
    assert len(list((tmp_path / "store" / "corpus").glob("*.txt"))) == 4


def test_second_signal_exits_at_once_and_store_stays_consistent(tmp_path, seeds_dir, web):
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    url = h.add("/p.html", article_page(title, body), delay=30)
    feed = h.add("/feed.xml", rss("F", [{"title": title, "link": url, "guid": "g"}]),
                 content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed], FAST.replace('shutdown_timeout = "1s"', 'shutdown_timeout = "60s"'))
    proc = start(cfg)
    wait_for(lambda: h.hits("/p.html"), what="the hanging page request")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    code, _ = stop(proc, signal.SIGTERM)
    assert code == 1
    consistent(tmp_path / "store")


def test_restart_continues_the_schedule(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    slow = '[schedule]\npoll_interval = "1h"\nmin_interval = "1h"\n'
    cfg = write_config(tmp_path, news.feeds[:3], slow)
    assert run_cli("--config", str(cfg), "poll").code == 0  # every feed now has its next poll an hour away
    hits = len(web.host(2).requests)
    proc = start(cfg)
    try:
        time.sleep(3)  # a real service, given time to (wrongly) poll at start-up
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert len(web.host(2).requests) == hits  # nothing was due: no request at start-up
    status = run_cli("--config", str(cfg), "status", "--json").json()
    assert all(f["next_poll"] for f in status)


def test_sighup_picks_up_a_new_feed(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:1], FAST)
    proc = start(cfg)
    try:
        wait_for(lambda: web.host(2).hits("/rss.xml"), what="first poll")
        assert not web.host(3).hits("/atom.xml")
        cfg.write_text(cfg.read_text() + f'\n[[feeds]]\nurl = "{news.feeds[1]}"\n')
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: web.host(3).hits("/atom.xml"), what="the added feed to be polled")
    finally:
        code, err = stop(proc)
    assert code == 0 and "feeds=2" in err and "event=reloaded trigger=" in err


def test_a_stop_signal_delivered_twice_at_once_is_one_stop(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:1], FAST)
    proc = start(cfg)
    wait_for(lambda: web.host(2).hits("/rss.xml"), what="first poll")
    proc.send_signal(signal.SIGTERM)  # as timeout(1) does: to the process, then to its group
    proc.send_signal(signal.SIGTERM)
    code, err = stop(proc, signal.SIGCONT)
    assert code == 0 and "second_signal" not in err and "event=service_stopped" in err


def test_digest_while_the_service_runs_is_a_preview(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3], FAST)
    proc = start(cfg)
    try:
        wait_for(lambda: len(list((tmp_path / "store" / "corpus").glob("*.txt"))) == 4, what="four articles")
        r = run_cli("--config", str(cfg), "digest", "--format", "json")
        assert r.code == 0 and "not recorded" in r.err
        assert len(json.loads(r.out)["items"]) == 4
    finally:
        code, err = stop(proc)
    assert code == 0
    # nothing was recorded: the next real digest still holds the four articles
    assert len(json.loads(run_cli("--config", str(cfg), "digest", "--format", "json").out)["items"]) == 4


def test_running_service_follows_marks_and_changed_seeds(tmp_path, seeds_dir, web):
    """`ingest mark` while the service holds the store: the service moves the file within seconds. A seed
    file added while it runs is noticed by itself: recent pages are rescored, additions made."""
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds, FAST)
    proc = start(cfg)
    corpus = tmp_path / "store" / "corpus"
    try:
        wait_for(lambda: len(list(corpus.glob("*.txt"))) == 4, what="the first poll's four articles")
        db = sqlite3.connect(tmp_path / "store" / "ingest.db")
        (hyesan,) = db.execute("SELECT id FROM pages WHERE url=?", (news.pages["on_hyesan_gold"],)).fetchone()
        r = run_cli("--config", str(cfg), "mark", f"p{hyesan}", "--irrelevant")
        assert r.code == 0 and "running service" in r.err
        wait_for(lambda: len(list(corpus.glob("*.txt"))) == 3, what="the marked article to leave the corpus")
        assert len(list((tmp_path / "store" / "withdrawn").glob("*.txt"))) == 1
        # a new seed about football: the rejected football report joins the corpus
        title, body = article_text("off_football")
        (seeds_dir / "009_football.txt").write_text(f"{title}\n\n{body}\n", encoding="utf-8")
        wait_for(lambda: any(p.read_text(encoding="utf-8").startswith(title) for p in corpus.glob("*.txt")),
                 what="the rescore after the seeds changed")
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "event=verdict_applied action=withdrawn" in err and "event=seeds_reloaded" in err
    assert "event=rescored" in err


def test_feeds_add_reaches_the_running_service_without_a_signal(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:1], FAST)
    proc = start(cfg)
    try:
        wait_for(lambda: web.host(2).hits("/rss.xml"), what="first poll")
        r = run_cli("--config", str(cfg), "feeds", "add", news.feeds[1], "--name", "Feed B")
        assert r.code == 0, r.err
        assert len(web.host(3).hits("/atom.xml")) == 1  # `feeds add` read it once
        wait_for(lambda: len(web.host(3).hits("/atom.xml")) >= 2, what="the added feed to be polled")
    finally:
        code, err = stop(proc)
    assert code == 0 and "event=reloaded trigger=config_changed feeds=2" in err, err


def test_an_idle_service_closes_its_connection_pools(tmp_path, seeds_dir, web):
    """Once its poll is done and the next is further off than a connection is kept, the service
    closes the per-host pools (issue 24: an idle service held every host's client and socket)."""
    feeds = []
    for n in (2, 3):  # two healthy hosts: nothing to retry soon, so the next poll is an hour off
        h = web.host(n)
        title, body = article_text("on_hyesan_gold")
        page = h.add("/story.html", article_page(title, body))
        feeds.append(h.add("/feed.xml", rss("News", [{"title": title, "link": page, "guid": "s"}]),
                           content_type="application/rss+xml"))
    cfg = write_config(tmp_path, feeds, '[schedule]\npoll_interval = "1h"\nmin_interval = "1h"\n')
    log = tmp_path / "service.log"
    proc = start(cfg, "--log-file", str(log))
    try:
        try:
            wait_for(lambda: log.exists() and "event=pools_closed" in log.read_text(), what="the pools closed")
        except AssertionError as exc:
            raise AssertionError(log.read_text()[-4000:] if log.exists() else "no log") from exc
    finally:
        code, err = stop(proc)
    assert code == 0, err
    text = log.read_text()
    closed = int(text.split("event=pools_closed hosts=")[1].split()[0])
    assert closed == 2, text[-4000:]  # every host the poll talked to
    assert text.index("event=poll_done") < text.index("event=pools_closed")


WATCH_MODULES = """
import pathlib, sys, threading, time
log, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def watch():
    while not (log.exists() and "event=poll_done" in log.read_text()):
        time.sleep(0.05)
    out.write_text("\\n".join(sorted(sys.modules)))
threading.Thread(target=watch, daemon=True).start()
from ingest.cli import main
sys.exit(main(sys.argv[3:]))
"""


def test_a_service_without_the_web_view_never_loads_the_web_stack(tmp_path, seeds_dir, web):
    """With `[web] listen = ""` the service serves nothing: uvicorn, starlette and jinja2 (~10 MB of a
    process that idles for months) stay unloaded through a whole poll (issue 24: idle memory); so does
    httpx's command-line client, which httpx imports with click, rich and pygments (~6 MB) if installed,
    and prometheus_client (~7 MB; /metrics is the web view's)."""
    h = web.host(2)
    title, body = article_text("on_hyesan_gold")
    page = h.add("/story.html", article_page(title, body))
    feed = h.add("/feed.xml", rss("News", [{"title": title, "link": page, "guid": "s"}]),
                 content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed], '[web]\nlisten = ""\n[schedule]\npoll_interval = "1h"\n')
    log, out = tmp_path / "service.log", tmp_path / "modules.txt"
    proc = subprocess.Popen([sys.executable, "-c", WATCH_MODULES, str(log), str(out), "--config", str(cfg),
                             "--log-file", str(log), "run"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: out.exists() and out.stat().st_size > 0 or proc.poll() is not None, what="a poll")
    finally:
        code, err = stop(proc)
    assert code == 0, err
    modules = set(out.read_text().split())
    assert "ingest.run.poll" in modules  # it did poll
    assert "httpx" in modules  # it did fetch
    assert not {m.split(".")[0] for m in modules} & {"uvicorn", "starlette", "jinja2", "rich", "pygments", "click",
                                                            "prometheus_client"}


def test_a_verdict_takes_effect_at_once_both_ways_and_rescore_apply_asks_the_service(tmp_path, seeds_dir, web):
    """Under `ingest run` (next poll hours away): `mark` a rejected football report relevant and, within
    seconds, it joins and so does the other football report the model now keeps; `rescore --apply` asks
    the service instead of failing; marking the report irrelevant again takes both out."""
    from tests.run.test_feedback import FOOTBALL_SEED

    news = build_news_web(web)
    h = web.host(7)
    match = h.add("/match.html", article_page("Cup tie settled by penalties after goalless derby",
                                              FOOTBALL_SEED.split("\n", 2)[2]))
    feed = h.add("/feed.xml", rss("Sport", [{"title": "Cup tie", "link": match, "guid": "m1"}]))
    cfg = write_config(tmp_path, news.feeds + [feed],
                       '[schedule]\npoll_interval = "12h"\nshutdown_timeout = "1s"\n')
    proc = start(cfg)
    corpus = tmp_path / "store" / "corpus"
    football, _ = article_text("off_football")

    def titles() -> set[str]:
        return {p.read_text(encoding="utf-8").split("\n", 1)[0] for p in corpus.glob("*.txt")}

    try:
        wait_for(lambda: len(list(corpus.glob("*.txt"))) == 4, what="the first poll's four articles")
        db = sqlite3.connect(tmp_path / "store" / "ingest.db")

        def football_page() -> int | None:
            row = db.execute("SELECT id FROM pages WHERE url=? AND outcome='rejected'",
                             (news.pages["off_football"],)).fetchone()
            return row[0] if row else None

        wait_for(lambda: football_page() is not None and db.execute(
            "SELECT COUNT(*) FROM pages WHERE outcome IN ('kept', 'rejected')").fetchone()[0] >= 8,
            what="the first poll's pages decided")
        pid = football_page()
        assert run_cli("--config", str(cfg), "mark", f"p{pid}", "--relevant").code == 0
        wait_for(lambda: {football, "Cup tie settled by penalties after goalless derby"} <= titles(),
                 what="the judged report and the one like it to join")
        r = run_cli("--config", str(cfg), "rescore", "--apply", "--json")
        assert r.code == 0, r.err
        assert "asked it to rescore and apply" in r.err and r.json()["applied"] is True
        assert r.json()["pages"] >= 8
        assert run_cli("--config", str(cfg), "mark", f"p{pid}", "--irrelevant").code == 0
        wait_for(lambda: not {football, "Cup tie settled by penalties after goalless derby"} & titles(),
                 what="both to leave again")
        assert len(titles()) == 4
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "event=rescored reason='verdicts'" in err and "reason='asked by ingest rescore --apply'" in err


def test_poll_now_in_the_web_view_makes_the_service_poll_a_feed_at_once(tmp_path, seeds_dir, web):
    """Under `ingest run` (next poll 12 h away), the feed page's Poll now: the service polls that feed
    within seconds and finds the entry added since."""
    import re

    import httpx

    from tests.out.test_web import _free_port

    h = web.host(9)
    title, body = article_text("on_hyesan_gold")
    first = h.add("/a.html", article_page(title, body))
    feed = h.add("/feed.xml", rss("Gold", [{"title": title, "link": first, "guid": "a"}]),
                 content_type="application/rss+xml")
    listen = f"127.0.0.1:{_free_port()}"
    cfg = write_config(tmp_path, [feed], f'[schedule]\npoll_interval = "12h"\nmin_interval = "12h"\n'
                                         f'shutdown_timeout = "1s"\n[web]\nlisten = "{listen}"\n')
    proc = start(cfg)
    try:
        db_path = tmp_path / "store" / "ingest.db"

        def one_article() -> bool:
            if not db_path.exists():
                return False
            db = sqlite3.connect(db_path)
            try:
                return db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 1
            except sqlite3.OperationalError:  # the file is there, its schema not yet
                return False
            finally:
                db.close()

        wait_for(one_article, what="the first poll's article")

        def up() -> bool:
            try:
                return httpx.get(f"http://{listen}/healthz", timeout=2).status_code in (200, 503)
            except httpx.HTTPError:
                return False

        wait_for(up, what="the web view")
        t2, b2 = article_text("on_mine_collapse")
        second = h.add("/b.html", article_page(t2, b2))
        h.add("/feed.xml", rss("Gold", [{"title": t2, "link": second, "guid": "b"},
                                        {"title": title, "link": first, "guid": "a"}]),
              content_type="application/rss+xml")
        with httpx.Client(base_url=f"http://{listen}", timeout=30) as client:
            page = client.get("/feeds")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            fid = int(re.search(r'href="/feeds/(\d+)"', page.text).group(1))
            r = client.post(f"/feeds/{fid}/poll", data={"csrf": token}, follow_redirects=True)
            assert r.status_code == 200 and "The service polls it now" in r.text
        wait_for(lambda: len(h.hits("/b.html")) == 1, what="the service to poll the feed and fetch the new page")
        assert len(h.hits("/feed.xml")) == 2
    finally:
        stop(proc)
