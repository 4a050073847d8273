"""Teaching the model on a new user's small stream, the way a user does it: poll, then rounds of
`ingest review` -> `ingest mark` (the true verdict) -> `ingest rescore --apply`, through the CLI on a
loopback web. What is measured is the curve, round by round, not only its end."""

from __future__ import annotations

import gzip
import json
import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ingest.judge.relevance import learn_model
from ingest.text.terms import term_counts, tokens
from tests.conftest import SHARED, run_cli, write_config
from tests.support.web import article_page, rss

pytestmark = pytest.mark.slow  # subprocesses and whole polls: left out by -m "not slow"

REUTERS = SHARED / "data" / "reuters" / "articles.jsonl.gz"
SIZE, ON_TOPIC, SEEDS, ROUNDS, PER_ROUND = 250, 15, 3, 4, 5


def _reuters() -> list[dict]:
    docs, seen = [], set()
    with gzip.open(REUTERS, "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            body = " ".join(d["body"].split())
            if d["title"].strip() and len(body.split()) >= 40 and body not in seen:
                seen.add(body)
                docs.append(d)
    return docs


def _f1(kept: dict[str, bool], truth: dict[str, bool], skip: set[str]) -> float:
    tp = sum(1 for u, k in kept.items() if k and truth[u] and u not in skip)
    fp = sum(1 for u, k in kept.items() if k and not truth[u] and u not in skip)
    fn = sum(1 for u, k in kept.items() if not k and truth[u] and u not in skip)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _in_corpus(store: Path) -> dict[str, bool]:
    db = sqlite3.connect(store / "ingest.db")
    try:
        return {url: bool(active) for url, active in db.execute(
            "SELECT p.url, a.id IS NOT NULL AND a.withdrawn IS NULL FROM pages p "
            "LEFT JOIN articles a ON a.id = p.article_id WHERE p.outcome IN ('kept', 'rejected', 'duplicate')")}
    finally:
        db.close()


@pytest.mark.skipif(not REUTERS.exists(), reason="../shared Reuters data absent")
@pytest.mark.parametrize(("topic", "draw"), [("gold", 11), ("trade", 3)])
def test_a_new_users_rounds_of_verdicts_never_make_the_corpus_worse(tmp_path, web, topic, draw):
    """15 pages on a development topic among 250, 3 seeds, four rounds of five verdicts answered truthfully
    from `ingest review`, `rescore --apply` after each. No round lowers F1 by more than 0.05 on the pages it
    did not judge (compared on the same pages before and after it), nor do the rounds together, and the
    pages marked "not relevant" are not replaced by as many new unrelated ones (the mean gain over the
    development topics is bench/relevance.py --small's to show: one draw is too noisy to assert it). Both
    draws failed before the model stopped memorising pseudo-positives and one page's words."""
    docs = _reuters()
    rng = random.Random(draw)
    on = [d for d in docs if topic in d["topics"]]
    off = [d for d in docs if topic not in d["topics"]]
    seeds = rng.sample([d for d in on if d["lewissplit"] == "TRAIN"], SEEDS)
    stream = rng.sample([d for d in on if d not in seeds], ON_TOPIC) + rng.sample(off, SIZE - ON_TOPIC)
    rng.shuffle(stream)
    folder = tmp_path / "seeds"
    folder.mkdir()
    for i, d in enumerate(seeds):
        (folder / f"{i:03d}.txt").write_text(f"{d['title'].strip()}\n\n{d['body'].strip()}\n", encoding="utf-8")
    hosts = [web.host(n) for n in (21, 22, 23, 24, 25)]  # five sites, so politeness does not serialise the poll
    truth, feeds = {}, []
    for h, host in enumerate(hosts):
        items = []
        for i, d in enumerate(stream[h::len(hosts)]):
            body = "\n\n".join(" ".join(p.split()) for p in d["body"].split("\n    ") if p.strip())
            url = host.add(f"/news/{i}.html", article_page(d["title"].strip().title(), body))
            truth[url] = topic in d["topics"]
            items.append({"title": d["title"], "link": url, "guid": url, "date": "Fri, 20 Nov 2026 08:00:00 GMT"})
        feeds.append(host.add("/rss.xml", rss(f"Wire {h}", items), content_type="application/rss+xml"))
    cfg = write_config(tmp_path, feeds)
    r = run_cli("--config", str(cfg), "poll", "--json")
    assert r.code == 0, r.err
    store = tmp_path / "store"
    snaps = [_in_corpus(store)]
    assert len(snaps[0]) == SIZE, len(snaps[0])
    judged: list[set[str]] = [set()]
    for _ in range(ROUNDS):
        r = run_cli("--config", str(cfg), "review", "--json", "--limit", str(PER_ROUND))
        assert r.code == 0, r.err
        items = [json.loads(line) for line in r.out.splitlines() if line.strip()]
        assert len(items) == PER_ROUND
        for it in items:
            verdict = "--relevant" if truth[it["url"]] else "--irrelevant"
            assert run_cli("--config", str(cfg), "mark", it["id"], verdict).code == 0
        assert run_cli("--config", str(cfg), "rescore", "--apply", "--json").code == 0
        judged.append(judged[-1] | {it["url"] for it in items})
        snaps.append(_in_corpus(store))
    changes = [_f1(snaps[k], truth, judged[k]) - _f1(snaps[k - 1], truth, judged[k]) for k in range(1, ROUNDS + 1)]
    unrelated_joins = [sum(1 for u, kept in snaps[k].items() if kept and not snaps[k - 1][u] and not truth[u])
                       for k in range(1, ROUNDS + 1)]
    curve = [_f1(s, truth, judged[-1]) for s in snaps]
    detail = f"F1 {curve}, each round's change {changes}, unrelated joins {unrelated_joins}"
    assert min(changes) >= -0.05, detail
    assert curve[-1] >= curve[0] - 0.05, detail
    assert sum(unrelated_joins) <= ROUNDS, detail


def test_a_word_only_one_relevant_page_holds_cannot_pull_other_pages_in():
    """A page judged relevant carries an incidental word ("yen") no seed and no other positive example has:
    the model may count the word against a page, never for it, so pages about the yen stay out."""
    rng = random.Random(5)
    topic = ("gold mine ore miners shaft tonnes ounces smelter concentrate province labour export"
             " bullion refinery").split()
    general = ("market bank company shares profit quarter said government official minister price week year"
               " growth trade report plan talks sales rose fell percent billion million").split()
    yen = "yen tokyo japanese dollar currency intervention exchange".split()

    def text(words: list[str], n: int = 80) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    seeds = [text(topic + general[:5]) for _ in range(3)]
    stream = ([text(topic + general) for _ in range(12)] + [text(general) for _ in range(200)]
              + [text(yen + general) for _ in range(30)] + [text(topic + general) + " " + text(yen, 25)])
    verdicts: list[bool | None] = [None] * (len(stream) - 1) + [True]
    model = learn_model(seeds, [term_counts(t) for t in stream], verdicts)
    assert model.kind == "logistic"
    weights = dict(zip(model.terms, model.weights, strict=True))
    assert all(weights[w] <= 0 for w in ("yen", "tokyo", "intervention")), {w: weights[w] for w in yen}
    yen_pages = model.score([term_counts(t) for t in stream[212:242]])
    assert not any(s.score >= model.threshold.value for s in yen_pages)
    assert np.mean([s.score >= model.threshold.value for s in model.score([term_counts(t) for t in stream[:12]])]) > 0.8


def test_matched_terms_are_words_a_person_reads():
    """The terms shown for a score leave out tokens under three letters and words most pages hold ("said",
    "reuter"), though they still count in the score."""
    rng = random.Random(9)
    topic = "gold mine ore miners shaft bullion smelter ounces".split()
    other = "bank shares profit quarter minister price growth trade talks sales".split()

    def text(words: list[str]) -> str:
        return " ".join(rng.choice(words) for _ in range(60)) + " k nd u s said reuter"

    seeds = [text(topic) for _ in range(3)]
    for n_other in (30, 120):  # the cosine model of a small stream, the learned one of a larger
        stream = [text(topic + other[:3]) for _ in range(15)] + [text(other) for _ in range(n_other)]
        model = learn_model(seeds, [term_counts(t) for t in stream])
        shown = {t for s in model.score([term_counts(t) for t in stream], n_terms=12) for t in s.terms}
        assert shown and shown <= set(tokens(" ".join(topic + other))), (model.kind, shown)


def test_score_on_a_fresh_store_learns_from_the_texts_it_scores(tmp_path, seeds_dir):
    """`ingest score FILES` decides as a poll of these texts would end: with the model learned from them
    (the learned model, once they are enough), not with the empty window's cosine model."""
    from ingest.judge.relevance import score_stream

    rng = random.Random(3)
    seeds = [p.read_text(encoding="utf-8") for p in sorted(seeds_dir.glob("*.txt"))]
    seed_words = [w for s in seeds for w in s.split() if w.isalpha() and len(w) > 3]
    other = ("bank shares profit quarter minister price growth trade talks sales market company football match "
             "league recipe oven weather rain smartphone battery camera election vote budget").split()
    texts = [" ".join(rng.choice(seed_words) for _ in range(60)) + " " + " ".join(rng.choice(other) for _ in range(30))
             for _ in range(8)] + [" ".join(rng.choice(other) for _ in range(90)) for _ in range(80)]
    files = []
    for i, t in enumerate(texts):
        files.append(tmp_path / f"t{i:03d}.txt")
        files[-1].write_text(f"Item {i}\n\n{t}\n", encoding="utf-8")
    cfg = write_config(tmp_path, [])
    rows = run_cli("--config", str(cfg), "score", "--json", *map(str, files)).jsonl()
    expected = score_stream(seeds, [term_counts(f.read_text(encoding="utf-8")) for f in files])
    assert expected.threshold.model == "logistic"
    assert [r["score"] for r in rows] == [s.score for s in expected.scores]
    assert {r["threshold"] for r in rows} == {expected.threshold.value}
    assert sum(r["relevant"] for r in rows[:8]) >= 6 and not any(r["relevant"] for r in rows[8:])


def _topic_moved_to_football(tmp_path, seeds_dir, web):
    """The news web polled with the gold-mining seeds, then football made the only seed: the config."""
    from tests.conftest import build_news_web
    from tests.run.test_feedback import FOOTBALL_SEED

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    assert run_cli("--config", str(cfg), "poll").code == 0
    for p in seeds_dir.iterdir():
        p.unlink()
    (seeds_dir / "000_football.txt").write_text(FOOTBALL_SEED, encoding="utf-8")
    return cfg


def test_one_score_per_article_in_the_digest_and_the_model_drawn(tmp_path, seeds_dir, web):
    """After the topic moves (football is the only seed), the digest rates each article under the model
    of now, the same number its "Help it learn" list gives, says what it was kept at, and draws the
    window's scores with the threshold, the seeds and the verdicts (SVG, no script)."""
    import re

    cfg = _topic_moved_to_football(tmp_path, seeds_dir, web)
    d = json.loads(run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "json").out)
    review = {r["url"]: r["score"] for r in d["review"]}
    assert d["items"] and all(it["decided_score"] is not None for it in d["items"])  # kept under the old seeds
    for it in d["items"]:
        assert it["score"] < it["decided_score"]
        if it["url"] in review:
            assert it["score"] == review[it["url"]]
    html = run_cli("--config", str(cfg), "digest", "--since", "1d", "--format", "html").out
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert "threshold" in svg and svg.count("a seed:") == 1 and "<script" not in html
    assert re.search(r"kept at 0\.\d{3} under an earlier model", html)


