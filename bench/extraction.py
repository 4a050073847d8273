"""Extraction benchmark: what the pipeline stores vs trafilatura alone.

For every page of ../shared/data/extraction/trafilatura-eval/, runs
(a) trafilatura.extract() with the pipeline's options (no comments), and
(b) ingest.run.executor.analyse(), i.e. the exact text the corpus file gets
(title line, blank line, paragraphs). Each `with` snippet found counts as a
true positive (else a false negative), each `without` snippet found as a
false positive (else a true negative), after collapsing whitespace, as
trafilatura's own evaluation does. Prints precision, recall, F1 and pages/s.

    python bench/extraction.py [--limit N] [--workers 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "extraction" / "trafilatura-eval"


def _norm(s: str) -> str:
    return " ".join(s.split())


def _score(text: str | None, row: dict) -> tuple[int, int, int, int]:
    t = _norm(text or "")
    tp = sum(_norm(w) in t for w in row["with"])
    fp = sum(_norm(w) in t for w in row["without"])
    return tp, len(row["with"]) - tp, fp, len(row["without"]) - fp


def _one(row: dict) -> tuple[tuple, float, float]:
    import trafilatura

    from ingest.text.analysis import analyse

    with gzip.open(DATA / "pages" / row["file"]) as fh:
        html = fh.read()
    url = row["url"] if row["url"].startswith("http") else "http://example.org/"
    t0 = time.process_time()
    plain = trafilatura.extract(html, url=url, include_comments=False)
    t1 = time.process_time()
    ours = analyse(html, url)
    t2 = time.process_time()
    body = ours.text if ours else None
    return (_score(plain, row), _score(body, row), _score(ours.text if ours else None, row)), t1 - t0, t2 - t1


def _prf(c) -> tuple[float, float, float]:
    tp, fn, fp, _ = c
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"missing {DATA}")
    rows = [json.loads(line) for line in (DATA / "eval.jsonl").read_text().splitlines()]
    if args.limit:
        rows = rows[: args.limit]
    names = ["trafilatura.extract alone", "ingest: stored text", "ingest: file incl. title"]
    totals = [[0, 0, 0, 0] for _ in names]
    cpu = [0.0, 0.0]
    with ProcessPoolExecutor(args.workers) as pool:
        for counts, c1, c2 in pool.map(_one, rows, chunksize=8):
            for i, c in enumerate(counts):
                totals[i] = [a + b for a, b in zip(totals[i], c, strict=True)]
            cpu[0] += c1
            cpu[1] += c2
    print(f"{len(rows)} pages")
    print(f"{'':<26} {'precision':>9} {'recall':>7} {'F1':>6} {'ms CPU/page':>12}")
    for i, name in enumerate(names):
        p, r, f = _prf(totals[i])
        ms = f"{1000 * cpu[min(i, 1)] / len(rows):12.1f}"
        print(f"{name:<26} {p:9.3f} {r:7.3f} {f:6.3f} {ms}")


if __name__ == "__main__":
    main()
