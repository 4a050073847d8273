"""The service's backfill between polls ([backfill] enabled), as a real `ingest run` subprocess on a
loopback site with a history: the daily budget, polls going on meanwhile, a clean stop."""

from __future__ import annotations

import sqlite3
import threading

from tests.conftest import write_config
from tests.service.test_service import consistent, start, stop, wait_for
from tests.support.archive_site import build_archive_site
from tests.support.web import rss

FAST = '[schedule]\npoll_interval = "1s"\nmin_interval = "1s"\nshutdown_timeout = "1s"\n'


def _collect(stream, lines: list[str]) -> threading.Thread:
    """Read a process's stderr as it writes it, so the test can wait on a log line."""
    def read() -> None:
        for line in iter(stream.readline, ""):
            lines.append(line)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def _fetched(store) -> int:
    db = sqlite3.connect(store / "ingest.db")
    try:
        return db.execute("SELECT COUNT(*) FROM candidates WHERE fetched IS NOT NULL").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        db.close()


def _undated_feed(web) -> str:
    """A feed whose entries carry no date: it keeps the 1 s poll interval (dated ones adapt to a day)."""
    return web.host(3).add("/undated.xml", rss("Undated", [{"title": "Weather", "link": "http://127.0.0.3/w",
                                                            "guid": "w"}]), content_type="application/rss+xml")


def test_service_backfills_within_the_daily_budget_while_polls_go_on(tmp_path, seeds_dir, web):
    site = build_archive_site(web.host(2))
    undated = _undated_feed(web)
    cfg = write_config(tmp_path, [site.feed, undated], FAST + "[backfill]\nenabled = true\nmax_pages_per_day = 6\n")
    cfg.write_text(cfg.read_text().replace("robots = false", "robots = true"))
    proc = start(cfg)
    lines: list[str] = []
    reader = _collect(proc.stderr, lines)
    try:
        try:
            wait_for(lambda: any("event=backfill_paused" in ln for ln in lines), what="the day's budget spent")
        except AssertionError as exc:
            raise AssertionError("".join(lines)[-4000:]) from exc
        polls = len(web.host(3).hits("/undated.xml"))
        wait_for(lambda: len(web.host(3).hits("/undated.xml")) >= polls + 2, what="polls going on meanwhile")
    finally:
        proc.send_signal(15)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 0, err
    rounds = [ln for ln in lines if "event=backfill_round" in ln]
    assert sum(int(ln.split(" fetched=")[1].split()[0]) for ln in rounds) == 6, err
    assert _fetched(tmp_path / "store") >= 6  # (a page robots.txt disallows is done with too, with no request)
    # the six article pages were fetched once each, the best-ranked (on-topic) first; the poll fetched the
    # feed's newest entries itself, and none of them twice
    hits = site.article_hits()
    assert len(hits) == len(set(hits)) == 6 + 3, hits  # the backfill's six, the poll's three (the feed's newest)
    assert site.blocked not in hits
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    kept = db.execute("SELECT COUNT(*) FROM pages WHERE outcome = 'kept'").fetchone()[0]
    assert kept >= 4
    consistent(tmp_path / "store")


def test_backfill_off_by_default_fetches_no_history(tmp_path, seeds_dir, web):
    site = build_archive_site(web.host(2))
    cfg = write_config(tmp_path, [site.feed, _undated_feed(web)], FAST)
    proc = start(cfg)
    try:
        wait_for(lambda: len(web.host(3).hits("/undated.xml")) >= 3, what="three polls")
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert site.host.hits("/sitemap_index.xml") == [] and "event=backfill_round" not in err
