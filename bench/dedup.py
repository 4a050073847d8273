"""Near-duplicate merging benchmark on Reuters-21578 (evaluation only).

Builds a stream of Reuters stories (bodies of at least 60 words, including
the collection's own exact-duplicate bodies) plus edited copies of some of
them, as syndication produces: a changed title, the first or last paragraph
cut, boilerplate added (bylines, copyright lines, "read more" links), light
copy-editing. Stories are then merged online exactly as the pipeline does
(text hash, then MinHash/LSH from ingest.judge.dedup) and the merges are scored
pairwise against the truth: precision = merged pairs that are the same story
/ all merged pairs; recall = same-story pairs merged / all same-story pairs.
Different stories on the same subject are in the stream too (Reuters has
dozens per topic) and must stay apart.

A second stream holds short wire stories only (30-90 words of prose, at
least two paragraphs; Reuters' price tables left out): copies lose a
paragraph (any one holding at most 40 % of the words: the rest is still the
story) and at most one other edit: a byline, a credit line, a new headline
or a copy-edit. Jaccard alone falls
below the threshold when one copy is much shorter; the containment check of
ingest.judge.dedup.find_match is what merges them.

A third stream is wire stories of which ~15 % run again on a second site
under another URL: the headline edited, the wire's sign-off dropped, and the
dateline, the lead or the last paragraph changed (syndicated_copy).

    python bench/dedup.py [--stories 4000] [--copies 800] [--short 3000] [--short-copies 1000]
                          [--syndicated 1200] [--syndicated-share 0.15]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest.judge import dedup  # noqa: E402
from ingest.text import fingerprint  # noqa: E402

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


def _droppable(paras: list[str]) -> list[int]:
    """Paragraphs a copy may lose and still be a copy: at most 40 % of the story's words."""
    total = sum(len(p.split()) for p in paras)
    return [i for i, p in enumerate(paras) if len(p.split()) <= 0.4 * total]


def _prose(body: str) -> bool:
    """A story in sentences, not a table of prices (Reuters' market reports)."""
    words = body.split()
    return sum(w.strip(".,;:()\"'").isalpha() for w in words) >= 0.7 * len(words)


def short_copy(doc: dict, rng: random.Random) -> str:
    """A short story as another site carries it: one paragraph lost, and at most one other edit."""
    paras = paragraphs(doc["body"])
    title = doc["title"] or paras[0][:60]
    drop = rng.choice(_droppable(paras))
    paras = paras[:drop] + paras[drop + 1:]
    for edit in rng.sample(["title", "byline", "credit", "swap"], k=rng.randint(0, 1)):
        if edit == "title":
            title = rng.choice(TITLES) + title.title()
        elif edit == "byline":
            paras = [rng.choice(BOILERPLATE[:1] + ["From our wire service", "Staff and agencies"])] + paras
        elif edit == "credit":
            paras = paras + [rng.choice(BOILERPLATE[1:3])]
        else:
            a, b = rng.choice(SWAPS)  # one copy-edit in the whole story
            text = "\n\n".join(paras).replace(f" {a} ", f" {b} ", 1)
            paras = text.split("\n\n")
    return title + "\n\n" + "\n\n".join(paras)


CITIES = ["SEOUL", "NEW YORK", "LONDON", "TOKYO", "WASHINGTON", "BEIJING", "SYDNEY", "FRANKFURT"]
CLOSINGS = ["The company did not immediately respond to a request for comment.",
            "Officials could not be reached for comment late on Tuesday.",
            "Additional reporting by our staff; editing by the business desk.",
            "Shares in the company were little changed in afternoon trading.",
            "Analysts said they expected further details later in the week."]


OPENINGS = ["According to a statement released on Tuesday and confirmed by people familiar with the matter,",
            "In a filing seen by our partners at the wire service and first reported earlier in the day,",
            "In a surprise move that caught many analysts and investors off guard this week,"]
BLURB = ("This report is carried under an agreement with the wire service; our own correspondents contributed "
         "background, and readers can reach the newsroom through the contact page of our website.")


