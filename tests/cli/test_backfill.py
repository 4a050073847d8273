"""`ingest backfill` through a real loopback site: discovery (robots.txt, a sitemap index listing itself,
a gzipped sitemap, a news sitemap, a WordPress-style paged feed), best-first fetching, robots.txt,
the report, a second run, the budget, the dry run, export's provenance, bad arguments."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli
from tests.out.test_web import _free_port, _serve
from tests.support.archive_site import ArchiveSite, build_archive_site

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, feeds: list[str], extra: str = "") -> Path:
    text = ('[paths]\nseeds = "seeds"\nstore = "store"\n'
            "[fetch]\nallow_private_networks = true\nhost_delay = 0\ntimeout = 10\nrobots = true\n" + extra +
            "".join(f'[[feeds]]\nurl = "{u}"\n' for u in feeds))
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def site(web) -> ArchiveSite:
    return build_archive_site(web.host(2))


def test_backfill_finds_the_history_and_keeps_the_on_topic_articles(tmp_path, seeds_dir, site):
    cfg = _config(tmp_path, [site.feed])
    res = run_cli("--config", str(cfg), "backfill", "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert set(out) >= {"sites", "candidates", "discovery_requests", "fetched", "kept", "rejected", "duplicates",
                        "stopped", "per_site"}
    assert out["sites"] == 1 and len(out["per_site"]) == 1
    mine = out["per_site"][0]
    assert mine["site"] == site.host.base and mine["stopped"] == "exhausted"
    # every listed URL once: 45 from the sitemaps (incl. the blocked one and the news sitemap's), ?p=77 from page 2
    assert out["candidates"] == len(site.article_paths()) + 0
    assert mine["by_source"]["sitemap"] >= 44 and mine["by_source"]["feed"] >= 1
    # discovery: robots.txt, the index (read once though it lists itself), 3 sitemaps, 2+ feed pages
    assert out["discovery_requests"] >= 7 and len(site.host.hits("/sitemap_index.xml")) == 1
    hits = site.article_hits()
    assert site.blocked not in hits  # robots.txt disallows /private/
    assert len(hits) == len(set(hits)) == out["fetched"]  # each page once; discovery requests apart
    kept = {r[0] for r in sqlite3.connect(tmp_path / "store" / "ingest.db").execute(
        "SELECT p.url FROM pages p WHERE p.outcome = 'kept'")}
    on_kept = [p for p in site.on_topic if any(u.endswith(p.rstrip("/")) or u.endswith(p) for u in kept)]
    assert len(on_kept) >= 4, (kept, out)  # the opaque ones too: their titles came from the sitemap and the feed
    assert out["kept"] == len(kept) and out["kept"] - len(on_kept) <= 2
    # best-first: the first article pages fetched are the on-topic ones (their slugs and titles rank them)
    assert sum(p in site.on_topic for p in hits[:5]) >= 4, hits[:8]

    again = run_cli("--config", str(cfg), "backfill", "--json")
    assert again.code == 0 and again.json()["fetched"] == 0 and again.json()["discovery_requests"] == 0
    assert site.article_hits() == hits  # nothing fetched a second time

    export = run_cli("--config", str(cfg), "export")
    rows = export.jsonl()
    assert rows and all(any(s["source"] == "backfill" for s in r["sources"]) for r in rows)
    via = {s["via"] for r in rows for s in r["sources"] if s["source"] == "backfill"}
    assert via <= {"sitemap", "feed", "link"} and "sitemap" in via
    assert any(s["found_in"].endswith(("sitemap-2025-1.xml.gz", "sitemap-2025-2.xml", "news-sitemap.xml"))
               for r in rows for s in r["sources"] if s["source"] == "backfill")

    status = run_cli("--config", str(cfg), "status")
    assert "backfill" in status.out and site.host.base in status.out and "exhausted" in status.out

    # the digest lists them apart, marked, so years of history do not read as this week's news
    digest = run_cli("--config", str(cfg), "digest", "--since", "7d", "--format", "json").json()
    assert digest["items"] == [] and len(digest["archive"]) == out["kept"]
    assert all(it["backfill"]["site"] == it["site"] and it["backfill"]["found_in"] for it in digest["archive"])
    assert any((it["backfill"]["published"] or "").startswith("2025-04-02") for it in digest["archive"])
    md = run_cli("--config", str(cfg), "digest", "--since", "7d").out
    assert "From the sites' archives" in md and "from the archive of" in md
    assert "Nothing new matched the seeds in this period." in md
    html = run_cli("--config", str(cfg), "digest", "--since", "7d", "--format", "html").out
    assert html.count("from the archive of") == out["kept"]
    left_out = run_cli("--config", str(cfg), "digest", "--since", "7d", "--no-backfill", "--format", "json").json()
    assert left_out["items"] == [] and left_out["archive"] == []

    # the web view's feeds page: the site's backfill, and why it stopped
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        feeds = httpx.get(f"http://{listen}/feeds", timeout=10).text
        article = httpx.get(f"http://{listen}/a/{digest['archive'][0]['id']}", timeout=10).text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    table = feeds.split('id="backfill"')[1]
    assert site.host.base in table and "exhausted: every candidate fetched" in table
    assert f"<td data-label=\"kept\">{out['kept']}</td>" in table
    assert "from the archive of" in article and "(backfill, listed in" in article


def test_budget_dry_run_and_a_named_site(tmp_path, seeds_dir, site):
    cfg = _config(tmp_path, [])
    dry = run_cli("--config", str(cfg), "backfill", site.host.base + "/any/page", "--dry-run")
    assert dry.code == 0, dry.err
    assert site.article_hits() == []  # ranked only
    lines = [ln for ln in dry.out.splitlines() if ln.startswith("  ")]
    assert 5 <= len(lines) <= 20 and any(w in lines[0] for w in ("gold", "hyesan", "korea", "mine", "labour"))
    assert "sitemap" in dry.out

    res = run_cli("--config", str(cfg), "backfill", site.host.base, "--max-pages", "4", "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["fetched"] == 4 == len(site.article_hits()) and out["stopped"] == "budget"
    assert out["per_site"][0]["stopped"] == "budget"
    assert sum(p in site.on_topic for p in site.article_hits()) >= 3


@pytest.mark.parametrize("args, says", [
    (["--since", "2024-13-01"], "YYYY-MM-DD"),
    (["ftp://example.org/"], "only http and https"),
    (["example.org/news"], "did you mean https://example.org/news"),
    (["--max-pages", "-1"], "0 or more"),
])
def test_bad_arguments_exit_2_with_what_to_do(tmp_path, seeds_dir, args, says):
    cfg = _config(tmp_path, ["http://127.0.0.1:9/feed"])
    res = run_cli("--config", str(cfg), "backfill", *args)
    assert res.code == 2 and says in res.err


def test_no_site_to_backfill_says_how_to_name_one(tmp_path, seeds_dir):
    cfg = _config(tmp_path, [])
    res = run_cli("--config", str(cfg), "backfill")
    assert res.code == 2 and "ingest backfill https://" in res.err


def test_feeds_add_backfill_fetches_the_new_sites_history(tmp_path, seeds_dir, site):
    cfg = _config(tmp_path, [])
    res = run_cli("--config", str(cfg), "feeds", "add", site.feed, "--backfill")
    assert res.code == 0, res.err
    assert "added:" in res.out and site.host.base in res.out and "stopped: exhausted" in res.out
    assert 'url = "' + site.feed in cfg.read_text()
    hits = site.article_hits()
    assert len(hits) == len(set(hits)) and sum(p in site.on_topic for p in hits) >= 4


def test_kill_9_mid_backfill_then_a_rerun_loses_and_doubles_nothing(tmp_path, seeds_dir, site):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.service.test_service import consistent, wait_for

    for path in site.article_paths():  # slow pages: the kill lands while some are being fetched
        site.host.routes[path].delay = 0.3
    cfg = _config(tmp_path, [site.feed])
    db_path = tmp_path / "store" / "ingest.db"

    def committed() -> set[str]:
        try:
            db = sqlite3.connect(db_path)
            try:
                return {r[0] for r in db.execute("SELECT url FROM pages")}
            finally:
                db.close()
        except sqlite3.OperationalError:  # not created yet
            return set()

    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "backfill"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    try:
        wait_for(lambda: len(committed()) >= 4, what="four pages decided")
    finally:
        proc.kill()
        proc.wait(timeout=20)
    before = committed()
    hits_before = site.article_hits()
    assert 4 <= len(before) < len(site.article_paths()) - 1  # killed mid-run
    for path in site.article_paths():
        site.host.routes[path].delay = 0
    again = run_cli("--config", str(cfg), "backfill", "--json")
    assert again.code == 0, again.err
    hits = site.article_hits()
    # no page decided before the kill is requested again; the rest of the history is fetched once
    decided_paths = {p for p in site.article_paths() for u in before if u.endswith(p)}
    rerun = hits[len(hits_before):]
    assert not decided_paths & set(rerun), decided_paths & set(rerun)
    assert len(rerun) == len(set(rerun))
    assert set(hits) == site.article_paths() - {site.blocked}
    db = sqlite3.connect(db_path)
    urls = [r[0] for r in db.execute("SELECT url FROM pages")]
    assert len(urls) == len(set(urls))
    kept = db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
    assert 4 <= kept <= len(site.on_topic) + 1
    consistent(tmp_path / "store")
    check = run_cli("--config", str(cfg), "check")
    assert check.code == 0, check.out + check.err


def test_a_web_archives_index_lists_what_the_site_no_longer_links(tmp_path, seeds_dir, web):
    """[backfill] archives: the CDX API (Wayback's JSON format) names the site's pages; nothing else does."""
    import json
    import random

    from tests.support.archive_site import page, unrelated
    from tests.support.web import article_text

    h, cdx = web.host(5), web.host(6)
    rng = random.Random(5)
    on = ["on_hyesan_gold", "on_forced_labour_report", "on_sanctions_gold"]
    rows = [["original", "timestamp", "statuscode", "mimetype"]]
    for i, name in enumerate(on):
        title, body = article_text(name)
        rows.append([h.add(f"/story/{i}", page(title, body, f"2024-03-0{i + 1}")), f"2024030{i + 1}101010",
                     "200", "text/html"])
    for i in range(12):
        title, body = unrelated(rng, "cooking", i)
        rows.append([h.add(f"/story/{100 + i}", page(title, body, "2024-04-01")), "20240401101010", "200",
                     "text/html"])
    cdx.add("/cdx/search/cdx", json.dumps(rows), content_type="application/json")
    cfg = _config(tmp_path, [], '[backfill]\narchives = ["wayback"]\n'
                                f'archive_endpoints = {{ wayback = "{cdx.url("/cdx/search/cdx")}" }}\n')
    res = run_cli("--config", str(cfg), "backfill", h.base, "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["per_site"][0]["by_source"]["archive"] == 15 and out["stopped"] == "exhausted"
    assert len(cdx.requests) == 1 and out["kept"] >= 3
    rows_out = run_cli("--config", str(cfg), "export").jsonl()
    marks = [s for r in rows_out for s in r["sources"] if s["source"] == "backfill"]
    assert marks and all(s["via"] == "archive" and s["found_in"].startswith("wayback:") for s in marks)


def test_with_archive_feeds_the_discovery_documents_are_archived_too(tmp_path, seeds_dir, site):
    from warcio.archiveiterator import ArchiveIterator

    cfg = _config(tmp_path, [site.feed], "[archive]\nfeeds = true\n")
    res = run_cli("--config", str(cfg), "backfill", "--max-pages", "0", "--json")
    assert res.code == 0 and res.json()["fetched"] == 0, res.err
    uris = []
    for p in (tmp_path / "store" / "archive").glob("feeds-*.warc.gz"):
        with p.open("rb") as fh:
            uris += [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(fh)
                     if r.rec_type == "response"]
    assert site.host.url("/robots.txt") in uris and site.host.url("/sitemap_index.xml") in uris
    assert any("paged=2" in u for u in uris)  # the feed's history pages too
