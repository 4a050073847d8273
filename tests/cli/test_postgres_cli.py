"""Every command on PostgreSQL: the same news web, polled into a database instead of ingest.db.

What the SQLite tests check command by command is checked here once more with
[store] url set: the same articles kept, the same duplicate found, and status,
export, search, review, mark, rescore, digest, check and corpus sync reading
and writing the database.
"""

from __future__ import annotations

import json

import pytest

from ingest.store.schema_postgres import SCHEMA_VERSION
from tests.conftest import ON, build_news_web, run_cli, write_config

pytestmark = pytest.mark.slow  # subprocesses and whole polls: left out by -m "not slow"


def _config(tmp_path, news, pg_url, extra: str = ""):
    return write_config(tmp_path, news.feeds, f'[store]\nurl = "{pg_url}"\n[web]\nlisten = ""\n{extra}')


def test_commands_on_postgresql(tmp_path, seeds_dir, web, pg_url):
    news = build_news_web(web)
    cfg = str(_config(tmp_path, news, pg_url))
    # no feeds until `feeds sync`: a poll then has nothing to do, and says so in its counts
    empty = run_cli("--config", cfg, "poll", "--json")
    assert empty.code == 0 and json.loads(empty.out)["feeds_ok"] == 0
    assert "ingest feeds sync loads the 5 feeds" in empty.err
    assert run_cli("--config", cfg, "feeds", "sync").code == 0
    r = run_cli("--config", cfg, "poll", "--json")
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    assert summary["kept"] == 4 and summary["feeds_failed"] == 2
    exported = [json.loads(line) for line in run_cli("--config", cfg, "export").out.splitlines()]
    assert len(exported) == 4 and all(a["text"] for a in exported)
    assert sorted(len(a["feeds"]) for a in exported) == [1, 1, 1, 2]  # Hyesan: one article, two feeds
    titles = {a["title"] for a in exported}
    hits = run_cli("--config", cfg, "search", "Hyesan", "--json")
    assert hits.code == 0 and json.loads(hits.out.splitlines()[0])["title"] in titles
    status = json.loads(run_cli("--config", cfg, "status", "--json").out)
    assert len(status["feeds"]) == 5 if isinstance(status, dict) else len(status) == 5
    assert run_cli("--config", cfg, "check").code == 0
    text = run_cli("--config", cfg, "status").out
    assert "workers (PostgreSQL): 2 seen" in text  # each `ingest poll` was a worker, within a lease
    # a verdict takes an article out; rescore and review read the same rows
    aid = exported[0]["id"]
    assert run_cli("--config", cfg, "mark", f"a{aid}" if not str(aid).startswith("a") else aid,
                   "--irrelevant").code == 0
    review = run_cli("--config", cfg, "review", "--json")
    assert review.code == 0
    assert run_cli("--config", cfg, "rescore", "--json").code == 0
    digest = run_cli("--config", cfg, "digest", "--format", "json")
    assert digest.code == 0, digest.err
    out = tmp_path / "corpus-copy"
    synced = run_cli("--config", cfg, "corpus", "sync", str(out))
    assert synced.code == 0 and len(list(out.glob("*.txt"))) in (3, 4)
    first = sorted(out.glob("*.txt"))[0].read_text(encoding="utf-8")
    assert first.split("\n\n", 1)[0] in titles  # the seeds' format: title, blank line, text
    migrate = run_cli("--config", cfg, "migrate")
    assert migrate.code == 0 and f"schema version {SCHEMA_VERSION} (postgresql)" in migrate.out
    assert pg_url.rsplit("@", 1)[-1] not in migrate.out or "postgres@" not in migrate.out


def test_unreachable_database_is_a_clear_error(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [], '[store]\nurl = "postgresql://ingest:s3cret@127.0.0.1:9/ingest"\n')
    r = run_cli("--config", str(cfg), "status")
    assert r.code == 1 and "cannot connect to PostgreSQL" in r.err and "s3cret" not in r.err


def test_bad_store_url_names_the_key(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [], '[store]\nurl = "mysql://x:pw@db/ingest"\n')
    r = run_cli("--config", str(cfg), "status")
    assert r.code == 2 and "[store.url]" in r.err and "pw" not in r.err


assert ON  # the fixture articles the news web serves


def test_web_view_on_postgresql(tmp_path, seeds_dir, web, pg_url):
    """`ingest serve` over the database: pages, search, a verdict that takes an article out, health."""
    import re
    import signal

    import httpx

    from tests.out.test_web import _csrf, _free_port, _serve

    news = build_news_web(web)
    cfg = _config(tmp_path, news, pg_url)
    assert run_cli("--config", str(cfg), "feeds", "sync").code == 0
    assert run_cli("--config", str(cfg), "poll").code == 0
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        with httpx.Client(base_url=f"http://{listen}", timeout=10) as client:
            ids = [int(i) for i in re.findall(r'href="/a/(\d+)"', client.get("/").text)]
            assert len(ids) == 4
            for path in ["/", *(f"/a/{i}" for i in ids), "/search?q=gold", "/feeds", "/review", "/digests"]:
                assert client.get(path).status_code == 200, path
            assert "<mark>" in client.get("/search", params={"q": "gold"}).text.lower()
            token = _csrf(client, f"/a/{ids[0]}")
            done = client.post(f"/a/{ids[0]}/verdict", data={"verdict": "irrelevant", "csrf": token})
            assert done.status_code == 303
            assert f'href="/a/{ids[0]}"' not in client.get("/").text
            health = client.get("/healthz")
            assert health.status_code == 200 and health.json()["ok"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