def syndicated_copy(doc: dict, rng: random.Random) -> str:
    """A wire story as a second site runs it under its own URL: the headline edited ("UPDATE 1-…",
    "… - report", upper case), the wire's sign-off dropped, and its first paragraph (a dateline added,
    or the lead's opening reworded) or its last paragraph changed; the text otherwise the same."""
    paras = paragraphs(doc["body"])
    if len(paras) > 1 and len(paras[-1].split()) <= 2:  # Reuters' "Reuter" sign-off
        paras = paras[:-1]
    title = doc["title"] or paras[0][:60]
    title = rng.choice([lambda t: "UPDATE 1-" + t.title(), lambda t: t.title() + " - report", str.upper])(title)
    city = rng.choice(CITIES)
    kind = rng.choice(["dateline", "lead", "last"] if len(paras) > 1 else ["dateline", "lead"])
    if kind == "dateline":
        paras[0] = f"{city}, March {rng.randint(1, 28)} (Reuters) - " + paras[0]
    elif kind == "lead":  # the lead reworded: its first half replaced, a copy-edit or two
        words = paras[0].split()
        cut = len(words) // 2
        paras[0] = f"{city} - " + rng.choice(OPENINGS) + " " + " ".join(words[cut:])
        for a, b in rng.sample(SWAPS, 2):
            paras[0] = paras[0].replace(f" {a} ", f" {b} ", 1)
    else:  # the last paragraph replaced by the site's own (a line, or a line and the site's blurb)
        paras[-1] = rng.choice(CLOSINGS) + (" " + BLURB if rng.random() < 0.5 else "")
    return title + "\n\n" + "\n\n".join(paras)


def text_of(doc: dict) -> str:
    return ((doc["title"] + "\n\n") if doc["title"] else "") + "\n\n".join(paragraphs(doc["body"]))


def _exact_twins(texts: list[str], threshold: float, with_jaccard: bool = False) -> list:
    """Pairs (i < j) whose exact shingle-set Jaccard reaches threshold (inverted index on shingles)."""
    sets = [fingerprint.shingles(t) for t in texts]
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
        j = n / (len(sets[a]) + len(sets[b]) - n)
        if j >= threshold:
            out.append((a, b, j) if with_jaccard else (a, b))
    return sorted(out)


