"""Politeness of the long-running service (`ingest run` as a subprocess): a host's Retry-After
window holds on every request path (feeds, pages of other hosts' feeds, robots.txt, a reload),
and a page deferred for a short while is fetched once its time has come, in the same run."""

from __future__ import annotations

import signal

from tests.conftest import write_config
from tests.service.test_service import start, stop, wait_for
from tests.support.web import Host, article_page, article_text, rss

POLL = '[schedule]\npoll_interval = "1s"\nmin_interval = "1s"\nmax_interval = "2h"\nshutdown_timeout = "1s"\n'


def _always(host: Host, path: str, status: int, retry_after: str) -> str:
    def answer(req) -> None:
        host.respond(req, status, b"busy", {"Content-Type": "text/plain", "Retry-After": retry_after})

    return host.add(path, handler=answer, delay=0.5)  # a slow answer: the next request's turn comes first


def test_retry_after_holds_on_every_request_path_and_across_a_reload(tmp_path, seeds_dir, web):
    unavailable, limited, fine = web.host(2), web.host(3), web.host(4)
    paths = ["/feed.xml", "/other.xml", "/robots.txt", "/a.html", "/b.html"]
    for p in paths:
        _always(unavailable, p, 503, "120")
        _always(limited, p, 429, "3600")
    title, body = article_text("on_hyesan_gold")
    fine.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    own = fine.add("/own.html", article_page(title, body))
    # a healthy feed that links pages on both quiet hosts: the page path and robots.txt path
    items = [{"title": f"t{i}", "link": u, "guid": f"g{i}"} for i, u in
             enumerate([own, unavailable.url("/a.html"), limited.url("/b.html"), unavailable.url("/b.html")])]
    healthy = fine.add("/feed.xml", rss("Fine", items), content_type="application/rss+xml")
    feeds = [healthy, unavailable.url("/feed.xml"), unavailable.url("/other.xml"), limited.url("/feed.xml"),
             limited.url("/other.xml")]
    fetch = "[fetch]\nallow_private_networks = true\nhost_delay = 0.2\nper_host = 2\nrobots = true\n"
    cfg = write_config(tmp_path, feeds, POLL)
    cfg.write_text(cfg.read_text().replace("[fetch]\nallow_private_networks = true\nhost_delay = 0\ntimeout = 10\n"
                                           "robots = false\n", fetch))
    proc = start(cfg)
    try:
        wait_for(lambda: len(fine.hits("/feed.xml")) >= 3, what="three polls of the healthy feed")
        # a reload that replaces the fetcher (another user agent) must keep what it learned
        cfg.write_text(cfg.read_text().replace("per_host = 2\n", 'per_host = 2\nuser_agent = "seed-ingest-test/2 '
                                                                 '(+http://127.0.0.1/)"\n'))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("seed-ingest-test/2" in r.headers.get("user-agent", "") for r in fine.requests),
                 what="a request with the new user agent")
        n = len(fine.hits("/feed.xml"))
        wait_for(lambda: len(fine.hits("/feed.xml")) >= n + 3, what="three more polls")
    finally:
        code, err = stop(proc)
    assert code == 0, err
    # one request each: the first answer closed the host for longer than the test ran
    assert len(unavailable.requests) == 1, [r.path for r in unavailable.requests]
    assert len(limited.requests) == 1, [r.path for r in limited.requests]
    assert len(fine.hits("/own.html")) == 1


def test_a_page_deferred_briefly_is_fetched_in_the_same_run(tmp_path, seeds_dir, web):
    h = web.host(2)
    names = ["on_hyesan_gold", "on_forced_labour_report", "on_sanctions_gold"]
    items = []
    for i, name in enumerate(names):
        title, body = article_text(name)
        page = article_page(title, body).encode()
        answered: list[int] = []

        def answer(req, page=page, answered=answered) -> None:
            if not answered:  # the first request to each page: "too many, come back in 2 s"
                answered.append(1)
                h.respond(req, 429, b"slow down", {"Content-Type": "text/plain", "Retry-After": "2"})
            else:
                h.respond(req, 200, page, {"Content-Type": "text/html; charset=utf-8"})

        items.append({"title": title, "link": h.add(f"/p{i}.html", handler=answer), "guid": f"g{i}"})
    feed = h.add("/feed.xml", rss("F", items), content_type="application/rss+xml")
    # the feed itself is polled rarely: the pages must not wait for its next poll
    cfg = write_config(tmp_path, [feed], '[schedule]\npoll_interval = "1h"\nmin_interval = "1h"\n'
                                         'shutdown_timeout = "1s"\n[relevance]\nthreshold = 0.05\n')
    proc = start(cfg)
    corpus = tmp_path / "store" / "corpus"
    try:
        wait_for(lambda: corpus.is_dir() and len(list(corpus.glob("*.txt"))) == 3, timeout=30,
                 what="all three pages stored")
    except AssertionError:
        raise AssertionError(stop(proc)[1]) from None
    code, err = stop(proc)
    assert code == 0, err
    assert len(h.hits("/feed.xml")) == 1
    for i in range(3):
        assert len(h.hits(f"/p{i}.html")) == 2, i
