"""Near-duplicate merging benchmark on Reuters-21578 (evaluation only).

Builds a stream of Reuters stories (bodies of at least 60 words, including
the collection's own exact-duplicate bodies) plus edited copies of some of
them, as syndication produces: a changed title, the first or last paragraph
cut, boilerplate added (bylines, copyright lines, "read more" links), light
copy-editing. Stories are then merged online exactly as the pipeline does
(text hash, then MinHash/LSH from ingest.dedup) and the merges are scored
pairwise against the truth: precision = merged pairs that are the same story
/ all merged pairs; recall = same-story pairs merged / all same-story pairs.
Different stories on the same subject are in the stream too (Reuters has
dozens per topic) and must stay apart.

    python bench/dedup.py [--stories 4000] [--copies 800] [--threshold 0.5]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import dedup  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "reuters" / "articles.jsonl.gz"

BOILERPLATE = [
    "By our correspondent",
    "Copyright 1987 Reuters. All rights reserved. Republication or redistribution is prohibited.",
    "Click here to subscribe to our daily newsletter and never miss a story.",
    "Read more: Markets wrap-up, commodities and currencies in our business section.",
    "Share this article on Facebook Twitter Email Print",
    "This story has been corrected to fix a typographical error in the second paragraph.",
    "Related coverage: see also our special report on world trade.",
]
TITLES = ["UPDATE 1-", "WRAPUP-", "ANALYSIS-", "Breaking: ", "Exclusive: "]
SWAPS = [("said", "stated"), ("the", "this"), ("would", "will"), ("and", "as well as"), ("percent", "pct")]


def paragraphs(body: str) -> list[str]:
    return [p.strip() for p in body.replace("\n    ", "\n\n").split("\n\n") if p.strip()]


def edited_copy(doc: dict, rng: random.Random) -> str:
    paras = paragraphs(doc["body"])
    title = doc["title"] or paras[0][:60]
    edits = rng.sample(["title", "cut", "boiler", "swap"], k=rng.randint(2, 3))
    if "title" in edits:
        title = rng.choice(TITLES) + title.title()
    if "cut" in edits and len(paras) > 3:
        paras = paras[1:] if rng.random() < 0.5 else paras[:-1]
    if "boiler" in edits:
        paras = [rng.choice(BOILERPLATE)] + paras + [rng.choice(BOILERPLATE), rng.choice(BOILERPLATE)]
    if "swap" in edits:
        a, b = rng.choice(SWAPS)
        paras = [p.replace(f" {a} ", f" {b} ", 2) for p in paras]
    return title + "\n\n" + "\n\n".join(paras)


def text_of(doc: dict) -> str:
    return ((doc["title"] + "\n\n") if doc["title"] else "") + "\n\n".join(paragraphs(doc["body"]))


def _exact_twins(texts: list[str], threshold: float) -> list[tuple[int, int]]:
    """Pairs (i < j) whose exact shingle-set Jaccard reaches threshold (inverted index on shingles)."""
    sets = [dedup.shingles(t) for t in texts]
    index: dict[bytes, list[int]] = defaultdict(list)
    for i, sh in enumerate(sets):
        for s in sh:
            index[s].append(i)
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for ids in index.values():
        if 1 < len(ids) <= 50:  # a shingle in more than 50 texts is boilerplate, not a twin sign
            for a, b in itertools.combinations(ids, 2):
                shared[(a, b)] += 1
    out = []
    for (a, b), n in shared.items():
        if n / (len(sets[a]) + len(sets[b]) - n) >= threshold:
            out.append((a, b))
    return sorted(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stories", type=int, default=4000)
    ap.add_argument("--copies", type=int, default=800)
    ap.add_argument("--threshold", type=float, default=dedup.NEAR_DUP_THRESHOLD)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"missing {DATA}")
    rng = random.Random(args.seed)
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        docs = [d for d in map(json.loads, fh) if len(d["body"].split()) >= 60]
    by_body = defaultdict(list)
    for d in docs:
        by_body[" ".join(d["body"].split())].append(d)
    dup_groups = [g for g in by_body.values() if len(g) > 1]
    # the story id of an exact-duplicate body is its first document
    story = {d["id"]: g[0]["id"] for g in by_body.values() for d in g}
    in_dups = [d for g in dup_groups for d in g]
    singles = [g[0] for g in by_body.values() if len(g) == 1]
    stream = [(story[d["id"]], text_of(d)) for d in in_dups]
    picked = rng.sample(singles, min(args.stories, len(singles)))
    # Reuters also re-sends stories with small changes (corrections, updates), unlabeled.
    # Label them with an independent, exact measure: Jaccard of the 5-shingle sets >= 0.8.
    twins = _exact_twins([text_of(d).partition("\n\n")[2] for d in picked], 0.8)
    for a, b in twins:
        story[picked[b]["id"]] = story.get(picked[a]["id"], picked[a]["id"])
    stream += [(story.get(d["id"], d["id"]), text_of(d)) for d in picked]
    stream += [(story.get(d["id"], d["id"]), edited_copy(d, rng)) for d in rng.sample(picked, args.copies)]
    rng.shuffle(stream)

    # online merging, as the pipeline does it (the store's tables replaced by dicts)
    t0 = time.perf_counter()
    by_hash: dict[str, int] = {}
    bands: dict[int, list[int]] = defaultdict(list)
    sigs: dict[int, bytes] = {}
    cluster_of: list[int] = []
    for i, (_, text) in enumerate(stream):
        body = text.partition("\n\n")[2] or text
        h = dedup.text_hash(body)
        if h in by_hash:
            cluster_of.append(by_hash[h])
            continue
        sig = dedup.signature(body)
        match = None
        if sig is not None:
            keys = dedup.band_keys(sig)
            cands = {c for k in keys for c in bands.get(k, ())}
            match = dedup.best_match(sig, ((c, sigs[c]) for c in cands), args.threshold)
        if match:
            cluster_of.append(match[0])
            continue
        by_hash[h] = i
        cluster_of.append(i)
        if sig is not None:
            sigs[i] = sig
            for k in keys:
                bands[k].append(i)
    seconds = time.perf_counter() - t0

    truth = defaultdict(list)
    pred = defaultdict(list)
    for i, (sid, _) in enumerate(stream):
        truth[sid].append(i)
        pred[cluster_of[i]].append(i)
    true_pairs = {p for g in truth.values() for p in itertools.combinations(sorted(g), 2)}
    pred_pairs = {p for g in pred.values() for p in itertools.combinations(sorted(g), 2)}
    tp = len(true_pairs & pred_pairs)
    precision = tp / len(pred_pairs) if pred_pairs else 1.0
    recall = tp / len(true_pairs) if true_pairs else 1.0
    print(f"stream: {len(stream)} texts = {len(in_dups)} in {len(dup_groups)} Reuters exact-duplicate groups, "
          f"{len(picked)} other stories ({len(twins)} pairs of them Reuters re-sends, exact Jaccard >= 0.8), "
          f"{args.copies} edited copies")
    print(f"same-story pairs: {len(true_pairs)}; merged pairs: {len(pred_pairs)}; correct: {tp}")
    print(f"threshold {args.threshold}: precision {precision:.3f}  recall {recall:.3f}  "
          f"({len(stream) / seconds:,.0f} texts/s on one core)")


if __name__ == "__main__":
    main()
