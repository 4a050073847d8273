"""Relevance benchmark on Reuters-21578 (evaluation only; nothing of it ships).

A topic is the subject. For each topic, on-topic share and seed count, and
each draw: S random TRAIN documents of the topic are the seeds; the stream is
other documents of the topic mixed with documents without it so that the
topic makes up the given share (at most --stream texts; small topics give
shorter streams). Every stream text is scored exactly as `ingest poll`
scores a batch, the stream standing in for the store's window of recent
pages. Prints precision/recall/F1 at the automatic threshold, the best F1 any
threshold could reach, ROC-AUC and throughput, for the learned model and for
the cosine model alone (the baseline, in the same run).

--feedback runs the real path (bench/relevance_loop.py): the stream arrives
in order and is decided by `ingest poll`'s own decider and model keeper on a
real SQLite store (label-free: the corpus as the poll leaves it); then a user
takes `ingest review`'s suggestions 5 at a time, gives the true verdict with
`mark` and applies `rescore --apply` every 10 verdicts. F1 of the corpus on
the pages never judged, after 0/10/20/40 verdicts, per topic with the minimum.

--small is a new user's first week through the same real path: 15 on topic among 250, 3 seeds, four rounds of
5 verdicts from `review`, `rescore --apply` after each. Per topic: F1 of the corpus on the pages never judged
after 0/5/10/15/20 verdicts, what each round changed (on the same pages before and after it), and the unrelated
pages that joined in each round; then the large-stream --feedback table (3 seeds, --shares) in the same run.

--simulate-feedback is the same learning curve without a store: the stream is
split in halves; in rounds, 5 texts of the first half chosen by `review`'s rule
get their true verdict; F1 on the second half after 0/10/20/40 verdicts.

    python bench/relevance.py                       # shares 1,2,5,15,20 %, seeds 1,3,5, 10 draws
    python bench/relevance.py --feedback --seeds 3 --shares 2,15 --draws 2
    python bench/relevance.py --small --shares 2,15 --draws 1     # small-stream curve, large beside it
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.judge.relevance import borderline, score_stream  # noqa: E402
from ingest.text.terms import term_counts  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "reuters" / "articles.jsonl.gz"
# The development topics (issue 11): tune on these only.
DEV_TOPICS = ["gold", "crude", "grain", "sugar", "ship", "interest", "money-fx", "trade", "livestock", "wheat",
              "veg-oil", "reserves"]


def load() -> list[dict]:
    seen: set[str] = set()
    docs = []
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            body = " ".join(d["body"].split())
            if not body or body in seen:
                continue
            seen.add(body)
            d["text"] = (d["title"].strip() + "\n\n" + d["body"]) if d["title"].strip() else d["body"]
            d["counts"] = term_counts(d["text"])
            docs.append(d)
    return docs


def auc(pos: list[float], neg: list[float]) -> float:
    ranked = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    rank_sum = sum(i + 1 for i, (_, y) in enumerate(ranked) if y)
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def prf(pos: list[float], neg: list[float], t: float) -> tuple[float, float, float]:
    tp = sum(s >= t for s in pos)
    fp = sum(s >= t for s in neg)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / len(pos) if pos else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def best_f1(pos: list[float], neg: list[float]) -> float:
    """The best F1 of any threshold: one sort, F1 at every cut between distinct scores."""
    scores = np.array(pos + neg)
    truth = np.array([1] * len(pos) + [0] * len(neg))
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], truth[order]
    tp = np.cumsum(y)
    last = np.r_[s[1:] != s[:-1], True]  # a cut keeps all ties
    k = np.arange(1, len(s) + 1)
    f1 = 2 * tp / (k + len(pos))
    return float(f1[last].max()) if len(pos) else 0.0


def draw_stream(rng: random.Random, on: list[dict], off: list[dict], n_seeds: int, share: float, size: int):
    seedable = [d for d in on if d["lewissplit"] == "TRAIN"] or on
    seeds = rng.sample(seedable, n_seeds)
    ids = {d["id"] for d in seeds}
    pool = [d for d in on if d["id"] not in ids]
    n_pos = min(len(pool), round(size * share))
    n_neg = min(len(off), round(n_pos * (1 - share) / share))
    stream = rng.sample(pool, n_pos) + rng.sample(off, n_neg)
    rng.shuffle(stream)
    return seeds, stream


def draws(docs: list[dict], topics: list[str], seed_counts: list[int], shares: list[float], args, rng,
          keep_docs: bool = False):
    """Every (topic, seed count, share, draw): yields (topic, k, share, seed texts, stream counts, truth);
    with ``keep_docs``, the stream's texts instead of their counts."""
    for topic in topics:
        on = [d for d in docs if topic in d["topics"]]
        off = [d for d in docs if topic not in d["topics"]]
        for k in seed_counts:
            for share in shares:
                for _ in range(args.draws):
                    seeds, stream = draw_stream(rng, on, off, k, share, args.stream)
                    yield (topic, k, share, [d["text"] for d in seeds],
                           [d["text"] if keep_docs else d["counts"] for d in stream],
                           [topic in d["topics"] for d in stream])