@pytest.mark.skipif(not REUTERS.exists(), reason="../shared Reuters data absent")
def test_the_same_stream_in_another_order_makes_the_same_corpus(tmp_path, web):
    """A new store polls 300 pages (a development topic at 10 %) listed in one order, another new store the
    same pages in the reverse order, one page at a time: the corpora are the same (the poll ends by
    re-deciding its provisional pages with a model that has seen them all)."""
    docs = _reuters()
    rng = random.Random(5)
    on = [d for d in docs if "trade" in d["topics"]]
    off = [d for d in docs if "trade" not in d["topics"]]
    seeds = rng.sample([d for d in on if d["lewissplit"] == "TRAIN"], SEEDS)
    stream = rng.sample([d for d in on if d not in seeds], 30) + rng.sample(off, 270)
    rng.shuffle(stream)
    host = web.host(26)
    items = []
    for i, d in enumerate(stream):
        body = "\n\n".join(" ".join(p.split()) for p in d["body"].split("\n    ") if p.strip())
        url = host.add(f"/n/{i}.html", article_page(d["title"].strip().title(), body))
        items.append({"title": d["title"], "link": url, "guid": url, "date": "Fri, 20 Nov 2026 08:00:00 GMT"})
    forward = host.add("/forward.xml", rss("Wire", items), content_type="application/rss+xml")
    backward = host.add("/backward.xml", rss("Wire", items[::-1]), content_type="application/rss+xml")
    kept = []
    for name, feed in (("a", forward), ("b", backward)):
        folder = tmp_path / name
        (folder / "seeds").mkdir(parents=True)
        for i, d in enumerate(seeds):
            (folder / "seeds" / f"{i}.txt").write_text(f"{d['title'].strip()}\n\n{d['body'].strip()}\n",
                                                       encoding="utf-8")
        cfg = write_config(folder, [feed], "[worker]\nprocesses = 1\n")
        cfg.write_text(cfg.read_text(encoding="utf-8").replace("[fetch]\n", "[fetch]\nper_host = 1\n"
                                                                             "concurrency = 1\n"
                                                                             "max_entries_per_poll = 400\n"),
                       encoding="utf-8")
        assert run_cli("--config", str(cfg), "poll").code == 0
        kept.append({a["url"] for a in run_cli("--config", str(cfg), "export").jsonl()})
    # one page per story: of two copies of a story, the one that arrives first is kept, the other is its
    # duplicate; that choice is the only thing the order may change
    differ = kept[0] ^ kept[1]
    for name, urls in (("a", kept[0]), ("b", kept[1])):
        db = sqlite3.connect(tmp_path / name / "store" / "ingest.db")
        outcome = dict(db.execute("SELECT url, outcome FROM pages"))
        assert all(outcome[u] == "duplicate" for u in differ - urls), [(u, outcome[u]) for u in differ - urls]
    assert len(kept[0]) == len(kept[1]) and len(differ) <= 4, (len(kept[0]), len(kept[1]), len(differ))