def _label_resends(docs: list[dict], story: dict) -> tuple[list, set[frozenset]]:
    """Label Reuters' own re-sends among ``docs`` with an exact, independent measure: bodies whose
    5-shingle Jaccard is >= 0.8 are the same story (``story`` is updated: doc id -> story id).
    Corrections (one figure changed) and templated market reports (same words, other figures) have
    0.5-0.8: whether they are one story is a matter of opinion, so those story pairs are returned
    apart, to be left out of the second precision figure. Returns (re-send pairs, ambiguous pairs)."""
    close = _exact_twins([text_of(d).partition("\n\n")[2] for d in docs], 0.5, with_jaccard=True)
    twins = [(a, b) for a, b, j in close if j >= 0.8]
    for a, b in twins:
        story[docs[b]["id"]] = story.get(docs[a]["id"], docs[a]["id"])
    sid = lambda d: story.get(d["id"], d["id"])  # noqa: E731
    return twins, {frozenset((sid(docs[a]), sid(docs[b]))) for a, b, j in close if j < 0.8}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stories", type=int, default=4000)
    ap.add_argument("--copies", type=int, default=800)
    ap.add_argument("--threshold", type=float, default=dedup.NEAR_DUP_THRESHOLD)
    ap.add_argument("--short", type=int, default=3000, help="short wire stories in the second stream")
    ap.add_argument("--short-copies", type=int, default=1000)
    ap.add_argument("--syndicated", type=int, default=1200, help="wire stories in the third stream")
    ap.add_argument("--syndicated-share", type=float, default=0.15, help="share of them run by a second site")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"missing {DATA}")
    rng = random.Random(args.seed)
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        all_docs = list(map(json.loads, fh))
    docs = [d for d in all_docs if len(d["body"].split()) >= 60]
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
    twins, ambiguous_main = _label_resends(picked, story)
    stream += [(story.get(d["id"], d["id"]), text_of(d)) for d in picked]
    stream += [(story.get(d["id"], d["id"]), edited_copy(d, rng)) for d in rng.sample(picked, args.copies)]
    rng.shuffle(stream)

    seconds, cluster_of = merge(stream, args.threshold)
    precision, recall, stats = score(stream, cluster_of)
    clear_main, _, _ = score(stream, cluster_of, ambiguous_main)
    print(f"stream: {len(stream)} texts = {len(in_dups)} in {len(dup_groups)} Reuters exact-duplicate groups, "
          f"{len(picked)} other stories ({len(twins)} pairs of them Reuters re-sends, exact Jaccard >= 0.8), "
          f"{args.copies} edited copies")
    print(f"same-story pairs: {stats[0]}; merged pairs: {stats[1]}; correct: {stats[2]}")
    print(f"threshold {args.threshold}: precision {precision:.3f}  recall {recall:.3f}  "
          f"({len(stream) / seconds:,.0f} texts/s on one core); precision without the "
          f"{len(ambiguous_main)} ambiguous pairs (exact Jaccard 0.5-0.8) {clear_main:.3f}")

    # short wire stories: 30-90 words, copies that lost a paragraph
    shorts = [d for d in all_docs if 30 <= len(d["body"].split()) <= 90 and len(paragraphs(d["body"])) >= 2
              and _prose(d["body"])]
    by_short = defaultdict(list)
    for d in shorts:
        by_short[" ".join(d["body"].split())].append(d)
    firsts = [g[0] for g in by_short.values()]
    picked_s = rng.sample(firsts, min(args.short, len(firsts)))
    story_s = {d["id"]: d["id"] for d in picked_s}
    _, ambiguous = _label_resends(picked_s, story_s)
    stream_s = [(story_s[d["id"]], text_of(d)) for d in picked_s]
    can_lose = [d for d in picked_s if _droppable(paragraphs(d["body"]))]
    stream_s += [(story_s[d["id"]], short_copy(d, rng)) for d in rng.sample(can_lose, args.short_copies)]
    rng.shuffle(stream_s)
    seconds, cluster_of = merge(stream_s, args.threshold)
    precision, recall, stats = score(stream_s, cluster_of)
    clear_precision, _, clear = score(stream_s, cluster_of, ambiguous)
    print(f"short stream: {len(stream_s)} texts = {len(picked_s)} Reuters stories of 30-90 words, "
          f"{args.short_copies} copies that lost a paragraph (and at most one other edit); "
          f"{len(ambiguous)} pairs of Reuters stories with exact Jaccard 0.5-0.8 (corrections, templated reports)")
    print(f"same-story pairs: {stats[0]}; merged pairs: {stats[1]}; correct: {stats[2]}; "
          f"merged pairs of those ambiguous stories: {stats[1] - clear[1]}")
    print(f"short texts: precision {precision:.3f}  recall {recall:.3f}; "
          f"precision without the ambiguous pairs {clear_precision:.3f}")

    syndicated_stream(all_docs, rng, args.syndicated, args.syndicated_share, args.threshold)


SITES = ["The Daily Courier", "Business Times Online", "World News Network", "Asia Markets Today"]


def _as_extracted(text: str, site: str) -> str | None:
    """``text`` ("title\n\nbody") rendered as a news page and extracted as the pipeline does."""
    from simweb import page_html

    from ingest.text.extract import extract

    title, _, body = text.partition("\n\n")
    page = extract(page_html(title, body, site), f"http://{site.replace(' ', '').lower()}.example/a.html")
    return None if page is None else page.title + "\n\n" + page.text