def evaluate(scores: list[float], truth: list[bool], t: float) -> tuple[float, ...]:
    pos = [s for s, y in zip(scores, truth, strict=True) if y]
    neg = [s for s, y in zip(scores, truth, strict=True) if not y]
    p, r, f = prf(pos, neg, t)
    return p, r, f, best_f1(pos, neg), auc(pos, neg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topics", default=",".join(DEV_TOPICS), help="comma-separated Reuters topics")
    ap.add_argument("--shares", default="1,2,5,15,20", help="on-topic shares of the stream, in per cent")
    ap.add_argument("--seeds", default="1,3,5", help="seed counts")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--stream", type=int, default=3000, help="stream size (the store's window)")
    ap.add_argument("--feedback", action="store_true",
                    help="the real path instead: a store, pages decided as `ingest poll` decides them, then "
                         "`review` -> `mark` -> `rescore --apply` as a user would; F1 of the corpus")
    ap.add_argument("--small", action="store_true",
                    help="a new user's small stream through the real path: SMALL_ON on topic among SMALL_STREAM, "
                         "3 seeds, four rounds of 5 verdicts from `review`, `rescore --apply` after each; the "
                         "curve per topic, then the large-stream --feedback figures (--shares, --stream) beside it")
    ap.add_argument("--small-draws", type=int, default=5, help="with --small: draws per topic")
    ap.add_argument("--no-large", action="store_true", help="with --small: leave out the large-stream figures")
    ap.add_argument("--score-command", action="store_true",
                    help="`ingest score FILES` on a fresh store (its own code path: ingest.run.chunk.score_texts): "
                         "F1 of its relevant/not relevant per topic and share, beside the label-free poll model")
    ap.add_argument("--simulate-feedback", action="store_true",
                    help="the learning curve from verdicts, simulated on score_stream (no store)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-topic", action="store_true", help="also print each topic's F1 at each share")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"missing {DATA}")
    docs = load()
    topics = args.topics.split(",")
    shares = [float(s) / 100 for s in args.shares.split(",")]
    seed_counts = [int(s) for s in args.seeds.split(",")]
    rng = random.Random(args.seed)
    if args.small:
        small_feedback(docs, topics, args, rng)
        if not args.no_large:
            print()
            real_feedback(docs, topics, shares, [3], args, random.Random(args.seed))
        return
    if args.score_command:
        score_command(docs, topics, shares, seed_counts, args, rng)
        return
    if args.feedback:
        real_feedback(docs, topics, shares, seed_counts, args, rng)
        return
    if args.simulate_feedback:
        simulate_feedback(docs, topics, shares, seed_counts, args, rng)
        return
    rows: dict[tuple, list] = defaultdict(list)
    n_scored, seconds = 0, 0.0
    for topic, k, share, texts, counts, truth in draws(docs, topics, seed_counts, shares, args, rng):
        t0 = time.perf_counter()
        res = score_stream(texts, counts)
        seconds += time.perf_counter() - t0
        n_scored += len(counts)
        base = score_stream(texts, counts, learn=False)
        for name, r in (("learned", res), ("cosine", base)):
            rows[(name, k, share, topic)].append(evaluate([s.score for s in r.scores], truth, r.threshold.value))
    print("mean over topics and draws; F1 at the automatic threshold, best-threshold F1, ROC-AUC\n")
    print("| seeds | share | P | R | F1 | best F1 | AUC | cosine F1 | cosine best F1 | cosine AUC | F1 ratio "
          "| worst topic F1 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    summary: dict[int, list] = defaultdict(list)
    floors: list[tuple[float, str, int, float]] = []
    for k in seed_counts:
        for share in shares:
            m = [statistics.mean(v[i] for t in topics for v in rows[("learned", k, share, t)]) for i in range(5)]
            b = [statistics.mean(v[i] for t in topics for v in rows[("cosine", k, share, t)]) for i in range(5)]
            ratio = m[2] / b[2] if b[2] else float("nan")
            # the floor under every topic: the topic whose mean F1 over its draws is lowest
            per_topic = {t: statistics.mean(v[2] for v in rows[("learned", k, share, t)]) for t in topics}
            worst = min(per_topic, key=per_topic.__getitem__)
            print(f"| {k} | {share:.0%} | " + " | ".join(f"{v:.3f}" for v in m) +
                  f" | {b[2]:.3f} | {b[3]:.3f} | {b[4]:.3f} | {ratio:.2f} | {per_topic[worst]:.3f} ({worst}) |")
            floors.append((per_topic[worst], worst, k, share))
            if share in (0.02, 0.05, 0.15):
                summary[k].append((m[2], b[2]))
    for k, vals in summary.items():
        print(f"seeds={k}: mean F1 over shares 2/5/15 %: learned {statistics.mean(v[0] for v in vals):.3f}, "
              f"cosine {statistics.mean(v[1] for v in vals):.3f}")
    if args.per_topic:
        print("\nF1 at the automatic threshold per topic (learned model; mean over draws)\n")
        print("| seeds | topic | " + " | ".join(f"{sh:.0%}" for sh in shares) + " |")
        print("| --- | --- |" + " --- |" * len(shares))
        for k in seed_counts:
            for t in topics:
                print(f"| {k} | {t} | " + " | ".join(
                    f"{statistics.mean(v[2] for v in rows[('learned', k, sh, t)]):.3f}" for sh in shares) + " |")
    low = min(floors)
    print(f"lowest topic F1 at any seed count and share: {low[0]:.3f} ({low[1]}, {low[2]} seeds, {low[3]:.0%})")
    print(f"topics={len(topics)} draws={args.draws} stream<={args.stream}; learned model "
          f"{n_scored / seconds:,.0f} docs/s (one core, whole stream re-learned per draw)")


def simulate_feedback(docs, topics, shares, seed_counts, args, rng) -> None:
    steps = [0, 10, 20, 40]
    rows: dict[tuple, list] = defaultdict(list)
    for _topic, k, share, texts, counts, truth in draws(docs, topics, seed_counts, shares, args, rng):
        half = len(counts) // 2  # verdicts on [:half], F1 on [half:]
        verdicts: list[bool | None] = [None] * len(counts)
        for n in range(0, steps[-1] + 1, 5):
            res = score_stream(texts, counts, verdicts)
            scores = [s.score for s in res.scores]
            if n in steps:
                rows[(k, share, n)].append(evaluate(scores[half:], truth[half:], res.threshold.value))
            judged = {i for i, v in enumerate(verdicts) if v is not None} | set(range(half, len(counts)))
            for i in borderline(scores, res.threshold.value, judged, 5):
                verdicts[i] = truth[i]
    print("F1 on the held-out half after N verdicts chosen by `review` (mean over topics and draws)\n")
    print("| seeds | share | " + " | ".join(f"{n} verdicts" for n in steps) + " |")
    print("| --- | --- |" + " --- |" * len(steps))
    for k in seed_counts:
        for share in shares:
            print(f"| {k} | {share:.0%} | " + " | ".join(
                f"{statistics.mean(v[2] for v in rows[(k, share, n)]):.3f}" for n in steps) + " |")
    for k in seed_counts:
        for n in steps:
            vals = [statistics.mean(v[2] for v in rows[(k, s, n)]) for s in shares if s in (0.02, 0.05, 0.15)]
            if vals:
                print(f"seeds={k} verdicts={n}: mean F1 over shares 2/5/15 %: {statistics.mean(vals):.3f}")


def score_command(docs, topics, shares, seed_counts, args, rng) -> None:
    """`ingest score` on a fresh store, through the function the command calls, against score_stream on the
    same texts (what a poll of them would end with): the two must agree."""
    import tempfile

    from ingest.config import load_config
    from ingest.run.chunk import score_texts
    from ingest.store import open_store

    rows: dict[tuple, list] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="seed-ingest-bench-") as tmp:
        root = Path(tmp)
        (root / "seeds").mkdir()
        (root / "config.toml").write_text('[paths]\nseeds = "seeds"\nstore = "store"\n', encoding="utf-8")
        config = load_config(root / "config.toml")
        with open_store(config) as store:
            for _topic, k, share, texts, stream, truth in draws(docs, topics, seed_counts, shares, args, rng,
                                                                keep_docs=True):
                scored = score_texts(config, store, texts, stream)
                rows[(k, share)].append(evaluate([s.score for s in scored.scores], truth, scored.threshold.value))
                poll = score_stream(texts, [term_counts(t) for t in stream])  # what a poll of them ends with
                rows[(k, share, "poll")].append(evaluate([s.score for s in poll.scores], truth, poll.threshold.value))
    print("`ingest score FILES` on a fresh store: F1 of its decisions (mean over topics and draws), beside the "
          "decisions a poll of the same texts ends with (score_stream, same run): the command's help promises "
          "the two agree\n")
    print("| seeds | share | P | R | F1 | best F1 | poll's F1 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key, v in sorted((k, v) for k, v in rows.items() if len(k) == 2):
        means = [statistics.mean(x[i] for x in v) for i in range(4)]
        poll_f1 = statistics.mean(x[2] for x in rows[(*key, "poll")])
        print(f"| {key[0]} | {key[1]:.0%} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {poll_f1:.3f} |")


SMALL_STREAM, SMALL_ON, SMALL_SEEDS = 250, 15, 3
SMALL_STEPS = (0, 5, 10, 15, 20)


def small_feedback(docs, topics, args, rng) -> None:
    """A new user's first week: a small stream, four rounds of verdicts, `rescore --apply` after each.
    F1 on the pages never judged by the end (one held-out set for the whole curve)."""
    from relevance_loop import run_loop

    curves: dict[str, list] = defaultdict(list)
    t0 = time.perf_counter()
    for topic in topics:
        on = [d for d in docs if topic in d["topics"]]
        off = [d for d in docs if topic not in d["topics"]]
        for _ in range(args.small_draws):
            seeds, stream = draw_stream(rng, on, off, SMALL_SEEDS, SMALL_ON / SMALL_STREAM, SMALL_STREAM)
            curves[topic].append(run_loop([d["text"] for d in seeds], [d["text"] for d in stream],
                                          [topic in d["topics"] for d in stream], SMALL_STEPS, rescore_every=5,
                                          held_out_final=True))
    print(f"Small stream ({SMALL_ON} on topic among {SMALL_STREAM}, {SMALL_SEEDS} seeds): corpus F1 on the pages "
          f"never judged, after each round of 5 verdicts from `review` and `rescore --apply`; mean over "
          f"{args.small_draws} draw(s) per topic\n")
    print("| topic | " + " | ".join(f"{n}" for n in SMALL_STEPS) + " | each round's change, same pages "
          "| unrelated joins per round |")
    print("| --- |" + " --- |" * (len(SMALL_STEPS) + 2))
    means: dict[int, list[float]] = {n: [] for n in SMALL_STEPS}
    worst = (0.0, "")
    for topic in topics:
        runs = curves[topic]
        f1 = {n: statistics.mean(c.f1[n] for c in runs) for n in SMALL_STEPS}
        change = [statistics.mean(c.round_change[n] for c in runs) for n in SMALL_STEPS[1:]]
        joins = [statistics.mean(c.false_joins.get(n, 0) for c in runs) for n in SMALL_STEPS[1:]]
        for n in SMALL_STEPS:
            means[n].append(f1[n])
        worst = max(worst, (-min(change), topic))
        print(f"| {topic} | " + " | ".join(f"{f1[n]:.3f}" for n in SMALL_STEPS) + " | "
              + " ".join(f"{c:+.3f}" for c in change) + " | " + " ".join(f"{j:.1f}" for j in joins) + " |")
    mean = {n: statistics.mean(means[n]) for n in SMALL_STEPS}
    print("| **mean** | " + " | ".join(f"**{mean[n]:.3f}**" for n in SMALL_STEPS) + " | | |")
    print(f"\nmean F1 on the pages never judged, 0 -> {SMALL_STEPS[-1]} verdicts: {mean[0]:.3f} -> "
          f"{mean[SMALL_STEPS[-1]]:.3f} ({mean[SMALL_STEPS[-1]] - mean[0]:+.3f}; target >= +0.05); the largest "
          f"drop one round made to a topic's F1 (mean over its draws, the same pages before and after the round): "
          f"{max(worst[0], 0.0):.3f} ({worst[1]}; target <= 0.05); {time.perf_counter() - t0:.0f} s")


def real_feedback(docs, topics, shares, seed_counts, args, rng) -> None:
    from relevance_loop import STEPS, run_loop

    rows: dict[tuple, list] = defaultdict(list)
    t0 = time.perf_counter()
    for topic, k, share, texts, counts, truth in draws(docs, topics, seed_counts, shares, args, rng, keep_docs=True):
        for n, f1 in run_loop(texts, counts, truth).f1.items():
            rows[(k, share, n, topic)].append(f1)
    print("Corpus F1 through the real path (poll's decider on a SQLite store, then review -> mark -> rescore "
          "--apply), on the pages never judged; mean over topics and draws, and the worst topic\n")
    print("| seeds | share | " + " | ".join(f"{n} verdicts" for n in STEPS) + " | worst topic (0 / 20 verdicts) |")
    print("| --- | --- |" + " --- |" * (len(STEPS) + 1))
    for k in seed_counts:
        for share in shares:
            per = {n: {t: statistics.mean(rows[(k, share, n, t)]) for t in topics} for n in STEPS}
            means = [statistics.mean(per[n].values()) for n in STEPS]
            w0 = min(per[0], key=per[0].__getitem__)
            w20 = min(per[20], key=per[20].__getitem__)
            print(f"| {k} | {share:.0%} | " + " | ".join(f"{m:.3f}" for m in means) +
                  f" | {per[0][w0]:.3f} ({w0}) / {per[20][w20]:.3f} ({w20}) |")
    print(f"\ntopics={len(topics)} draws={args.draws} stream<={args.stream}; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
