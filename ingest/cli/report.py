"""The commands that report: `digest` and `status`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from ingest.cli.common import parse_since, write_output
from ingest.config import Config
from ingest.judge.quality import ModelReport
from ingest.judge.relevance import MIN_STREAM
from ingest.run.feedback import model_report
from ingest.run.schedule import explain_state
from ingest.sources.urls import display, redact_text
from ingest.store import SqlStore, StoreError, open_store
from ingest.text.seeds import load_seeds
from ingest.timefmt import iso as _iso

if TYPE_CHECKING:
    from ingest.out.standing import Standing


def cmd_digest(config: Config, args: argparse.Namespace) -> int:
    from ingest.out import digest

    now = time.time()
    seeds = [s.text for s in load_seeds(config.paths.seeds)]

    def review(store: SqlStore) -> digest.Teaching:
        return digest.teach_now(store, seeds, config, digest.REVIEW_ITEMS)

    if args.since is None:  # the next digest: since the previous one; written to digests/ and recorded
        try:
            store = open_store(config)
        except StoreError as exc:
            if "another ingest process" not in str(exc):
                raise
            # the service holds the store and writes the digests itself: show what the next
            # one would hold so far, without recording it
            with open_store(config, readonly=True) as reader:
                since = reader.last_digest_until() or now - 86400
                d = digest.build(reader, since, now, now, review(reader), not args.no_backfill)
            print(f"ingest: {_who_records(config)}; this preview since the last digest is not recorded",
                  file=sys.stderr)
        else:
            with store:
                d, paths = digest.scheduled(store, now, review=review(store), backfill=not args.no_backfill)
                print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
                _deliver(store, config, now)
        text = digest.render(d, args.format)
    else:
        since = parse_since(args.since, now)
        with open_store(config, readonly=True) as store:
            d = digest.build(store, since, now, now, review(store), not args.no_backfill)
        text = digest.render(d, args.format)
    if args.output:
        write_output(args.output, text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _who_records(config: Config) -> str:
    """Which process holds the store, and whether it records the digests (only `ingest run` does)."""
    from ingest.store import holder

    running = holder.current(config.paths.store)
    pid = f" (pid {running.pid})" if running is not None and running.pid else ""
    command = running.command if running is not None else ""
    if command == "run":
        return f"the service{pid} holds the store and records the digests on its schedule ([digest] schedule)"
    if command == "serve":
        return (f"`ingest serve`{pid} holds the store and records no digest (`ingest run` does, on its "
                f"schedule); stop it and run `ingest digest` again to record one")
    what = f"`ingest {command}`" if command else "another ingest process"
    return f"{what}{pid} holds the store; run `ingest digest` again when it has finished to record one"


def _deliver(store: SqlStore, config: Config, now: float) -> None:
    """Send the digest just recorded (and earlier ones that failed) to [notify] urls and [digest] email;
    a failure is reported and retried at the next digest (the files are written regardless)."""
    from ingest.out import notify

    targets = notify.targets(config)
    if not targets:
        return
    results = notify.send(notify.plan(store, targets, store.last_digest_id(), now))
    notify.record(store, results, now)
    for d, error in results:
        if error:
            print(f"ingest: digest {d.digest_id} not sent to {d.target.label}: {error} (retried at the next "
                  f"digest)", file=sys.stderr)
        else:
            print(f"digest {d.digest_id} sent to {d.target.label}", file=sys.stderr)


def _standing(store: SqlStore, config: Config) -> Standing | None:
    from ingest.out.standing import standing
    from ingest.text.seeds import SeedError

    try:
        seeds = [s.text for s in load_seeds(config.paths.seeds)]
    except SeedError:
        return None
    now = standing(store, seeds, config)
    return now if now.window.ids else None


def model_now(store: SqlStore, config: Config) -> ModelReport:
    """The model as every other surface shows it: learned now from the seeds, the window and the
    verdicts (ingest.out.standing); the last poll's record when the seeds cannot be read."""
    report = model_report(store)
    now = _standing(store, config)
    return now.report(report) if now is not None else report


def model_scores(store: SqlStore, config: Config) -> dict[int, tuple[float, float]]:
    """Article id -> (score, threshold) under the model learned now, for the articles in its window."""
    now = _standing(store, config)
    return now.by_article() if now is not None else {}


