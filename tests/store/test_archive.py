"""The WARC archive writer (ingest.store.archive) on exchanges the real fetcher recorded over loopback:
a redirect and its page as request/response records, digests as the spec says, one seek to read a
page back, no secret in any record, files rotated by size and never shared between writers."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import random

import pytest
from warcio.archiveiterator import ArchiveIterator

from ingest.config import FetchSettings
from ingest.sources.fetch import Fetcher, RequestOptions
from ingest.sources.urls import host_of
from ingest.store.archive import ArchiveWriter, read_record
from tests.support.web import Route, redirect

SECRET = "s3cr3t-t0ken-value"


def _fetch(url: str, host: str):
    options = RequestOptions(headers=(("Cookie", f"session={SECRET}"), ("Authorization", f"Bearer {SECRET}"),
                                      ("X-Api-Key", SECRET)), headers_host=host)

    async def run():
        settings = FetchSettings(allow_private_networks=True, host_delay=0, timeout=5, robots=False)
        async with Fetcher(settings) as fetcher:
            return await fetcher.fetch(url, options=options, record=True)

    return asyncio.run(run())


def _sha1(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def test_a_redirect_and_its_page_are_archived_as_exchanged_without_secrets(tmp_path, web):
    h = web.host(81)
    page = "<html><head><title>Gold</title></head><body><p>Hyesan gold mine output.</p></body></html>"
    h.add("/story", page, headers={"X-Served-By": "edge-7"})
    h.routes["/old"] = Route(handler=redirect(h.url("/story"), 301))
    res = _fetch(h.url("/old"), host_of(h.url("/")))
    assert res.ok and [e.status for e in res.exchanges] == [301, 200]

    writer = ArchiveWriter(tmp_path / "archive", "worker one/1")
    ref = writer.write(res.exchanges, "kept")
    writer.close()
    assert ref is not None and ref.uri == h.url("/story") and ref.file.startswith("kept-")
    assert "worker-one-1" in ref.file  # the writer's name, made safe for a file name

    raw = (tmp_path / "archive" / ref.file).read_bytes()
    assert SECRET not in gzip.decompress(raw).decode("latin-1")
    records = []
    with (tmp_path / "archive" / ref.file).open("rb") as fh:
        for rec in ArchiveIterator(fh):
            body = rec.content_stream().read()
            records.append((rec.rec_type, rec.rec_headers.get_header("WARC-Target-URI"), rec, body))
    assert [(t, u) for t, u, _, _ in records] == [
        ("warcinfo", None), ("response", h.url("/old")), ("request", h.url("/old")),
        ("response", h.url("/story")), ("request", h.url("/story"))]
    _, _, resp, body = records[3]
    assert resp.rec_headers.get_header("WARC-Payload-Digest") == _sha1(body) == ref.payload_digest
    assert resp.http_headers.get_statuscode() == "200" and resp.http_headers.get_header("X-Served-By") == "edge-7"
    assert body.decode() == page
    redirect_rec = records[1][2]
    assert redirect_rec.http_headers.get_statuscode() == "301"
    assert redirect_rec.http_headers.get_header("Location") == h.url("/story")
    req = records[4][2]
    assert req.rec_headers.get_header("WARC-Concurrent-To") == resp.rec_headers.get_header("WARC-Record-ID")
    assert req.http_headers.protocol == "GET" and req.http_headers.statusline == "/story HTTP/1.1"
    assert req.http_headers.get_header("User-Agent") and req.http_headers.get_header("Cookie") is None
    assert req.http_headers.get_header("Authorization") is None and req.http_headers.get_header("X-Api-Key") is None
    # the block digest covers the HTTP headers and the payload, as written
    block = resp.rec_headers.get_header("WARC-Block-Digest")
    assert block and block.startswith("sha1:")

    headers, payload = read_record(tmp_path / "archive", ref)  # one seek, one read
    assert payload.decode() == page and headers.get_statuscode() == "200"


def test_files_rotate_by_size_and_each_writer_has_its_own(tmp_path, web):
    h = web.host(82)
    body = random.Random(1).randbytes(5000)  # incompressible: each record is ~5 KB of gzip
    h.add("/p", body, content_type="application/octet-stream")
    res = _fetch(h.url("/p"), "elsewhere.example")
    small = ArchiveWriter(tmp_path / "a", "w1", max_size=4000)
    refs = [small.write(res.exchanges, "rejected") for _ in range(3)]
    other = ArchiveWriter(tmp_path / "a", "w2")
    theirs = other.write(res.exchanges, "rejected")
    small.close()
    other.close()
    assert len({r.file for r in refs}) == 3  # each write passed max_size: a new file each time
    assert theirs.file not in {r.file for r in refs}
    for r in refs + [theirs]:
        assert read_record(tmp_path / "a", r)[1] == body
    assert ArchiveWriter(tmp_path / "a", "w3").write((), "kept") is None


def test_a_poll_archives_every_article_page_it_decides_and_indexes_each_record(tmp_path, seeds_dir, web):
    """[archive] enabled (the default): kept, rejected and duplicate pages each get a response record in
    store/archive/, kept and rejected in separate files, indexed by page; a feed's secrets stay out."""
    import sqlite3

    from tests.conftest import build_news_web, run_cli, write_config

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3])
    text = cfg.read_text().replace(f'url = "{news.feeds[0]}"\n', f'url = "{news.feeds[0]}"\ncookie = "sid={SECRET}"\n'
                                   f'headers = {{ Authorization = "Bearer {SECRET}" }}\n')
    cfg.write_text(text)
    assert run_cli("--config", str(cfg), "poll").code == 0
    store = tmp_path / "store"
    db = sqlite3.connect(store / "ingest.db")
    pages = {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, outcome, final_url FROM pages "
                                                    "WHERE outcome IN ('kept', 'rejected', 'duplicate')")}
    rows = db.execute('SELECT page_id, file, "offset", length, uri, date, payload_digest, kind '
                      "FROM archive_records").fetchall()
    assert {r[0] for r in rows} == set(pages) and len(pages) >= 8
    from ingest.store.archive import RecordRef

    served = set(news.pages.values())
    for page_id, file, offset, length, uri, date, digest, kind in rows:
        outcome, final = pages[page_id]
        assert kind == ("rejected" if outcome == "rejected" else "kept") and file.startswith(kind + "-")
        headers, payload = read_record(store / "archive", RecordRef(file, offset, length, uri, date, digest))
        assert headers.get_statuscode() == "200" and _sha1(payload) == digest
        assert uri == final and (uri in served or uri.split("?")[0] in served)
    blob = b"".join(gzip.decompress(p.read_bytes()) for p in (store / "archive").glob("*.warc.gz"))
    assert SECRET.encode() not in blob
    status = run_cli("--config", str(cfg), "status").out
    assert f"archive: {len(rows)} page(s) in" in status and "KB a page" in status


