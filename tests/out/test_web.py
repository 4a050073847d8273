"""The web view over HTTP: `ingest serve` and the service's own server, as real subprocesses."""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO, build_news_web, run_cli, stale_polls, write_config
from tests.service.test_service import FAST, start, wait_for
from tests.support.web import article_page, rss

pytestmark = pytest.mark.slow  # subprocesses and whole polls: left out by -m "not slow"


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _serve(cfg, listen: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--config", str(cfg), "serve", "--listen", listen],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        try:
            return httpx.get(f"http://{listen}/healthz", timeout=2).status_code in (200, 401, 503)
        except httpx.HTTPError:
            return False

    wait_for(up, what="the web view to answer")
    return proc


def _csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_pages_search_verdicts_and_operations(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    hostile_host = web.host(7)
    hostile = hostile_host.add("/x.html", article_page('<script>alert("t")</script> Gold mine <img src=x '
                                                      'onerror=alert(1)>', "North Korea gold mining forced labor "
                                                      "Hyesan. <script>alert(2)</script>\n\nMore about the mine "
                                                      "and the prisoners who work there for the state.",
                                                      canonical="javascript:alert(3)"))
    feed = hostile_host.add("/f.xml", rss("H", [{"title": "<b>x</b>", "link": hostile, "guid": "h"}]),
                            content_type="application/rss+xml")
    cfg = write_config(tmp_path, news.feeds + [feed], "[relevance]\nthreshold = 0.1\n")
    run_cli("--config", str(cfg), "poll")
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    base = f"http://{listen}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            home = client.get("/")
            assert home.status_code == 200
            for header, value in (("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer")):
                assert home.headers[header] == value
            assert "script-src" not in home.headers["content-security-policy"]
            assert "default-src 'none'" in home.headers["content-security-policy"]
            ids = [int(i) for i in re.findall(r'href="/a/(\d+)"', home.text)]
            assert len(ids) >= 4 and ids == sorted(ids, reverse=True)  # newest first
            # nothing hostile is live anywhere
            for path in ["/", *(f"/a/{i}" for i in ids), "/search?q=gold", "/feeds", "/review", "/near-misses"]:
                r = client.get(path)
                assert r.status_code == 200, path
                assert "<script" not in r.text and "<img" not in r.text and "javascript:" not in r.text, path
            # an article: text, score vs threshold, terms, buttons
            art = client.get(f"/a/{ids[-1]}")
            assert "against threshold" in art.text and "matched on:" in art.text and "Not relevant" in art.text
            # filters and stable pagination
            nxt = re.search(r'href="/\?before=([^"]+)"', client.get("/", params={"limit": 2}).text)
            listing = client.get("/").text
            assert "newest published first" in listing and "matched on:" in listing and 'class="snippet"' in listing
            days = re.findall(r'<p class="meta">[^·]+ · (\d{4}-\d{2}-\d{2})', listing)
            assert days and days == sorted(days, reverse=True)  # by published date, not by when added
            assert nxt is None  # one page: no "older" link
            assert client.get("/?min_score=0.99").text.count('href="/a/') == 0
            # search: ranked, highlighted, errors explained
            found = client.get("/search", params={"q": "gold"})
            assert "<mark>" in found.text.lower() and found.text.count('class="card"') >= 3
            assert "cannot read the query" in client.get("/search", params={"q": '"unbalanced'}).text
            # a POST without the CSRF token is refused; with it, the verdict applies at once
            target = ids[0]
            refused = client.post(f"/a/{target}/verdict", data={"verdict": "irrelevant"})
            assert refused.status_code == 403
            token = _csrf(client, f"/a/{target}")
            done = client.post(f"/a/{target}/verdict", data={"verdict": "irrelevant", "csrf": token})
            assert done.status_code == 303 and "Taken out of the corpus" in client.get(done.headers["location"]).text
            assert re.search(r"join=\d+&leave=\d+", done.headers["location"])  # what else it would change
            assert "Your verdict: <strong>not relevant</strong>" in client.get(f"/a/{target}").text
            # the review queue shows enough to answer without opening each page: an opening and the terms
            queue = client.get("/review").text
            assert queue.count('class="snippet"') >= 3 and "matched on:" in queue
            # the model's state: the verdict judged a kept article; one verdict estimates nothing
            model = client.get("/review").text
            assert "The model" in model and "1 not relevant" in model and "precision 0%" not in model
            assert "precision n/a (needs 10 verdicts on kept pages, has 1)" in model
            # Apply re-decides the recent pages with the verdicts (POST with the token) and says what changed
            assert client.post("/apply", data={}).status_code == 403
            applied = client.post("/apply", data={"csrf": _csrf(client, "/review")})
            assert applied.status_code == 303 and re.search(r"joined=\d+&left=\d+", applied.headers["location"])
            assert "Applied: the recent pages were decided again" in client.get(applied.headers["location"]).text
            assert f'href="/a/{target}"' not in client.get("/").text
            assert len(list((tmp_path / "store" / "corpus").glob("*.txt"))) == len(ids) - 1
            # operations
            health = client.get("/healthz")
            assert health.status_code == 200 and health.json()["ok"] and health.json()["store_writable"]
            families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
            (corpus,) = families["ingest_corpus_articles"].samples
            assert corpus.value == len(ids) - 1
            assert {s.labels["state"] for s in families["ingest_feeds"].samples} >= {"ok"}
            assert client.get("/digests").status_code == 200
            assert client.get("/a/999999").status_code == 404
        # a second writer is refused while `serve` holds the store
        r = run_cli("--config", str(cfg), "poll")
        assert r.code == 1 and "another ingest process" in r.err
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_beyond_loopback_a_password_is_required(tmp_path, seeds_dir):
    cfg = write_config(tmp_path, [])
    r = run_cli("--config", str(cfg), "serve", "--listen", "0.0.0.0:8750")
    assert r.code == 2 and "password" in r.err
    cfg = write_config(tmp_path, [], '[web]\nlisten = "0.0.0.0:8750"\n')
    r = run_cli("--config", str(cfg), "status")
    assert r.code == 2 and "[web.listen]" in r.err and "password" in r.err
    (tmp_path / "pw").write_text("s3cret-pw\n")
    cfg = write_config(tmp_path, [], '[web]\npassword_file = "pw"\n')
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        assert httpx.get(f"http://{listen}/").status_code == 401
        assert httpx.get(f"http://{listen}/", auth=("any", "wrong")).status_code == 401
        ok = httpx.get(f"http://{listen}/", auth=("any", "s3cret-pw"))
        assert ok.status_code == 200 and "s3cret" not in ok.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def polls_counted(listen: str, kept: int) -> bool:
    """Whether the web view at ``listen`` answers /metrics with at least one poll and ``kept`` kept pages."""
    try:
        text = httpx.get(f"http://{listen}/metrics", timeout=2).text
    except httpx.HTTPError:
        return False
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    counts = [s.value for s in fams["ingest_pages"].samples
              if s.name.endswith("_total") and s.labels["outcome"] == "kept"]
    return fams["ingest_polls"].samples[0].value >= 1 and bool(counts) and counts[0] >= kept


def test_the_service_serves_the_view_and_counts_its_polls(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    listen = f"127.0.0.1:{_free_port()}"
    cfg = write_config(tmp_path, news.feeds[:3], FAST + f'[web]\nlisten = "{listen}"\n')
    proc = start(cfg)
    try:
        wait_for(lambda: polls_counted(listen, 4), what="the polls' four kept pages counted in /metrics")
        fams = {f.name: f for f in text_string_to_metric_families(httpx.get(f"http://{listen}/metrics").text)}
        kept = [s for s in fams["ingest_pages"].samples if s.name.endswith("_total") and s.labels["outcome"] == "kept"]
        assert kept and kept[0].value >= 4
        assert any(s.labels.get("outcome") == "200" for s in fams["ingest_feed_requests"].samples)
        assert fams["ingest_fetch_seconds"].samples
        assert httpx.get(f"http://{listen}/healthz").json()["ok"]
        r = run_cli("--config", str(cfg), "serve")
        assert r.code == 1 and f"http://{listen}/" in r.err
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "event=web_listening" in err


def test_healthz_turns_503_when_polls_stop_succeeding(tmp_path, seeds_dir, web):

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:3])
    run_cli("--config", str(cfg), "poll")
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        first = httpx.get(f"http://{listen}/healthz")
        assert first.status_code == 200 and first.json()["ok"]
        assert first.json()["last_success_age"] < 600 and first.json()["feeds"]["ok"] == 3
        stale_polls(tmp_path / "store", days=30)
        later = httpx.get(f"http://{listen}/healthz")
        assert later.status_code == 503 and not later.json()["ok"]
        assert "no poll has succeeded" in later.json()["problems"][0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_search_filters_combine_with_the_query(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    run_cli("--config", str(cfg), "poll")
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        every = httpx.get(f"http://{listen}/search", params={"q": "gold"}).text.count('class="card"')
        none = httpx.get(f"http://{listen}/search", params={"q": "gold", "min_score": "0.99"}).text
        assert every >= 3 and none.count('class="card"') == 0 and "No match" in none
        future = httpx.get(f"http://{listen}/search", params={"q": "gold", "since": "2999-01-01"}).text
        assert future.count('class="card"') == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_a_topic_the_model_cannot_separate_is_said_everywhere(tmp_path, web):
    """Seeds written in the stream's own words: poll, status, review, the digest and the web view
    each say the model cannot separate the topic, and what would help."""
    rng = random.Random(5)
    words = ("market price trade bank export import deficit surplus tariff minister economy growth rate "
             "currency dollar yen oil grain ship port budget tax official talks agreement").split()

    def text() -> str:
        return "\n\n".join(" ".join(rng.choice(words) for _ in range(50)).capitalize() + "." for _ in range(3))

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(3):
        (seeds / f"{i}.txt").write_text(f"Trade talks {i}\n\n{text()}", encoding="utf-8")
    h = web.host(8)
    items = []
    for i in range(150):
        link = h.add(f"/n/{i}.html", article_page(f"Markets report {i}", text()))
        items.append({"title": f"Markets report {i}", "link": link, "guid": link})
    cfg = write_config(tmp_path, [h.add("/feed.xml", rss("Markets", items), content_type="application/rss+xml")])
    said = "the model cannot separate the seeds' topic"
    poll = run_cli("--config", str(cfg), "poll")
    assert poll.code == 0 and poll.out.count(said) == 1 and "more seeds" in poll.out
    assert said in run_cli("--config", str(cfg), "status").out
    review = run_cli("--config", str(cfg), "review").out
    assert said in review and "help it most" in review
    assert said.capitalize() in run_cli("--config", str(cfg), "digest", "--since", "1d").out.replace("\\", "")
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        for path in ("/", "/review"):
            page = httpx.get(f"http://{listen}{path}", timeout=10).text
            assert 'class="flash warn"' in page and "cannot separate" in page, path
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_a_site_is_labelled_by_its_declared_name_or_its_host_the_same_on_every_surface(tmp_path, seeds_dir, web):
    """A "Headline | Site" title whose headline has periods ("U.K. Reserves ...") and no og:site_name is
    labelled by its host (no port), never by its headline; a declared og:site_name is the label; a
    declared name that is the headline is not taken. Export, the digest and the corpus page agree."""
    import re

    from tests.support.web import article_page, article_text, rss

    h = web.host(61)
    title, body = article_text("on_hyesan_gold")
    plain = re.sub(r'<meta property="og:site_name"[^>]*>', "", article_page(f"U.K. Reserves: {title}", body,
                                                                            site="Gold Times"))
    named = article_page("S. African miners on North Korea's gold trade", article_text("on_sanctions_gold")[1],
                         site="Gold Times")
    headline = "N. Korea's gold mine collapse: a report"
    selfnamed = article_page(headline, article_text("on_mine_collapse")[1], site=headline)
    links = [h.add("/a.html", plain), h.add("/b.html", named), h.add("/c.html", selfnamed)]
    feed = h.add("/rss.xml", rss("Gold", [{"title": f"t{i}", "link": u, "guid": u,
                                            "date": "Fri, 20 Nov 2026 08:00:00 GMT"} for i, u in enumerate(links)]),
                 content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed], extra="[relevance]\nthreshold = 0.0\n")
    assert run_cli("--config", str(cfg), "poll").code == 0
    exported = {a["url"]: a["site"] for a in map(json.loads, run_cli("--config", str(cfg), "export").out.splitlines())}
    assert exported == {links[0]: "127.0.0.61", links[1]: "Gold Times", links[2]: "127.0.0.61"}, exported
    digest = json.loads(run_cli("--config", str(cfg), "digest", "--since", "30d", "--format", "json").out)
    assert {it["url"]: it["site"] for it in digest["items"]} == exported
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        import httpx

        page = httpx.get(f"http://{listen}/", timeout=30).text
        labels = re.findall(r'<p class="meta">([^<·]+) ·', page)
        assert sorted(x.strip() for x in labels) == sorted(exported.values()), labels
        assert ":" not in "".join(labels) and "Reserves" not in "".join(labels)
        # `ingest digest` while only `serve` holds the store: what is true of serve (it records no digest)
        r = run_cli("--config", str(cfg), "digest")
        assert r.code == 0 and "`ingest serve`" in r.err and "records no digest" in r.err, r.err
        assert "the service" not in r.err and not (tmp_path / "store" / "digests").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_feeds_are_added_paused_removed_and_shown_from_the_browser(tmp_path, seeds_dir, web):
    """The Feeds page under `ingest serve`: Add feed runs discovery (each feed found reported) and writes
    config.toml keeping its comments; Pause, Resume and Remove write it too; Poll now says why serve
    cannot; a feed's page lists its entries with what became of each, its settings and its JSON/OPML;
    a POST without the CSRF token changes nothing."""
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds[:1])
    cfg.write_text("# my feeds\n" + cfg.read_text(), encoding="utf-8")
    assert run_cli("--config", str(cfg), "poll").code == 0
    h = web.host(63)
    section = h.add("/sec/", '<html><head><link rel="alternate" type="application/rss+xml" href="latest.xml">'
                             '<link rel="alternate" type="application/atom+xml" href="/gone.xml"></head></html>')
    h.add("/sec/latest.xml", rss("Section latest", [{"title": "x", "link": news.pages["on_mine_collapse"],
                                                     "guid": "x"}]), content_type="application/rss+xml")
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        with httpx.Client(base_url=f"http://{listen}", timeout=30) as client:
            token = _csrf(client, "/feeds")
            assert client.post("/feeds/add", data={"url": section}).status_code == 403  # no token
            r = client.post("/feeds/add", data={"url": section, "category": "Mining", "csrf": token})
            assert r.status_code == 200
            assert "added: Section latest" in r.text and "gone.xml: HTTP 404" in r.text, r.text
            text = cfg.read_text(encoding="utf-8")
            assert "# my feeds" in text and h.url("/sec/latest.xml") in text and 'category = "Mining"' in text
            listing = client.get("/feeds").text
            assert "Section latest" in listing and "not polled yet" in listing
            ids = {m.group(2): int(m.group(1)) for m in re.finditer(r'href="/feeds/(\d+)">([^<]+)</a>', listing)}
            first = ids["Feed A"]
            # a feed's page: entries with what became of each, settings, JSON and OPML
            page = client.get(f"/feeds/{first}").text
            assert "Recent entries" in page and "rejected: score" in page and 'href="/a/' in page, page
            assert "State and interval" in page and 'class="state-ok">ok</span>' in page  # new -> ok on its poll
            assert client.get(f"/feeds/{first}.json").json()["articles_kept"] >= 1
            assert "<opml" in client.get(f"/feeds/{first}.opml").text
            # serve polls nothing: the button's answer says what does
            r = client.post(f"/feeds/{first}/poll", data={"csrf": token})
            assert "polls nothing" in r.text and "ingest run" in r.text
            new = ids.get("Section latest") or int(re.search(r'href="/feeds/(\d+)">Section latest', client.get(
                "/feeds").text).group(1))
            r = client.post(f"/feeds/{new}/pause", data={"csrf": token}, follow_redirects=True)
            assert "Paused" in r.text and "enabled = false" in cfg.read_text(encoding="utf-8")
            r = client.post(f"/feeds/{new}/resume", data={"csrf": token}, follow_redirects=True)
            assert "Resumed" in r.text and "enabled = false" not in cfg.read_text(encoding="utf-8")
            r = client.post(f"/feeds/{new}/remove", data={"csrf": token}, follow_redirects=True)
            assert "Removed" in r.text and h.url("/sec/latest.xml") not in cfg.read_text(encoding="utf-8")
            assert "# my feeds" in cfg.read_text(encoding="utf-8")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