def test_the_web_view_gives_one_score_per_article_and_says_when_it_moved(tmp_path, seeds_dir, web):
    """The topic moves (football is the only seed): the article page gives the score under the model of
    now and says the article was kept at another one and would leave; the review page, its model box
    and the corpus list give the same numbers."""
    import re
    import signal

    import httpx

    from tests.out.test_web import _free_port, _serve

    cfg = _topic_moved_to_football(tmp_path, seeds_dir, web)
    listen = f"127.0.0.1:{_free_port()}"
    proc = _serve(cfg, listen)
    try:
        with httpx.Client(base_url=f"http://{listen}", timeout=30) as client:
            ids = [int(i) for i in re.findall(r'href="/a/(\d+)"', client.get("/").text)]
            art = client.get(f"/a/{ids[0]}").text
            now = re.search(r"score (\d\.\d{3}) against threshold (\d\.\d{3}) under the model learned now", art)
            assert now, art
            assert "it would leave on the next re-decision" in art and re.search(r"kept on .* at 0\.\d{3}", art)
            review = client.get("/review").text
            assert set(re.findall(r"threshold (\d\.\d{3})", review)) == {now.group(2)}
            # a rejected page in the queue: its own page gives the queue's score (under the model of now)
            pids = re.findall(r"<code>p(\d+)</code>", review)
            assert pids
            for pid in pids:
                shown = client.get(f"/p/{pid}", follow_redirects=True).text
                listed = re.search(rf"score (\d\.\d{{3}}) vs threshold \d\.\d{{3}} · [a-z ]+ · <code>p{pid}</code>",
                                   review)
                assert listed and f"score {listed.group(1)} against threshold {now.group(2)}" in shown, shown
            listing = client.get("/").text
            assert f"score {now.group(1)} (kept at" in listing and "would leave on the next re-decision" in listing
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    # the CLI's surfaces give the same numbers: export (score and threshold now, kept_score apart) and status
    exported = {a["id"]: a for a in map(json.loads, run_cli("--config", str(cfg), "export").out.splitlines())}
    a = exported[ids[0]]
    assert (f"{a['score']:.3f}", f"{a['threshold']:.3f}") == (now.group(1), now.group(2))
    assert a["kept_score"] > a["score"]
    status = run_cli("--config", str(cfg), "status").out
    assert f"threshold {now.group(2)}," in status