def test_check_finds_a_flipped_byte_in_an_archived_record_and_repair_marks_it(tmp_path, seeds_dir, web):
    import sqlite3

    from tests.conftest import build_news_web, run_cli, write_config

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:1])
    assert run_cli("--config", str(cfg), "poll").code == 0
    assert run_cli("--config", str(cfg), "check").code == 0
    store = tmp_path / "store"
    db = sqlite3.connect(store / "ingest.db")
    page_id, file, offset, length, article = db.execute(
        'SELECT r.page_id, r.file, r."offset", r.length, p.article_id FROM archive_records r '
        "JOIN pages p ON p.id = r.page_id WHERE p.outcome = 'kept' LIMIT 1").fetchone()
    db.close()
    path = store / "archive" / file
    data = bytearray(path.read_bytes())
    # a byte of the page inside the record's gzip member: flipped in the compressed stream, it breaks
    # the member or changes the payload; either way the record is no longer what was indexed
    data[offset + length // 2] ^= 0x5A
    path.write_bytes(bytes(data))
    bad = run_cli("--config", str(cfg), "check")
    assert bad.code == 1 and f"page p{page_id}, article a{article}" in bad.out and file in bad.out
    fixed = run_cli("--config", str(cfg), "check", "--repair")
    assert fixed.code == 0 and "marked the archived copy" in fixed.out
    assert run_cli("--config", str(cfg), "check").code == 0  # reported once, then known
    from ingest.config import load_config
    from ingest.store import open_store

    with open_store(load_config(cfg), readonly=True) as s:
        assert s.page_record(page_id) is None  # never served again


def test_archive_index_writes_a_sorted_cdxj_that_points_at_each_record(tmp_path, seeds_dir, web):
    import json
    import sqlite3

    from ingest.store.archive import surt
    from tests.conftest import build_news_web, run_cli, write_config

    assert surt("https://www.Example.org/a/b?c=1") == "org,example)/a/b?c=1"
    assert surt("http://127.0.0.2:8080/x") == "2,0,0,127:8080)/x"
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3])
    assert run_cli("--config", str(cfg), "archive", "index").code == 1  # nothing archived yet: says so
    assert run_cli("--config", str(cfg), "poll").code == 0
    res = run_cli("--config", str(cfg), "archive", "index")
    assert res.code == 0, res.err
    lines = (tmp_path / "store" / "archive" / "index.cdxj").read_text().splitlines()
    assert lines == sorted(lines)
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    indexed = {r[0]: (r[1], r[2], r[3]) for r in db.execute('SELECT uri, file, "offset", length FROM archive_records')}
    seen = {}
    for line in lines:
        key, stamp, blob = line.split(" ", 2)
        fields = json.loads(blob)
        assert key == surt(fields["url"]) and len(stamp) == 14 and fields["status"] == "200"
        seen[fields["url"]] = (fields["filename"], int(fields["offset"]), int(fields["length"]))
    assert seen == indexed