def syndicated_stream(all_docs: list[dict], rng: random.Random, stories: int, share: float,
                      threshold: float) -> None:
    """~``stories`` wire stories of which ``share`` also run, edited, on a second site."""
    wire = [d for d in all_docs if 60 <= len(d["body"].split()) <= 300 and _prose(d["body"])]
    by_body = {" ".join(d["body"].split()): d for d in wire}
    picked = rng.sample(list(by_body.values()), min(stories, len(by_body)))
    story = {d["id"]: d["id"] for d in picked}
    _, ambiguous = _label_resends(picked, story)
    copies = rng.sample(picked, int(len(picked) * share))
    # both through the real path: a news page (simweb's template) and trafilatura, as the pipeline
    # stores them (a headline that no longer equals the <title> can stay in the text, with the byline)
    stream = [(story[d["id"]], _as_extracted(text_of(d), "Reuters")) for d in picked]
    stream += [(story[d["id"]], _as_extracted(syndicated_copy(d, rng), rng.choice(SITES))) for d in copies]
    stream = [(sid, text) for sid, text in stream if text is not None]
    rng.shuffle(stream)
    _, cluster_of = merge(stream, threshold)
    precision, recall, stats = score(stream, cluster_of)
    clear_precision, _, _ = score(stream, cluster_of, ambiguous)
    copy_of = {story[d["id"]] for d in copies}
    found = sum(1 for sid in copy_of
                if len({cluster_of[i] for i, (s, _) in enumerate(stream) if s == sid}) == 1)
    print(f"syndicated stream: {len(stream)} texts = {len(picked)} wire stories (60-300 words), {len(copies)} of "
          f"them also on a second site (headline edited, sign-off dropped, dateline / lead / last paragraph "
          f"changed)")
    print(f"syndicated copies merged with their original: {found}/{len(copies)} = {found / len(copies):.3f}; "
          f"pairwise precision {precision:.3f} recall {recall:.3f}; precision without the {len(ambiguous)} "
          f"ambiguous pairs {clear_precision:.3f}")


def merge(stream: list[tuple[str, str]], threshold: float) -> tuple[float, list[int]]:
    """Online merging exactly as the pipeline does it (ingest.judge.dedup.find_match; the store's tables
    replaced by dicts). Returns (seconds, cluster of each text)."""
    t0 = time.perf_counter()
    by_hash: dict[str, int] = {}
    bands: dict[int, list[int]] = defaultdict(list)
    sigs: dict[int, bytes] = {}
    bodies: dict[int, str] = {}
    cluster_of: list[int] = []
    for i, (_, text) in enumerate(stream):
        body = text.partition("\n\n")[2] or text
        h = fingerprint.text_hash(body)
        if h in by_hash:
            cluster_of.append(by_hash[h])
            continue
        sig = fingerprint.signature(body)
        match = None
        if sig is not None:
            keys = fingerprint.band_keys(sig)
            cands = {c for k in keys for c in bands.get(k, ())}
            match = dedup.find_match(body, sig, ((c, sigs[c]) for c in cands), bodies.get, threshold)
        if match:
            cluster_of.append(match[0])
            continue
        by_hash[h] = i
        bodies[i] = body
        cluster_of.append(i)
        if sig is not None:
            sigs[i] = sig
            for k in keys:
                bands[k].append(i)
    return time.perf_counter() - t0, cluster_of


def score(stream: list[tuple[str, str]], cluster_of: list[int],
          ignore: set[frozenset] = frozenset()) -> tuple[float, float, tuple[int, int, int]]:
    """Pairwise precision and recall of the merges against the true stories; merged pairs of two
    stories in ``ignore`` are left out."""
    truth = defaultdict(list)
    pred = defaultdict(list)
    for i, (sid, _) in enumerate(stream):
        truth[sid].append(i)
        pred[cluster_of[i]].append(i)
    true_pairs = {p for g in truth.values() for p in itertools.combinations(sorted(g), 2)}
    pred_pairs = {p for g in pred.values() for p in itertools.combinations(sorted(g), 2)
                  if frozenset((stream[p[0]][0], stream[p[1]][0])) not in ignore}
    tp = len(true_pairs & pred_pairs)
    precision = tp / len(pred_pairs) if pred_pairs else 1.0
    recall = tp / len(true_pairs) if true_pairs else 1.0
    return precision, recall, (len(true_pairs), len(pred_pairs), tp)


if __name__ == "__main__":
    main()
