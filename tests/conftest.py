"""Shared fixtures: a loopback web, a config writer, a CLI runner."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import InMemoryExampleDatabase

from ingest.cli import main
from tests.support.web import Web, article_page, article_text, atom, rdf, rss

# examples Hypothesis finds are kept in memory, and its other caches in a temporary folder
# (see tests/__init__.py for the rest of "nothing written into the repository")
settings.register_profile("suite", database=InMemoryExampleDatabase())
settings.load_profile("suite")
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="seed-ingest-hypothesis-"))

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture
def web():
    w = Web()
    yield w
    w.close()


@pytest.fixture
def seeds_dir(tmp_path: Path) -> Path:
    d = tmp_path / "seeds"
    shutil.copytree(REPO / "seeds", d)
    return d


def write_config(folder: Path, feeds: list[str], extra: str = "", *, seeds: str = "seeds",
                 store: str = "store") -> Path:
    """A config for tests: loopback allowed, no politeness delay."""
    lines = [f'[paths]\nseeds = "{seeds}"\nstore = "{store}"\n',
             "[fetch]\nallow_private_networks = true\nhost_delay = 0\ntimeout = 10\nrobots = false\n", extra]
    for url in feeds:
        lines.append(f'[[feeds]]\nurl = "{url}"\n')
    path = folder / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def stale_polls(store: Path, days: float) -> None:
    """Make the store's last successful poll (and its first run) ``days`` old: what a stalled
    service leaves behind (the health check's clock is the wall clock)."""
    import sqlite3
    import time

    db = sqlite3.connect(store / "ingest.db")
    long_ago = time.time() - days * 86400
    db.execute("UPDATE feeds SET last_success = ?", (long_ago,))
    db.execute("UPDATE runs SET started = ?", (long_ago,))
    db.commit()
    db.close()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)

    def jsonl(self):
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def run_cli(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Result(code, out.getvalue(), err.getvalue())


ON = ["on_hyesan_gold", "on_forced_labour_report", "on_sanctions_gold", "on_mine_collapse"]
OFF = ["off_football", "off_recipe", "off_smartphone", "off_weather"]


@dataclass
class NewsWeb:
    feeds: list[str]
    pages: dict[str, str]  # fixture name -> URL
    dead: list[str]


def build_news_web(web: Web) -> NewsWeb:
    """Three healthy feeds (RSS, Atom, RDF) on three hosts, and two dead ones.

    The Hyesan article is listed by the RSS feed and (with tracking parameters)
    by the Atom feed: one article, two feeds.
    """
    a, b, c, dead = web.host(2), web.host(3), web.host(4), web.host(5)
    pages = {}
    layout = {a: ["on_hyesan_gold", "on_forced_labour_report", "off_football", "off_recipe"],
              b: ["on_sanctions_gold", "off_smartphone"],
              c: ["on_mine_collapse", "off_weather"]}
    for host, names in layout.items():
        for name in names:
            title, body = article_text(name)
            pages[name] = host.add(f"/news/{name}.html", article_page(title, body))

    def items(names, **extra):
        return [{"title": article_text(n)[0], "link": pages[n], "guid": f"id-{n}",
                 "date": "Fri, 20 Nov 2026 08:00:00 GMT", **extra} for n in names]

    feed_a = a.add("/rss.xml", rss("Feed A", items(layout[a])), content_type="application/rss+xml", etag='"a1"')
    b_items = items(layout[b]) + [{"title": article_text("on_hyesan_gold")[0], "guid": "b-hyesan",
                                   "link": pages["on_hyesan_gold"] + "?utm_source=rss&utm_medium=feed"}]
    feed_b = b.add("/atom.xml", atom("Feed B", b_items), content_type="application/atom+xml",
                   last_modified="Fri, 20 Nov 2026 08:00:00 GMT")
    feed_c = c.add("/rdf.xml", rdf("Feed C", items(layout[c])), content_type="application/rdf+xml")
    broken = dead.add("/feed.xml", "oops", status=500, content_type="text/plain")
    nothing = "http://127.0.0.6:9/feed.xml"  # nothing listens there
    return NewsWeb([feed_a, feed_b, feed_c, broken, nothing], pages, [broken, nothing])


@pytest.fixture(scope="module")
def pg_database(request):
    """A PostgreSQL database for this test module (skips, with the reason, when no server answers)."""
    from tests.support import pg

    why = pg.unavailable()
    if why:
        pytest.skip(why)
    with pg.database("ingest_" + request.module.__name__.rsplit(".", 1)[-1]) as url:
        yield url


@pytest.fixture
def pg_url(pg_database):
    """The module's PostgreSQL database, emptied for this test."""
    from tests.support import pg

    pg.reset(pg_database)
    return pg_database


SLOW_FOLDERS = ("e2e", "service")  # the whole tool in subprocesses: always slow


def pytest_collection_modifyitems(items: list) -> None:
    """Mark the tests `pytest -m "not slow"` leaves out: those under tests/e2e/ and tests/service/ (the
    others say so with @pytest.mark.slow)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if parts and parts[0] in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)