def test_rejected_pages_files_go_whole_after_keep_rejected_and_kept_ones_stay(tmp_path, seeds_dir, web):
    import os
    import sqlite3
    import time

    from tests.conftest import build_news_web, run_cli, write_config

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3], '[archive]\nkeep_rejected = "1d"\n')
    assert run_cli("--config", str(cfg), "poll").code == 0
    folder = tmp_path / "store" / "archive"
    rejected = sorted(folder.glob("rejected-*.warc.gz"))
    kept = sorted(folder.glob("kept-*.warc.gz"))
    assert rejected and kept
    old = time.time() - 2 * 86400
    for p in rejected + kept:
        os.utime(p, (old, old))  # last written two days ago
    assert run_cli("--config", str(cfg), "poll").code == 0  # the next poll prunes
    assert not any(p.exists() for p in rejected) and all(p.exists() for p in kept)
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    kinds = {r[0] for r in db.execute("SELECT DISTINCT kind FROM archive_records")}
    assert kinds == {"kept"}  # no row points at a removed file
    assert run_cli("--config", str(cfg), "check").code == 0


def test_export_warc_and_a_wacz_that_wacz_validate_accepts(tmp_path, seeds_dir, web):
    import shutil
    import sqlite3
    import subprocess
    import zipfile

    import pytest

    from tests.conftest import build_news_web, run_cli, write_config

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3])
    assert run_cli("--config", str(cfg), "poll").code == 0
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    kept = db.execute("SELECT COUNT(*) FROM articles WHERE withdrawn IS NULL").fetchone()[0]
    assert kept >= 3
    warc = tmp_path / "corpus.warc.gz"
    assert run_cli("--config", str(cfg), "export", "--format", "warc", "--output", str(warc)).code == 0
    with warc.open("rb") as fh:
        recs = [(r.rec_type, r.rec_headers.get_header("WARC-Payload-Digest"), _sha1(r.content_stream().read()))
                for r in ArchiveIterator(fh)]
    assert [t for t, _, _ in recs] == ["response", "request"] * kept
    assert all(d == s for t, d, s in recs if t == "response")  # copied byte for byte: digests still hold

    wacz = tmp_path / "corpus.wacz"
    assert run_cli("--config", str(cfg), "export", "--format", "wacz", "--output", str(wacz)).code == 0
    with zipfile.ZipFile(wacz) as z:
        names = set(z.namelist())
        assert {"archive/data.warc.gz", "indexes/index.cdxj", "pages/pages.jsonl", "datapackage.json",
                "datapackage-digest.json"} <= names
        assert z.getinfo("archive/data.warc.gz").compress_type == zipfile.ZIP_STORED
        assert len(z.read("pages/pages.jsonl").decode().splitlines()) == kept + 1
    tool = shutil.which("wacz")
    if tool is None:
        pytest.skip("the wacz validator is not installed (pip install -e '.[test]' installs it)")
    res = subprocess.run([tool, "validate", "-f", str(wacz)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={**__import__("os").environ, "PYTHONWARNINGS": "ignore"})
    assert res.returncode == 0 and "Validation succeeded" in res.stdout, res.stdout + res.stderr
    bad = tmp_path / "bad.wacz"  # the validator is not a rubber stamp: a changed file fails it
    with zipfile.ZipFile(wacz) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data + b"\n" if item.filename == "pages/pages.jsonl" else data)
    res = subprocess.run([tool, "validate", "-f", str(bad)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "Validation succeeded" not in res.stdout


@pytest.mark.slow
def test_kill_9_during_a_poll_leaves_no_index_row_on_a_partial_record(tmp_path, seeds_dir, web):
    """A real `ingest poll` killed while pages are being decided and archived: every indexed record is
    whole (`ingest check` reads each back), and the next poll writes to a new file and archives the rest."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys

    from tests.conftest import REPO, run_cli, write_config
    from tests.service.test_service import wait_for
    from tests.support.web import article_page, article_text, rss

    h = web.host(2)
    names = ["on_hyesan_gold", "on_forced_labour_report", "on_sanctions_gold", "on_mine_collapse",
             "on_smuggling_arrests", "off_football", "off_recipe", "off_smartphone", "off_weather"]
    items = []
    for i, name in enumerate(names):
        title, body = article_text(name)
        url = h.add(f"/p{i}.html", article_page(title, body), delay=0 if i < 3 else 15)  # three answer, six hang
        items.append({"title": title, "link": url, "guid": f"g{i}"})
    feed = h.add("/feed.xml", rss("F", items), content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed])
    db_path = tmp_path / "store" / "ingest.db"

    def indexed() -> int:
        try:
            db = sqlite3.connect(db_path)
            try:
                return db.execute("SELECT COUNT(*) FROM archive_records").fetchone()[0]
            finally:
                db.close()
        except sqlite3.OperationalError:
            return 0

    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "poll"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    try:
        wait_for(lambda: indexed() >= 2, what="two pages archived")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    first = {p.name for p in (tmp_path / "store" / "archive").glob("*.warc.gz")}
    assert 2 <= indexed() < len(names)
    check = run_cli("--config", str(cfg), "check")
    assert check.code == 0, check.out  # every indexed record read back whole, digests verified
    for i in range(len(names)):
        h.routes[f"/p{i}.html"].delay = 0
    assert run_cli("--config", str(cfg), "poll").code == 0
    assert indexed() == len(names)
    later = {p.name for p in (tmp_path / "store" / "archive").glob("*.warc.gz")} - first
    assert later  # the second writer opened files of its own
    assert run_cli("--config", str(cfg), "check").code == 0


def test_archive_feeds_keeps_each_feed_document_read_and_nothing_for_a_304(tmp_path, seeds_dir, web):
    from tests.conftest import build_news_web, run_cli, write_config

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:2], "[archive]\nfeeds = true\n")

    def feed_records() -> list[str]:
        out = []
        for p in sorted((tmp_path / "store" / "archive").glob("feeds-*.warc.gz")):
            with p.open("rb") as fh:
                out += [r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(fh)
                        if r.rec_type == "response"]
        return out

    assert run_cli("--config", str(cfg), "poll").code == 0
    assert sorted(feed_records()) == sorted(news.feeds[:2])
    from tests.conftest import stale_polls

    stale_polls(tmp_path / "store", 2)  # both feeds due again: they answer 304 (ETag, Last-Modified)
    assert run_cli("--config", str(cfg), "poll").code == 0
    assert len(web.host(2).hits("/rss.xml")) == 2 and len(web.host(3).hits("/atom.xml")) == 2
    assert sorted(feed_records()) == sorted(news.feeds[:2])  # nothing new kept for a 304
