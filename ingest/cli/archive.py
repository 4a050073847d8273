"""The commands on the WARC archive: `show` (an article, or its archived page), `reextract`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ingest.cli.common import parse_since
from ingest.config import Config
from ingest.store import open_store
from ingest.text.seeds import load_seeds


def add_show(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("show", parents=[common], help="print an article, or with --original its archived page",
                       description="Print an article of the corpus (a12, or a page id from `ingest review` such "
                                   "as p34): where it came from, when, and its text. With --original, the page "
                                   "as it was fetched, from the WARC archive (store/archive/), bytes as stored.")
    p.add_argument("ref", metavar="ID")
    p.add_argument("--original", action="store_true", help="write the archived page to stdout")
    p.set_defaults(func=cmd_show)


def cmd_show(config: Config, args: argparse.Namespace) -> int:
    from ingest.run.feedback import FeedbackError, resolve
    from ingest.sources.urls import display
    from ingest.store.archive import read_record
    from ingest.store.archive_index import ARCHIVE

    with open_store(config, readonly=True) as store:
        try:
            row = resolve(store, args.ref)
        except FeedbackError as exc:
            print(f"ingest show: {exc}", file=sys.stderr)
            return 2
        ref = store.page_record(row["id"])
        if args.original:
            if ref is None:
                print(f"ingest show: {args.ref}: no archived copy (fetched before the archive was on, with "
                      f"[archive] enabled = false, or marked corrupted by `ingest check --repair`)", file=sys.stderr)
                return 1
            _, body = read_record(store.root / ARCHIVE, ref)
            sys.stdout.buffer.write(body)
            sys.stdout.flush()
            return 0
        doc = store.page_doc(row)
        art = store.article(row["article_id"]) if row["article_id"] is not None else None
    print(f"{row['outcome']}: {display(row['final_url'] or row['url'])}")
    if art is not None:
        print(f"article a{art['id']}: {art['path']}" + (f" (withdrawn: {art['withdrawn_by']})" if art["withdrawn"]
                                                          else ""))
    if ref is not None:
        print(f"archived copy: {ref.date} in {ref.file} (ingest show {args.ref} --original)")
    if doc is not None:
        print(f"\n{doc.title}\n\n{doc.text}")
    return 0


def add_archive(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("archive", parents=[common], help="the WARC archive: write its CDXJ index",
                       description="The WARC archive of every fetched page (store/archive/, docs/archive.md).")
    actions = p.add_subparsers(dest="archive_command", metavar="ACTION", required=True)
    q = actions.add_parser("index", parents=[common], help="(re)write store/archive/index.cdxj for pywb",
                           description="Read every .warc.gz file of the archive and write a CDXJ index of its "
                                       "response records (SURT, timestamp, url, mime, status, digest, offset, "
                                       "length, filename), sorted, as pywb reads it: a pywb collection whose "
                                       "archive folder is store/archive/ replays the pages with it.")
    q.add_argument("--output", metavar="PATH", help="write here instead of store/archive/index.cdxj")
    q.set_defaults(func=cmd_archive)


def cmd_archive(config: Config, args: argparse.Namespace) -> int:
    from pathlib import Path

    from ingest.store.archive import write_cdxj

    folder = config.paths.store / "archive"
    if not folder.is_dir():
        print(f"ingest archive index: {folder}: no archive yet (a poll with [archive] enabled writes it)",
              file=sys.stderr)
        return 1
    out = Path(args.output) if args.output else folder / "index.cdxj"
    n = write_cdxj(folder, out)
    print(f"wrote {out}: {n} record(s)")
    return 0


def add_reextract(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "reextract", parents=[common], help="extract and decide the archived pages again, without the network",
        description="Read every archived page (store/archive/, see docs/archive.md) again and rerun extraction, "
                    "relevance and story identity on it, with no network request: where the text changed, the "
                    "corpus file is rewritten in place; pages that now pass join the corpus, kept articles that "
                    "now fall below leave it; your verdicts stand. The upgrade path after a trafilatura "
                    "release. Prints the texts changed, joined and left.")
    p.add_argument("--since", metavar="WHEN", help="only pages fetched since then (24h, 7d, or an ISO date)")
    p.add_argument("--id", dest="ids", action="append", default=[], metavar="ID",
                   help="only this page (p12) or article (a3); repeat for more")
    p.add_argument("--dry-run", action="store_true", help="change nothing: say what would change")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_reextract)


def cmd_reextract(config: Config, args: argparse.Namespace) -> int:
    from ingest.run.executor import make_executor
    from ingest.run.feedback import FeedbackError, resolve
    from ingest.run.reextract import reextract

    now = time.time()
    since = parse_since(args.since, now) if args.since else None
    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    with open_store(config, readonly=args.dry_run) as store:
        try:
            page_ids = [resolve(store, ref)["id"] for ref in args.ids]
        except FeedbackError as exc:
            print(f"ingest reextract: {exc}", file=sys.stderr)
            return 2
        executor = make_executor(config.worker.processes or None, language=config.relevance.language)
        try:
            report = reextract(store, seeds, config, executor, now, since=since, page_ids=page_ids,
                               dry_run=args.dry_run)
        finally:
            executor.shutdown(cancel_futures=True)
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    would = "would change" if args.dry_run else "changed"
    print(f"read {report.pages} archived page(s) again ({report.unreadable} unreadable, {report.empty} without "
          f"text this time): {report.changed} text(s) {would}; {report.joined} "
          f"{'would join' if args.dry_run else 'joined'} the corpus, {report.left} "
          f"{'would leave' if args.dry_run else 'left'} it")
    return 0