def test_mark_names_the_pages_a_verdict_would_bring_in_with_their_terms(tmp_path, seeds_dir, web):
    """A football report judged relevant: `mark` says which other page the model would now let in (the
    second football report), with its score and the terms that would bring it, before anything changes."""
    from tests.conftest import build_news_web
    from tests.run.test_feedback import FOOTBALL_SEED
    from tests.support.web import article_page, rss

    news = build_news_web(web)
    h = web.host(7)
    match = h.add("/match.html", article_page("Cup tie settled by penalties after goalless derby",
                                              FOOTBALL_SEED.split("\n", 2)[2]))
    feed = h.add("/feed.xml", rss("Sport", [{"title": "Cup tie", "link": match, "guid": "m1"}]))
    cfg = write_config(tmp_path, news.feeds + [feed])
    assert run_cli("--config", str(cfg), "poll").code == 0
    db = sqlite3.connect(tmp_path / "store" / "ingest.db")
    (pid,) = db.execute("SELECT id FROM pages WHERE url=?", (news.pages["off_football"],)).fetchone()
    r = run_cli("--config", str(cfg), "mark", f"p{pid}", "--relevant")
    assert r.code == 0, r.err
    line = next(x for x in r.out.splitlines() if x.strip().startswith("would join:"))
    assert "Cup tie settled by penalties" in line and "matched on:" in line
    assert not {"the", "and", "said"} & set(line.split("matched on:")[1].strip(" )").split(", "))


