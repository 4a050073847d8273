"""Verdicts end to end: review, mark, rescore, seeds add, the digest's "Help it learn", migration."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ingest.sources.urls import normalize
from ingest.store import SCHEMA_VERSION, Store
from tests.conftest import OFF, ON, build_news_web, run_cli, write_config
from tests.support.web import article_page, article_text, rss

FOOTBALL_SEED = """Derby ends level after late equaliser

The two clubs shared the points in a derby that ended two-all after a late equaliser from the visitors' striker.
The home side led twice in the first half through their captain and a penalty, but the visitors' manager made
three substitutions at half time and his side dominated possession, the goalkeeper making a string of saves.
The result leaves both clubs in the top half of the league table ahead of the cup match next weekend."""


def _poll(cfg) -> dict:
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    return r.json()


def _db(tmp_path) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    db.row_factory = sqlite3.Row
    return db


def _page_id(tmp_path, url: str) -> str:
    return f"p{_db(tmp_path).execute('SELECT id FROM pages WHERE url=?', (url,)).fetchone()[0]}"


def _corpus(tmp_path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "store" / "corpus").glob("*.txt")}


def consistent(store: Path) -> None:
    """Every row's file is where the row says (corpus/, withdrawn/ for the user's, dropped/ for the
    model's re-decisions), and no file is without its row."""
    db = sqlite3.connect(store / "ingest.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT path, withdrawn, withdrawn_by FROM articles").fetchall()

    def names(folder: str) -> set[str]:
        return {p.name for p in (store / folder).iterdir()} if (store / folder).exists() else set()

    assert names("corpus") == {p.split("/", 1)[1] for p, w, _ in rows if w is None}
    assert names("withdrawn") == {p.split("/", 1)[1] for p, w, by in rows if w is not None and by != "rescore"}
    assert names("dropped") == {p.split("/", 1)[1] for p, w, by in rows if w is not None and by == "rescore"}


