"""Backfill benchmark: how much of a topic's history `ingest backfill` finds for the pages it fetches.

A simulated web (bench/archiveweb.py) of three news sites with --per-site archived articles each
(Reuters-21578 stories over three years, 1.5-2 % of each site on the topic; sites 0 and 1 with
95 % dated-slug URLs, site 2 mostly opaque (35 % slugs); sitemap indexes with monthly and gzipped
sitemaps and a news sitemap; site 1 a WordPress-style paged feed; five related-story links per
page). 3 seeds of the topic. Each run starts from a fresh store whose first poll read the sites'
feeds (their newest 20 entries), then backfills through the real command's engine
(ingest.run.backfill) over loopback:

- best-first without the stop rule, up to 50 % of the archive: the curve (on-topic articles in the
  corpus at 5, 12, 25, 50 % fetched), per site at 12 %;
- best-first with the yield rule: where each site stopped and what it had found by then;
- sitemap order (the baseline, same run): the curve;
- best-first with every page joining the model's window (the drift the design avoids).

Relevance on backfilled pages against polled ones: precision/recall/F1 of the decisions on the
pages the best-first run fetched, and on the random sample of each site (fetched as a poll would
meet pages); the requests spent on discovery.

    python bench/backfill.py                      # topics crude, grain, trade; 5,000 pages a site
    python bench/backfill.py --topics gold --per-site 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.archiveweb import ArchiveWeb  # noqa: E402
from ingest.config import load_config  # noqa: E402
from ingest.run.backfill import Backfill, Target  # noqa: E402
from ingest.run.poll import Poll  # noqa: E402
from ingest.sources.fetch import Fetcher  # noqa: E402
from ingest.sources.urls import normalize  # noqa: E402
from ingest.store import StoreThread, open_store  # noqa: E402

REUTERS = ROOT.parent / "shared" / "data" / "reuters" / "articles.jsonl.gz"
POINTS = (0.05, 0.12, 0.25, 0.50)


def load() -> list[dict]:
    seen, out = set(), []
    with gzip.open(REUTERS, "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            body = d["body"].strip()
            key = " ".join(body.split())
            if not d["title"].strip() or len(body.split()) < 40 or key in seen:
                continue
            seen.add(key)
            paras = [" ".join(p.split()) for p in body.replace("\n    ", "\n\n").split("\n\n") if p.strip()]
            out.append({"id": d["id"], "title": d["title"].strip().title(), "body": "\n\n".join(paras),
                        "topics": d["topics"], "split": d.get("lewissplit", "")})
    return out


def build(docs: list[dict], topic: str, per_site: int, rng: random.Random) -> tuple[list[dict], list[str]]:
    on = [d for d in docs if topic in d["topics"]]
    off = [d for d in docs if topic not in d["topics"]]
    seeds = rng.sample([d for d in on if d["split"] == "TRAIN"] or on, 3)
    pool = [d for d in on if d not in seeds]
    rng.shuffle(pool)
    rng.shuffle(off)
    sites = []
    for i, (slugs, paged) in enumerate(((0.95, False), (0.95, True), (0.35, False))):
        k = min(round(per_site * rng.uniform(0.015, 0.02)), len(pool) // (3 - i))
        mine, pool = pool[:k], pool[k:]
        rest, off = off[:per_site - k], off[per_site - k:]
        stories = sorted(mine + rest, key=lambda d: d["id"])  # Reuters ids run with time: stories come in runs
        sites.append({"stories": [{"title": s["title"], "body": s["body"], "topics": s["topics"]} for s in stories],
                      "slug_share": slugs, "paged_feed": paged})
    return sites, [f"{d['title']}\n\n{d['body']}" for d in seeds]


def run_mode(web: ArchiveWeb, topic: str, seeds: list[str], mode: str, fraction: float, ex) -> dict:
    """One fresh store: a first poll of the feeds, then a backfill in ``mode``. Returns what was fetched, in
    order, with its decision and truth."""
    with tempfile.TemporaryDirectory(prefix="seed-ingest-backfill-") as tmp:
        root = Path(tmp)
        (root / "seeds").mkdir()
        for i, t in enumerate(seeds):
            (root / "seeds" / f"{i}.txt").write_text(t, encoding="utf-8")
        feeds = "".join(f'[[feeds]]\nurl = "{s.origin}/feed/"\n' for s in web.view)
        (root / "config.toml").write_text(
            '[paths]\nseeds = "seeds"\nstore = "store"\n[fetch]\nallow_private_networks = true\nhost_delay = 0\n'
            f"per_host = 4\n{feeds}", encoding="utf-8")
        config = load_config(root / "config.toml")
        store = open_store(config)
        store.sync_feeds((f.url, f.name, f.enabled) for f in config.feeds)
        total = sum(len(s.stories) for s in web.view)
        started = time.monotonic()

        async def go():
            db = StoreThread()
            try:
                async with Fetcher(config.fetch) as fetcher:
                    poll = Poll(config, store, seeds, fetcher, ex, db=db)
                    await poll.run()
                    bf = Backfill(config, store, seeds, fetcher, ex, db=db, model=poll.model,
                                  rng=random.Random(5), order="sitemap" if mode == "sitemap" else "best",
                                  yield_rule=mode == "yield", window="all" if mode == "window-all" else "sample")
                    targets = [Target(s.origin, (f"{s.origin}/feed/",)) for s in web.view]
                    return await bf.run(targets, max_pages=round(total * fraction))
            finally:
                db.close()

        report = asyncio.run(go())
        seconds = time.monotonic() - started
        truth = {}
        for s in web.view:
            for i, st in enumerate(s.stories):
                truth[normalize(s.url(i))] = (s.index, topic in st["topics"])
        rows = store.db.execute(
            "SELECT p.url, CASE WHEN a.withdrawn IS NOT NULL THEN 'withdrawn' ELSE p.outcome END, c.fetched, c.id, "
            "s.page_id IS NOT NULL FROM candidates c JOIN pages p ON p.url = c.url "
            "LEFT JOIN articles a ON a.id = p.article_id LEFT JOIN stream s ON s.page_id = p.id "
            "WHERE c.fetched IS NOT NULL ORDER BY p.id").fetchall()
        fetched = [(truth[r[0]][0], truth[r[0]][1], r[1], bool(r[4])) for r in rows if r[0] in truth]
        corpus = {r[0] for r in store.db.execute("SELECT p.url FROM pages p JOIN articles a ON a.id = p.article_id "
                                                 "WHERE p.outcome = 'kept' AND a.withdrawn IS NULL")}
        polled = [u for u in corpus if u in truth and u not in {r[0] for r in rows}]
        store.close()
        return {"report": report, "fetched": fetched, "corpus": corpus, "truth": truth, "seconds": seconds,
                "polled_on": sum(truth[u][1] for u in polled)}


def curve(res: dict, total: int, on_total: int, site: int | None = None, reached: bool = False) -> dict[float, float]:
    """On-topic articles in the corpus (share of all on-topic) at each fraction of the archive fetched
    (``reached``: on-topic pages fetched, whatever their decision)."""
    out, found = {}, res["polled_on"] if site is None else 0
    fetched = [f for f in res["fetched"] if site is None or f[0] == site]
    marks = {round(p * total): p for p in POINTS}
    for n, (_, on, outcome, _) in enumerate(fetched, 1):
        found += on and (reached or outcome == "kept")
        if n in marks:
            out[marks[n]] = found / on_total
    for p in POINTS:
        out.setdefault(p, found / on_total)  # the run ended first: what it had
    return out


def prf(rows: list[tuple[bool, str]]) -> tuple[float, float, float]:
    tp = sum(on and o == "kept" for on, o in rows)
    fp = sum((not on) and o == "kept" for on, o in rows)
    fn = sum(on and o in ("rejected", "withdrawn") for on, o in rows)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topics", default="crude,grain,trade")
    ap.add_argument("--per-site", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--latency", type=float, default=0.02)
    ap.add_argument("--modes", default="best,yield,sitemap,window-all")
    ap.add_argument("--port", type=int, default=18380, help="the simulated web's first port")
    a = ap.parse_args()
    if not REUTERS.exists():
        sys.exit(f"needs the shared data: {REUTERS}")
    docs = load()
    modes = a.modes.split(",")
    summary: dict[str, list] = {}
    with ProcessPoolExecutor(2) as ex:
        for t_i, topic in enumerate(a.topics.split(",")):
            rng = random.Random(a.seed * 100 + t_i)
            sites, seeds = build(docs, topic, a.per_site, rng)
            web = ArchiveWeb(sites, port=a.port, latency=a.latency, seed=a.seed).start()
            try:
                total = sum(len(s.stories) for s in web.view)
                on_site = [sum(topic in st["topics"] for st in s.stories) for s in web.view]
                on_total = sum(on_site)
                print(f"\n## {topic}: {total} archived pages, {on_total} on topic "
                      f"({', '.join(f'site {i}: {n}' for i, n in enumerate(on_site))})")
                for mode in modes:
                    res = run_mode(web, topic, seeds, mode, 0.5, ex)
                    rep = res["report"]
                    c = curve(res, total, on_total)
                    per12 = [curve(res, len(web.view[i].stories), on_site[i], site=i)[0.12] for i in range(3)]
                    line = " / ".join(f"{c[p]:.2f}" for p in POINTS)
                    r = curve(res, total, on_total, reached=True)
                    line += " (fetched: " + " / ".join(f"{r[p]:.2f}" for p in POINTS) + ")"
                    print(f"{mode:>10}: found at 5/12/25/50 % fetched {line}; at 12 % per site "
                          f"{' / '.join(f'{x:.2f}' for x in per12)}; fetched {rep.total('fetched')} "
                          f"discovery requests {rep.total('discovery_requests')} ({res['seconds']:.0f} s)")
                    summary.setdefault(mode, []).append((c, per12))
                    if mode in ("best", "window-all"):
                        ranked = [(on, o) for _, on, o, w in res["fetched"] if not w]
                        sample = [(on, o) for _, on, o, w in res["fetched"] if w]
                        p1, r1, f1 = prf(ranked)
                        p2, r2, f2 = prf(sample)
                        print(f"{'':>10}  decisions on best-first pages P {p1:.2f} R {r1:.2f} F1 {f1:.2f}; "
                              f"on the random sample ({len(sample)}) P {p2:.2f} R {r2:.2f} F1 {f2:.2f}")
                    if mode == "yield":
                        for i, s in enumerate(rep.per_site):
                            fetched_i = [f for f in res["fetched"] if f[0] == i]
                            found_i = sum(on and o == "kept" for _, on, o, _ in fetched_i)
                            share = len(fetched_i) / len(web.view[i].stories)
                            print(f"{'':>10}  site {i}: stopped {s.stopped} at {share:.0%} fetched, found "
                                  f"{found_i / max(1, on_site[i]):.2f} of its on-topic")
                            summary.setdefault("yield-sites", []).append((share, found_i / max(1, on_site[i])))
            finally:
                web.stop()
    print("\n## mean over topics")
    for mode in modes:
        rows = summary.get(mode, [])
        if rows:
            line = " / ".join(f"{statistics.mean(c[p] for c, _ in rows):.2f}" for p in POINTS)
            opaque = statistics.mean(per[2] for _, per in rows)
            print(f"{mode:>10}: found at 5/12/25/50 % {line}; opaque site at 12 % {opaque:.2f}")
    if summary.get("yield-sites"):
        ys = summary["yield-sites"]
        print(f"yield rule: sites stopped at {statistics.mean(s for s, _ in ys):.0%} fetched on average "
              f"(max {max(s for s, _ in ys):.0%}), found {statistics.mean(f for _, f in ys):.2f} "
              f"(min {min(f for _, f in ys):.2f})")


if __name__ == "__main__":
    main()