def test_a_feeds_own_threshold_holds_on_every_surface_and_in_rescore(tmp_path, seeds_dir, web):
    """Feed C trusted with `threshold = 0` (keep all its pages): after the topic moves to football, the
    rescore that takes the gold articles out leaves feed C's article in, its rejected page joins, and
    export, review and the article page give feed C's pages threshold 0, the others the model's."""
    cfg = _topic_moved_to_football(tmp_path, seeds_dir, web)
    feed_c = next(line.split('"')[1] for line in cfg.read_text().splitlines() if "/rdf.xml" in line)
    cfg.write_text(cfg.read_text().replace(f'url = "{feed_c}"\n', f'url = "{feed_c}"\nthreshold = 0.0\n'))
    result = json.loads(run_cli("--config", str(cfg), "rescore", "--apply", "--json").out)
    left = "\n".join(it["url"] for it in result["leave"])
    assert len(result["withdrawn"]) == len(result["leave"])
    assert "hyesan" in left or "sanctions" in left or "forced" in left  # gold articles leave
    assert "collapse" not in left  # feed C's stays: its threshold is 0
    assert any("weather" in it["url"] for it in result["join"])  # feed C's rejected page joins
    exported = [json.loads(line) for line in run_cli("--config", str(cfg), "export").out.splitlines()]
    mine = [a for a in exported if "collapse" in a["url"] or "weather" in a["url"]]
    assert len(mine) == 2 and all(a["threshold"] == 0.0 for a in mine)
    others = [a for a in exported if a not in mine]
    assert all(a["threshold"] > 0 for a in others)


def test_a_polls_counts_match_the_files_in_corpus(tmp_path, seeds_dir, web):
    """What `poll` says it did to corpus/ is what the user finds there: the change (kept, plus joined,
    minus left on re-decision) and the count, on the first poll and on one that finds nothing new."""
    from tests.conftest import build_news_web

    news = build_news_web(web)
    cfg = write_config(tmp_path, news.feeds)
    corpus = tmp_path / "store" / "corpus"
    first = json.loads(run_cli("--config", str(cfg), "poll", "--json").out)
    files = sorted(corpus.glob("*.txt"))
    assert first["kept"] >= 3 and first["corpus_articles"] == len(files) == first["corpus_change"]
    assert first["corpus_change"] == first["kept"] + first["redecided_kept"] - first["redecided_withdrawn"]
    second = run_cli("--config", str(cfg), "poll")
    assert f"corpus/: {len(files)} articles (+0 this poll)" in second.out
    assert sorted(corpus.glob("*.txt")) == files
