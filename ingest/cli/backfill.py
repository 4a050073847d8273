"""``ingest backfill``: fetch a followed site's history, best-first (ingest.run.backfill)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import UTC, datetime

from ingest.config import Config
from ingest.run.backfill_report import BackfillReport
from ingest.store import open_store
from ingest.text.seeds import load_seeds


def add_backfill(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "backfill", parents=[common], help="fetch the followed sites' history, most similar to the seeds first",
        description="Find a site's history (its sitemaps, its feeds' archived pages, with [backfill] archives a "
                    "web archive's index), rank every article URL by the words of its URL and any title against "
                    "the seeds' model, and fetch the best first, sites side by side within the politeness "
                    "limits. Each page is decided as a polled page is. A site stops when its recent fetches keep "
                    "no more than a random draw would (stopped: yield), at --max-pages (budget) or when nothing "
                    "is left (exhausted). What was found is remembered: a second run continues and never "
                    "fetches a page the store knows. Exit 0 when it ran, even if it found nothing.")
    p.add_argument("urls", nargs="*", metavar="URL",
                   help="any page of a site, or a configured feed (default: the site of every enabled feed)")
    p.add_argument("--max-pages", type=int, metavar="N",
                   help="article pages to fetch at most, over all sites (discovery requests not counted)")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="leave out what is dated before this day")
    p.add_argument("--dry-run", action="store_true",
                   help="discover and rank only: per site, the candidates by source and the 20 best-ranked with "
                        "their pre-scores and the words that ranked them (no article page is fetched)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_backfill)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


def cmd_backfill(config: Config, args: argparse.Namespace) -> int:
    try:
        since = _since(args.since)
    except ValueError:
        print(f"ingest backfill: --since {args.since}: expected a day as YYYY-MM-DD, e.g. 2024-01-31",
              file=sys.stderr)
        return 2
    if args.max_pages is not None and args.max_pages < 0:
        print("ingest backfill: --max-pages expected a number of pages, 0 or more", file=sys.stderr)
        return 2
    return run(config, args.urls, args.max_pages, since, args.dry_run, args.json)


def run(config: Config, urls: list[str], max_pages: int | None, since: datetime | None, dry_run: bool,
        as_json: bool) -> int:
    """One backfill of the sites of ``urls`` (every followed site with none), reported; the exit code."""
    from ingest.run.backfill import backfill_once, targets
    from ingest.run.executor import kill_workers, make_executor

    try:
        sites = targets(config, urls)
    except ValueError as exc:
        print(f"ingest backfill: {exc}", file=sys.stderr)
        return 2
    if not sites:
        print(f"ingest backfill: no site to backfill: {config.path} has no enabled feed with backfill on; give "
              f"a site's URL (ingest backfill https://example.org/) or add a feed (ingest feeds add URL)",
              file=sys.stderr)
        return 2
    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    with open_store(config) as store:
        store.announce("backfill")
        executor = make_executor(config.worker.processes or None, language=config.relevance.language)
        clean = False
        try:
            from ingest.run.progress import BackfillBar, BackfillLines

            # a bar on a terminal (rich, loaded only then), else a line every INGEST_PROGRESS_SECONDS
            with BackfillBar() if sys.stderr.isatty() and not dry_run else BackfillLines() as progress:
                report = asyncio.run(backfill_once(config, store, seeds, executor, sites, max_pages, since,
                                                   dry_run, progress))
            clean = report.interrupted is None
        finally:
            if clean:
                executor.shutdown(cancel_futures=True)
            else:
                kill_workers(executor)
                executor.shutdown(wait=False, cancel_futures=True)
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        print_report(report)
    if report.interrupted:
        print(f"ingest backfill: interrupted by {report.interrupted}; what was fetched is stored, the rest is "
              f"fetched next time", file=sys.stderr)
        return 128 + getattr(signal, report.interrupted)
    return 0


def print_report(report: BackfillReport) -> None:
    for s in report.per_site:
        sources = ", ".join(f"{n} {k}" for k, n in s.by_source.items() if n)
        print(f"{s.site}: {s.candidates} candidates ({sources or 'none found'}); {s.discovery_requests} "
              f"discovery requests")
        if report.dry_run:
            for r in s.best:
                print(f"  {r.prescore:6.3f}  {r.url}  [{r.source}] {' '.join(r.words)}")
            continue
        print(f"  fetched {s.fetched}: kept {s.kept}, rejected {s.rejected}, duplicates {s.duplicates}, "
              f"errors {s.errors}; stopped: {s.stopped or '-'}")
    if not report.dry_run:
        print(f"total: {len(report.per_site)} sites, fetched {report.total('fetched')}, kept {report.total('kept')}"
              f"; stopped: {report.stopped or 'per site, as above'}")
