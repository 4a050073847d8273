"""Relevance benchmark on Reuters-21578 (evaluation only; nothing of it ships).

For each topic and draw: 3 random TRAIN documents of the topic are the seeds;
positives are the other documents of the topic, negatives a random sample of
documents without it (bodies deduplicated). Every candidate is scored; the
automatic threshold is calibrated exactly as `ingest poll` does, with the
candidates as the stream's background. Prints precision/recall/F1 at that
threshold, the best F1 any threshold could reach, ROC-AUC and throughput.

    python bench/relevance.py [--topics N] [--draws N] [--negatives N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.relevance import TermStats, score_batch, term_counts  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "reuters" / "articles.jsonl.gz"
# Topic sets: "hard" mixes commodity topics whose stories overlap (ship/crude,
# grain/livestock, money-fx/interest); "r10" is the classic ModApte top-10
# (plus gold and coffee, to reach 12).
TOPIC_SETS = {
    "hard": ["gold", "crude", "coffee", "sugar", "cocoa", "ship", "grain", "trade", "interest", "money-fx",
             "copper", "livestock"],
    "r10": ["earn", "acq", "money-fx", "grain", "crude", "trade", "interest", "ship", "wheat", "corn", "gold",
            "coffee"],
}


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
    r = tp / len(pos)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def best_f1(pos: list[float], neg: list[float]) -> float:
    return max(prf(pos, neg, t)[2] for t in set(pos))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topics", type=int, default=12)
    ap.add_argument("--set", choices=sorted(TOPIC_SETS), default="hard", help="which topics (see TOPIC_SETS)")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--negatives", type=int, default=3000)
    ap.add_argument("--split", default="TRAIN", help="lewissplit the seeds come from (TRAIN to tune)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"missing {DATA}")
    docs = load()
    rng = random.Random(args.seed)
    rows = []
    n_scored = 0
    t_score = 0.0
    for topic in TOPIC_SETS[args.set][: args.topics]:
        on = [d for d in docs if topic in d["topics"]]
        off = [d for d in docs if topic not in d["topics"]]
        seedable = [d for d in on if d["lewissplit"] == args.split] or on
        for _ in range(args.draws):
            seeds = rng.sample(seedable, 3)
            seed_ids = {d["id"] for d in seeds}
            pos_docs = [d for d in on if d["id"] not in seed_ids]
            neg_docs = rng.sample(off, min(args.negatives, len(off)))
            cands = pos_docs + neg_docs
            t0 = time.perf_counter()
            counts = [term_counts(d["text"]) for d in cands]
            scores, th = score_batch([d["text"] for d in seeds], counts, TermStats(), history=[])
            t_score += time.perf_counter() - t0
            n_scored += len(cands)
            pos = [s.score for s in scores[: len(pos_docs)]]
            neg = [s.score for s in scores[len(pos_docs):]]
            p, r, f = prf(pos, neg, th.value)
            rows.append((topic, p, r, f, best_f1(pos, neg), auc(pos, neg)))
    print(f"{'topic':<10} {'P':>6} {'R':>6} {'F1':>6} {'bestF1':>7} {'AUC':>6}")
    for topic in dict.fromkeys(r[0] for r in rows):
        sel = [r for r in rows if r[0] == topic]
        m = [statistics.mean(r[i] for r in sel) for i in range(1, 6)]
        print(f"{topic:<10} " + " ".join(f"{v:6.3f}" for v in m))
    m = [statistics.mean(r[i] for r in rows) for i in range(1, 6)]
    print(f"{'MEAN':<10} " + " ".join(f"{v:6.3f}" for v in m))
    print(f"topics={len(set(r[0] for r in rows))} draws={args.draws} negatives={args.negatives} "
          f"scoring {n_scored / t_score:,.0f} docs/s (one core)")


if __name__ == "__main__":
    main()
