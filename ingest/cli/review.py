"""The feedback loop: `review`, `mark`, `rescore`, `seeds`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ingest.cli.common import apply_now, parse_since, print_applied, short, verdicts_apply_later
from ingest.config import Config
from ingest.sources.urls import display
from ingest.store import StoreBusy, open_store
from ingest.text.seeds import load_seeds


def cmd_review(config: Config, args: argparse.Namespace) -> int:
    from ingest.run.feedback import model_report, review

    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    with open_store(config, readonly=True) as store:
        items = review(store, seeds, config, args.limit)
        warnings = model_report(store).warnings
    if args.json:
        for it in items:
            print(json.dumps(it.as_dict(), ensure_ascii=False))
        return 0
    if not items:
        print("nothing to review yet: no unjudged kept or rejected pages in the model's window")
        return 0
    for w in warnings:
        print(f"warning: {w}\n")
    if any(w.startswith("the model cannot separate") for w in warnings):
        print("Verdicts on these pages help it most: each says on which side of the line such pages belong.\n")
    print(f"{'id':<8} {'score':>6} {'thresh':>6}  {'now':<8} {'site':<22} title / matched terms")
    for it in items:
        print(f"{it.id:<8} {it.score:6.3f} {it.threshold:6.3f}  {'kept' if it.kept else 'rejected':<8} "
              f"{short(it.site, 22):<22} {short(it.title or it.url, 70)}")
        if it.snippet:
            print(f"{'':<42}{short(it.snippet, 150)}")
        print(f"{'':<42}matched on: {', '.join(it.terms[:6]) or '-'}")
    print("\njudge with: ingest mark ID... --relevant | --irrelevant", file=sys.stderr)
    return 0


def cmd_mark(config: Config, args: argparse.Namespace) -> int:
    from ingest.run.feedback import FeedbackError, mark

    with open_store(config, writer=False) as store:
        try:
            rows = mark(store, args.ids, args.relevant, time.time())
        except FeedbackError as exc:
            print(f"ingest mark: {exc}", file=sys.stderr)
            return 2
    verdict = "relevant" if args.relevant else "not relevant"
    for row in rows:
        print(f"p{row['id']}: {verdict}  {display(row['final_url'] or row['url'])}")
    done = apply_now(config)
    if done is not None:
        print_applied(done)
        if not (done.added or done.restored or done.withdrawn or done.duplicates or done.missing):
            print("no change to the corpus: the model had decided " + ("them" if len(rows) > 1 else "it") +
                  " this way already")
    else:
        print(verdicts_apply_later(config), file=sys.stderr)
    print_preview(config)
    return 0


def print_preview(config: Config) -> None:
    """Say whether the verdicts would change the model's other decisions, and how to apply that."""
    from ingest.run.feedback import preview

    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    with open_store(config, readonly=True) as store:
        pv = preview(store, seeds, config)
    print(pv.sentence() if pv else "the model decides the other pages as before")
    for title, score, terms in pv.joining[:10]:  # what would join, and why: the user sees the reason first
        print(f"  would join: {score:.3f}  {short(title, 70)}  (matched on: {', '.join(terms[:5]) or '-'})")
    if len(pv.joining) > 10:
        print(f"  … and {len(pv.joining) - 10} more (`ingest rescore` lists them all)")


def cmd_rescore(config: Config, args: argparse.Namespace) -> int:
    from ingest.run.feedback import Applied
    from ingest.run.rescore import report_dict, rescore

    now = time.time()
    since = parse_since(args.since, now) if args.since else now - config.relevance.keep_rejected
    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    try:  # a preview only reads: it works beside a running service
        store = open_store(config) if args.apply else open_store(config, readonly=True)
    except StoreBusy as exc:
        report = ask_the_service(config, exc)
        if report is None:
            return 1
    else:
        with store:
            report = report_dict(rescore(store, seeds, config, since, now, apply=args.apply), args.apply)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    thr = f" (threshold {report['threshold']:.3f})" if report["threshold"] is not None else ""
    print(f"re-decided {report['pages']} pages{thr}; {report['without_text']} rejected pages no longer have "
          f"their text")
    if report["applied"]:
        print_applied(Applied(report["added"], report["restored"], report["withdrawn"], report["duplicates"]), "model")
        if not (report["added"] or report["restored"] or report["withdrawn"]):
            print("nothing changed: every page is decided as the corpus has it")
        return 0
    if not report["join"] and not report["leave"]:
        print("nothing would change: every page is decided as the corpus has it")
        return 0
    print(f"a preview, nothing changed: {len(report['join'])} page(s) would join the corpus and "
          f"{len(report['leave'])} would leave it (`ingest rescore --apply` does it; `ingest mark ID --relevant` "
          f"or `--irrelevant` settles one for good)")
    for word in ("join", "leave"):
        for it in report[word]:
            terms = ", ".join(it["terms"][:4])
            print(f"  {word:<5} {it['id']:<8} {it['score']:.3f}  {short(it['title'] or it['url'], 70)}  ({terms})")
    return 0


RESCORE_WAIT = 600.0  # seconds `rescore --apply` waits for the service to answer