def print_model(m: ModelReport, learning: tuple[int, int, int, int]) -> None:
    """The model's state: what it learned from, the verdicts, precision and recall estimated from them."""
    window, relevant, irrelevant, pending = learning
    if m.model == "none":
        print(f"relevance: no model learned yet (the first poll learns one); window of {window} recent pages")
    else:
        kind = "logistic regression" if m.model == "logistic" else f"cosine (learns once {MIN_STREAM} pages are in)"
        when = f" on {_iso(m.learned)}" if m.learned else ""
        print(f"relevance: {kind}, learned{when} from {m.pages} pages (now a window of {window} recent pages); "
              f"threshold {m.threshold:.3f}, estimated on-topic share {m.share:.1%}")
    print(f"verdicts: {relevant} relevant, {irrelevant} not{f', {pending} not applied yet' if pending else ''} "
          f"(ingest review asks)")
    if relevant or irrelevant:
        print(f"  measured on the pages you judged (mostly borderline, so pessimistic): precision "
              f"{m.precision_text()}; recall {m.recall_text()}")
    for w in m.warnings:
        print(f"warning: {w}")


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from ingest.run.backfill import origin
    from ingest.run.backfill_report import site_states

    if args.check:
        with open_store(config, readonly=True) as store:
            h = store.health(time.time(), config.schedule.poll_interval)
        age = f"{h.last_success_age:.0f}s ago" if h.last_success_age is not None else "never"
        feeds = ", ".join(f"{n} {state}" for state, n in sorted(h.feeds.items())) or "no feeds"
        print(f"{'ok' if h.ok else 'unhealthy'}: last successful poll {age}; {feeds}; store "
              f"{'writable' if h.store_writable else 'not writable'}"
              + "".join(f"; {p}" for p in h.problems))
        return 0 if h.ok else 1
    workers: list = []
    with open_store(config, readonly=True) as store:
        rows = store.feeds(active_only=False)
        counts = store.feed_counts()
        learning = store.learning_counts()
        report = model_report(store) if args.json else model_now(store, config)
        backfill = {b.site: b for b in site_states(store)}
        records, archive_bytes = store.archive_size()
        if config.store.url:
            from ingest.store.postgres import PgStore

            assert isinstance(store, PgStore)
            workers = [(w["name"], w["hosts"], w["seen"]) for w in store.workers(time.time(), config.store.lease)]
    configured = {f.url for f in config.feeds}
    now = time.time()
    out = []
    for f in rows:
        seen, kept = counts.get(f.id, (0, 0))
        out.append({
            "url": display(f.url), "config_url": display(f.config_url), "name": f.name or f.title,
            "in_config": f.config_url in configured, "state": f.state,
            "reason": redact_text(f.state_reason) or None,
            "summary": redact_text(explain_state(f, now)),
            "moved_to": display(f.url) if f.url != f.config_url else None, "retry_after": _iso(f.retry_after),
            "last_poll": _iso(f.last_poll), "last_success": _iso(f.last_success),
            "last_error": redact_text(f.last_error) if f.last_error else None,
            "last_error_at": _iso(f.last_error_at), "consecutive_errors": f.consecutive_errors,
            "next_poll": _iso(f.next_poll), "interval": f.interval, "entries_seen": seen, "articles_kept": kept,
            "backfill": b.as_dict() if (b := backfill.get(origin(f.config_url))) is not None else None,
        })
    polled = {r.config_url for r in rows}
    for own in config.feeds:
        if own.url not in polled:
            out.append({"url": display(own.url), "config_url": display(own.url), "name": own.name,
                        "in_config": True,
                        "state": "new",
                        "reason": None, "summary": "new: not polled yet", "moved_to": None, "retry_after": None,
                        "last_poll": None, "last_success": None, "last_error": None,
                        "last_error_at": None, "consecutive_errors": 0, "next_poll": None, "interval": None,
                        "entries_seen": 0, "articles_kept": 0,
                        "backfill": b.as_dict() if (b := backfill.get(origin(own.url))) is not None else None})
    if args.json:
        print(json.dumps(out))
        return 0
    print_model(report, learning)
    if config.store.url:
        print(f"workers (PostgreSQL): {len(workers)} seen in the last {config.store.lease:g}s"
              + "".join(f"\n  {name}: {hosts} host(s) held, seen {_iso(seen)}" for name, hosts, seen in workers))
    if records or config.archive.enabled:
        per = f", {archive_bytes / records / 1000:.1f} KB a page" if records else ""
        print(f"archive: {records} page(s) in {archive_bytes / 1e6:.1f} MB of WARC files in "
              f"{config.paths.store / 'archive'}{per}" + ("" if config.archive.enabled else " ([archive] off)"))
    if backfill:
        print("backfill (ingest backfill, [backfill] enabled):")
        for b in backfill.values():
            print(f"  {display(b.site)}: {b.summary()}")
    print()
    for r in out:
        flag = "" if r["in_config"] else " (removed from config)"
        print(f"{r['state']:<9} {r['config_url']}{flag}")
        print(f"          {r['summary']}")
        print(f"          name: {r['name'] or '-'}; last poll: {r['last_poll'] or 'never'}; "
              f"last success: {r['last_success'] or 'never'}; next poll: {r['next_poll'] or '-'}")
        print(f"          entries seen: {r['entries_seen']}; articles kept: {r['articles_kept']}; "
              f"consecutive errors: {r['consecutive_errors']}")
        if r["last_error"]:
            print(f"          last error ({r['last_error_at']}): {r['last_error']}")
    return 0


def add_digest(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("digest", parents=[common], help="write a digest of what was collected",
                       description="Articles kept (or updated) in a period, most relevant first, with site, date, "
                                   "score, the terms that matched, an excerpt and the other sources of the same "
                                   "story; then the feeds that are failing, backing off, disabled or moved. "
                                   "Without --since: the next digest, covering the time since the previous "
                                   "one; it is also written to the store's digests/ folder (Markdown, HTML, "
                                   "rolling Atom feed.xml), recorded so no item appears twice, and e-mailed "
                                   "when [digest] email is set.")
    p.add_argument("--since", metavar="WHEN", help="a period such as 24h or 7d, or an ISO date; not recorded")
    p.add_argument("--format", choices=["markdown", "html", "atom", "json"], default="markdown")
    p.add_argument("--output", metavar="PATH", help="write to this file instead of stdout")
    p.add_argument("--no-backfill", action="store_true",
                   help="leave out the articles `ingest backfill` found in the sites' history (by default they "
                        "are listed apart, after the new stories, marked \"from the archive of SITE\")")
    p.set_defaults(func=cmd_digest)


def add_status(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("status", parents=[common], help="show the state of every feed",
                       description="Per feed: state, last poll, last success, last error, consecutive "
                                   "errors, entries seen, articles kept.")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--check", action="store_true",
                   help="health check for cron, systemd or a container HEALTHCHECK: print one line and exit 1 "
                        "when no poll has succeeded within twice the longest interval in use or the store "
                        "cannot be written (0 otherwise); the same rule as GET /healthz")
    p.set_defaults(func=cmd_status)