def test_review_mark_withdraw_and_restore(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    assert _poll(cfg)["kept"] == 4
    r = run_cli("--config", str(cfg), "review", "--json", "--limit", "8")
    assert r.code == 0, r.err
    items = r.jsonl()
    assert len(items) == 8  # all 8 scored pages, nearest the threshold first, both sides
    for it in items:
        assert {"id", "url", "title", "score", "threshold", "kept", "terms", "site"} <= it.keys()
    assert {it["kept"] for it in items[:2]} == {True, False}  # the first above and the first below
    assert {it["url"] for it in items} == {news.pages[n] for n in ON + OFF}
    # a kept article judged irrelevant leaves the corpus folder at once; nothing is lost
    hyesan = next(it for it in items if it["url"] == news.pages["on_hyesan_gold"])
    before = _corpus(tmp_path)
    r = run_cli("--config", str(cfg), "mark", hyesan["id"], "--irrelevant")
    assert r.code == 0, r.err
    assert "taken out of the corpus" in r.out
    after = _corpus(tmp_path)
    (gone,) = set(before) - set(after)
    assert (tmp_path / "store" / "withdrawn" / gone).read_text(encoding="utf-8") == before[gone]
    consistent(tmp_path / "store")
    exported = run_cli("--config", str(cfg), "export").jsonl()
    assert news.pages["on_hyesan_gold"] not in {a["url"] for a in exported} and len(exported) == 3
    # each item says enough to answer: an opening of the text and the terms it matched on
    items = run_cli("--config", str(cfg), "review", "--json", "--limit", "8").jsonl()
    assert all(it["snippet"] and len(it["snippet"]) <= 230 for it in items)
    text = run_cli("--config", str(cfg), "review", "--limit", "3").out
    assert "matched on:" in text and items[0]["snippet"][:40] in text
    # judged pages are never offered for review again
    again = run_cli("--config", str(cfg), "review", "--json", "--limit", "8").jsonl()
    assert hyesan["id"] not in {it["id"] for it in again} and len(again) == 7
    # the user's verdict stands: a rescore does not bring it back
    assert run_cli("--config", str(cfg), "rescore", "--apply").code == 0
    assert gone not in _corpus(tmp_path)
    # --relevant brings it back under the same file name
    r = run_cli("--config", str(cfg), "mark", hyesan["id"], "--relevant")
    assert r.code == 0 and "back in the corpus" in r.out
    assert _corpus(tmp_path) == before
    consistent(tmp_path / "store")
    verdicts = _db(tmp_path).execute("SELECT url, verdict, applied FROM verdicts").fetchall()
    # the URL fetched is the link of whichever feed came first (one has ?utm_source=...): same page
    assert [(normalize(v["url"]), v["verdict"]) for v in verdicts] == \
        [(normalize(news.pages["on_hyesan_gold"]), "relevant")]
    assert verdicts[0]["applied"] is not None


def test_rejected_page_marked_relevant_joins_and_teaches_the_next_poll(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    _poll(cfg)
    football = news.pages["off_football"]
    r = run_cli("--config", str(cfg), "mark", _page_id(tmp_path, football), "--relevant")
    assert r.code == 0 and "added to the corpus" in r.out, r.out + r.err
    files = _corpus(tmp_path)
    assert len(files) == 5
    title, body = article_text("off_football")
    text = next(t for t in files.values() if t.startswith(title))
    assert "penalty in the final minute" in text
    # its provenance came along: the feed it was listed in
    art = next(a for a in run_cli("--config", str(cfg), "export").jsonl() if a["url"] == football)
    assert art["feeds"] == [news.feeds[0]]
    # the next poll: a new football report (another page, same subject) is kept now, a recipe is not
    h = web.host(7)
    match = h.add("/match.html", article_page("Cup tie settled by penalties after goalless derby",
                                              FOOTBALL_SEED.split("\n", 2)[2]))
    recipe_title, recipe_body = article_text("off_recipe")
    other = h.add("/bake.html", article_page("A second loaf: " + recipe_title, recipe_body + " Serve warm."))
    feed = h.add("/feed.xml", rss("Sport", [{"title": "Cup tie", "link": match, "guid": "m1"},
                                            {"title": "Bake", "link": other, "guid": "b1"}]))
    cfg = write_config(tmp_path, news.feeds + [feed])
    s = _poll(cfg)
    assert s["kept"] == 1 and s["rejected"] == 1, s
    assert any(t.startswith("Cup tie settled") for t in _corpus(tmp_path).values())


def test_rescore_previews_and_apply_does_both(tmp_path, seeds_dir, web):
    """`rescore` alone changes nothing and lists what would join and leave, with scores and terms;
    `--apply` does both (and a later model brings back what a rescore took out)."""
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    _poll(cfg)
    before = _corpus(tmp_path)
    # the topic changes: football is the only seed now
    for p in seeds_dir.iterdir():
        p.unlink()
    (seeds_dir / "000_football.txt").write_text(FOOTBALL_SEED, encoding="utf-8")
    r = run_cli("--config", str(cfg), "rescore", "--json")
    assert r.code == 0, r.err
    rep = r.json()
    assert rep["pages"] == 8 and rep["without_text"] == 0 and rep["applied"] is False
    assert [it["url"] for it in rep["join"]] == [news.pages["off_football"]]
    assert {it["url"] for it in rep["leave"]} == {news.pages[n] for n in ON}
    assert rep["join"][0]["terms"] and all(it["score"] is not None for it in rep["join"] + rep["leave"])
    assert rep["added"] == rep["withdrawn"] == []
    assert _corpus(tmp_path) == before  # a preview: nothing changed
    text = run_cli("--config", str(cfg), "rescore").out
    assert "a preview, nothing changed: 1 page(s) would join the corpus and 4 would leave it" in text
    r = run_cli("--config", str(cfg), "rescore", "--apply", "--json")
    rep = r.json()
    assert len(rep["withdrawn"]) == 4 and len(rep["added"]) == 1 and rep["applied"] is True
    assert len(_corpus(tmp_path)) == 1
    # what the model did is kept apart from what the user did: withdrawn/ holds only the user's
    assert len(list((tmp_path / "store" / "dropped").glob("*.txt"))) == 4
    assert not (tmp_path / "store" / "withdrawn").exists()
    consistent(tmp_path / "store")
    # the user's verdict on an article the model dropped moves it to withdrawn/: theirs is the last word
    dropped = rep["leave"][0]
    assert run_cli("--config", str(cfg), "mark", dropped["id"], "--irrelevant").code == 0
    assert len(list((tmp_path / "store" / "dropped").glob("*.txt"))) == 3
    assert len(list((tmp_path / "store" / "withdrawn").glob("*.txt"))) == 1
    consistent(tmp_path / "store")
    # and back: the old seeds again bring the articles rescore took out back to their files
    for p in seeds_dir.iterdir():
        p.unlink()
    for p in sorted((Path(__file__).resolve().parents[2] / "seeds").glob("*.txt")):
        (seeds_dir / p.name).write_bytes(p.read_bytes())
    rep = run_cli("--config", str(cfg), "rescore", "--apply", "--json").json()
    assert len(rep["restored"]) == 3  # the one the user marked stays out
    assert len(set(before) - set(_corpus(tmp_path))) == 1
    consistent(tmp_path / "store")


def test_seeds_add_article_and_file(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    _poll(cfg)
    ref = _page_id(tmp_path, news.pages["off_weather"])
    r = run_cli("--config", str(cfg), "seeds", "add", ref)
    assert r.code == 0, r.err
    names = sorted(p.name for p in seeds_dir.iterdir())
    assert len(names) == 3 and names[-1].startswith("003_") and len(names[-1]) == len("003_0123456789abcdef.txt")
    title, _ = article_text("off_weather")
    assert (seeds_dir / names[-1]).read_text(encoding="utf-8").startswith(title + "\n\n")
    assert "added to the corpus" in r.out  # an article made a seed is judged relevant too
    assert run_cli("--config", str(cfg), "seeds", "add", ref).code == 2  # already a seed
    f = tmp_path / "note.txt"
    f.write_text(FOOTBALL_SEED, encoding="utf-8")
    assert run_cli("--config", str(cfg), "seeds", "add", str(f)).code == 0
    assert sorted(p.name for p in seeds_dir.iterdir())[-1].startswith("004_")
    short = tmp_path / "short.txt"
    short.write_text("too short to be an article", encoding="utf-8")
    r = run_cli("--config", str(cfg), "seeds", "add", str(short))
    assert r.code == 2 and "fewer than" in r.err
    assert len(list(seeds_dir.iterdir())) == 4
    listing = run_cli("--config", str(cfg), "seeds", "list")
    assert listing.code == 0 and len(listing.out.splitlines()) == 4
    r = run_cli("--config", str(cfg), "mark", "p99999", "--relevant")
    assert r.code == 2 and "no such page" in r.err


def test_digest_asks_for_help(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    _poll(cfg)
    md = run_cli("--config", str(cfg), "digest", "--since", "1d")
    assert md.code == 0
    assert "## Help it learn" in md.out and "ingest mark ID --relevant" in md.out
    d = json.loads(run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "json").out)
    ids = [r["id"] for r in d["review"]]
    assert len(ids) == 5 and all(f"`{i}`" in md.out for i in ids)
    html = run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "html").out
    assert "Help it learn" in html and ids[0] in html


def test_version_1_store_is_migrated(tmp_path, seeds_dir, web):
    """A store written by the previous release (schema 1) opens, gains the new columns and tables, and works."""
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    Store.open(tmp_path / "store").close()
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    for index in ("articles_withdrawn", "pages_article", "articles_site"):  # schema 4
        db.execute(f"DROP INDEX {index}")
    db.execute("DROP TABLE articles_fts")
    db.execute("DROP TABLE pages_fts")
    for table, col in [("articles", "withdrawn"), ("articles", "withdrawn_by"), ("pages", "threshold"),
                       ("pages", "terms"), ("pages", "title")]:
        db.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
    db.execute("DROP INDEX pages_doc")
    db.execute("ALTER TABLE pages DROP COLUMN doc")
    db.execute("DROP INDEX pages_retry")
    for col in ("retry_at", "deferred_since", "pending"):  # schema 3
        db.execute(f"ALTER TABLE pages DROP COLUMN {col}")
    db.execute("DROP TABLE stream")
    db.execute("DROP TABLE verdicts")
    db.execute("CREATE TABLE term_df (term TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO term_df VALUES ('gold', 3)")
    db.execute("UPDATE schema_version SET version=1")
    db.commit()
    db.close()
    assert _poll(cfg)["kept"] == 4
    db = _db(tmp_path)
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT COUNT(*) FROM stream").fetchone()[0] == 8
    assert db.execute("SELECT COUNT(*) FROM pages WHERE doc IS NOT NULL").fetchone()[0] == 4
    assert not db.execute("SELECT name FROM sqlite_master WHERE name='term_df'").fetchall()


def test_rejected_texts_expire_after_keep_rejected(tmp_path, seeds_dir, web):
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds, '[relevance]\nkeep_rejected = "0s"\n')
    _poll(cfg)
    db = _db(tmp_path)
    assert db.execute("SELECT COUNT(*) FROM pages WHERE outcome='rejected' AND doc IS NULL "
                      "AND score IS NOT NULL AND terms IS NOT NULL").fetchone()[0] == 4  # score and terms stay
    r = run_cli("--config", str(cfg), "mark", _page_id(tmp_path, news.pages["off_recipe"]), "--relevant")
    assert r.code == 0 and "text no longer kept" in r.out
    assert len(_corpus(tmp_path)) == 4
    rep = run_cli("--config", str(cfg), "rescore", "--since", "1d", "--json").json()
    assert rep["without_text"] == 4 and rep["pages"] == 4  # the kept ones are re-decided from their files


def test_the_loop_says_what_it_did_and_what_it_would_do(tmp_path, seeds_dir, web):
    """mark says what changed and how many other pages the model would now decide otherwise;
    status shows the model, the verdicts, and precision and recall estimated from them."""
    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    _poll(cfg)
    status = run_cli("--config", str(cfg), "status")
    assert "relevance: cosine" in status.out and "verdicts: 0 relevant, 0 not" in status.out
    assert "precision" not in status.out  # nothing to estimate it from yet
    # a verdict that agrees with the model changes nothing, and says so
    r = run_cli("--config", str(cfg), "mark", _page_id(tmp_path, news.pages["off_recipe"]), "--irrelevant")
    assert r.code == 0 and "no change to the corpus" in r.out and "decides the other pages as before" in r.out
    # the topic moves to football: the football report joins on its verdict, and mark counts the kept
    # gold-mining articles the model would now take out (rescore --apply does it)
    for p in seeds_dir.iterdir():
        p.unlink()
    (seeds_dir / "000_football.txt").write_text(FOOTBALL_SEED, encoding="utf-8")
    r = run_cli("--config", str(cfg), "mark", _page_id(tmp_path, news.pages["off_football"]), "--relevant")
    assert r.code == 0 and "added to the corpus" in r.out
    assert "would now decide 4 other page(s) differently (0 would join the corpus, 4 would leave it)" in r.out
    assert "`ingest rescore --apply` applies that" in r.out
    rep = run_cli("--config", str(cfg), "rescore", "--apply", "--json").json()
    assert len(rep["withdrawn"]) == 4
    # the verdicts judged the model's decisions: a rejected page not relevant (right), a rejected page
    # relevant (a miss); too few verdicts to estimate anything, and the status says how many it needs
    status = run_cli("--config", str(cfg), "status").out
    assert "verdicts: 1 relevant, 1 not" in status
    assert ("precision n/a (needs 10 verdicts on kept pages, has 0); recall n/a (needs 10 pages judged relevant, "
            "has 1)") in status
    assert "recall 0%" not in status
    d = json.loads(run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "json").out)
    assert d["model"]["relevant"] == 1 and d["model"]["recall"] is None and d["model"]["precision"] is None
    assert d["model"]["judged_relevant"] == 1
    assert "## The model" in run_cli("--config", str(cfg), "digest", "--since", "1d").out