def ask_the_service(config: Config, busy: StoreBusy) -> dict | None:
    """`rescore --apply` while another process holds the store: the running service does it (asked
    through the store, answered there); any other holder is named, with when to try again."""
    import secrets

    from ingest.run.rescore import RESCORE_REQUEST, RESCORE_RESULT
    from ingest.store import holder

    running = holder.current(config.paths.store)
    if running is None or running.command != "run":
        print(f"ingest rescore: {busy}; run it again when that command has finished (a running `ingest run` "
              f"would do it for you)", file=sys.stderr)
        return None
    token = secrets.token_hex(8)
    with open_store(config, writer=False) as store:
        store.put_meta(RESCORE_REQUEST, token)
        print(f"the running service (pid {running.pid}) holds the store: asked it to rescore and apply; "
              f"waiting for its answer", file=sys.stderr)
        deadline = time.monotonic() + RESCORE_WAIT
        while time.monotonic() < deadline:
            raw = store.get_meta(RESCORE_RESULT)
            answer = json.loads(raw) if raw else {}
            if answer.get("request") == token:
                return dict(answer["report"])
            time.sleep(0.5)
    print(f"ingest rescore: the service (pid {running.pid}) has not answered in {RESCORE_WAIT:.0f} s; it will "
          f"still apply the request when it can (its log says event=rescored)", file=sys.stderr)
    return None


def cmd_seeds(config: Config, args: argparse.Namespace) -> int:
    from ingest.run.feedback import FeedbackError, add_seed, mark

    if args.seeds_command == "list":
        for s in load_seeds(config.paths.seeds):
            first = s.text.strip().split("\n", 1)[0]
            print(f"{s.path.name}  {len(s.text.split()):>6} words  {short(first, 70)}")
        return 0
    now = time.time()
    try:
        if Path(args.ref).is_file():
            path, row = add_seed(None, config, args.ref, now)
        else:
            with open_store(config, writer=False) as store:
                path, row = add_seed(store, config, args.ref, now)
                if row is not None:
                    mark(store, [f"p{row['id']}"], True, now)
    except FeedbackError as exc:
        print(f"ingest seeds add: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    if row is not None:
        done = apply_now(config)
        if done is not None:
            print_applied(done)
        else:
            print(f"judged relevant: {verdicts_apply_later(config)}", file=sys.stderr)
    return 0


def add_review(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("review", parents=[common], help="the articles whose verdict would teach the model most",
                       description="Pages of the model's window (recent kept and rejected pages) nearest the "
                                   "threshold, alternately just above and just below it, never one already "
                                   "judged: title, site, score, threshold, kept or not, the terms that "
                                   "matched. Judge them with `ingest mark`; a few verdicts here teach the "
                                   "model more than many on clear cases.")
    p.add_argument("--json", action="store_true", help='one JSON object per line: {"id", "url", "title", '
                   '"site", "score", "threshold", "kept", "terms", "snippet"}')
    p.add_argument("--limit", type=int, default=10, metavar="N", help="how many (default 10)")
    p.set_defaults(func=cmd_review)


def add_mark(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("mark", parents=[common], help="record your verdict on pages: relevant or not",
                       description="Record the verdict and make the corpus follow it: a kept article marked "
                                   "irrelevant leaves the corpus folder (its file moves to the store's "
                                   "withdrawn/ folder, its row stays; --relevant later brings it back under "
                                   "the same name); a rejected page marked relevant joins the corpus from its "
                                   "kept text. Verdicts are labels the model learns from (worth several "
                                   "automatic ones) and never overrides. While the service runs, it moves "
                                   "the files within seconds; while another command holds the store, the "
                                   "next `ingest mark`, `ingest run` or `ingest poll` does.")
    p.add_argument("ids", nargs="+", metavar="ID", help="id from `ingest review` (p123), article id (a12) or URL")
    verdict = p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--relevant", dest="relevant", action="store_true", help="on topic: keep it")
    verdict.add_argument("--irrelevant", dest="relevant", action="store_false", help="off topic: not in the corpus")
    p.set_defaults(func=cmd_mark)


def add_rescore(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("rescore", parents=[common], help="re-decide recent pages with the current seeds and verdicts",
                       description="Score again the kept and rejected pages fetched in the period (their text "
                                   "is kept for [relevance] keep_rejected, so nothing is refetched) with the "
                                   "model learned now from the seeds and your verdicts. By itself a preview: "
                                   "it changes nothing and lists the pages that would join the corpus and the "
                                   "articles that would leave it, with their scores and terms. --apply does "
                                   "both. Your verdicts always stand.")
    p.add_argument("--since", metavar="WHEN", help="a period such as 7d or an ISO date (default: keep_rejected)")
    p.add_argument("--apply", action="store_true", help="make the changes: pages that pass join the corpus, "
                   "articles that fall below leave it")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_rescore)


def add_seeds(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("seeds", parents=[common], help="list the seeds, or add one",
                       description="The seeds define the topic. `seeds add` writes an article (its id or URL) "
                                   "or a text file into the seeds folder as NNN_<hex>.txt, in the seeds' "
                                   "format; an article also counts as judged relevant. The model uses the new "
                                   "seed at its next decision (the service notices the change by itself).")
    seeds_sub = p.add_subparsers(dest="seeds_command", metavar="ACTION", required=True)
    q = seeds_sub.add_parser("add", parents=[common], help="make an article or a text file a seed")
    q.add_argument("ref", metavar="ID|FILE", help="id from `ingest review` (p123), article id (a12), URL, or a file")
    q.set_defaults(func=cmd_seeds)
    q = seeds_sub.add_parser("list", parents=[common], help="list the seed files")
    q.set_defaults(func=cmd_seeds)

