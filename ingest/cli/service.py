"""The commands that fetch and serve: `run` (the service), `poll` (one pass) and `serve` (the web view)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from ingest.cli.common import apply_recorded
from ingest.config import Config
from ingest.store import StoreBusy, open_store
from ingest.text.seeds import load_seeds


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from ingest.service import run_service

    return run_service(config)


def cmd_poll(config: Config, args: argparse.Namespace) -> int:
    import signal

    from ingest.out.notify import alert_sender
    from ingest.run.executor import kill_workers, make_executor
    from ingest.run.poll_once import poll_once

    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    with open_store(config) as store:
        store.announce("poll")
        apply_recorded(store)
        executor = make_executor(config.worker.processes or None, language=config.relevance.language)
        clean = False
        try:
            if sys.stderr.isatty():
                from ingest.run.progress import TerminalProgress

                to_stderr = [h for h in logging.getLogger("ingest").handlers if type(h) is logging.StreamHandler]
                with TerminalProgress(to_stderr[0] if to_stderr else None) as bar:
                    summary = asyncio.run(poll_once(config, store, seeds, executor, progress=bar,
                                                    send_alerts=alert_sender(config)))
            else:  # a pipe, a log file, CI: a plain line every ~10 s
                from ingest.run.progress import LineProgress

                with LineProgress() as lines:
                    summary = asyncio.run(poll_once(config, store, seeds, executor, progress=lines,
                                                    send_alerts=alert_sender(config)))
            clean = summary.interrupted is None
        finally:
            if clean:
                executor.shutdown(cancel_futures=True)
            else:  # a signal or an error: the workers (and their fork server) go now, not when idle
                kill_workers(executor)
                executor.shutdown(wait=False, cancel_futures=True)
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        s = summary
        print(f"feeds: {s.feeds_ok} ok, {s.feeds_not_modified} not modified, {s.feeds_failed} failed")
        print(f"entries new: {s.entries_new}; pages fetched: {s.pages_fetched} "
              f"({s.page_errors} errors, {s.empty} without text)")
        thr = f" (threshold {s.threshold:.3f})" if s.threshold is not None else ""
        print(f"kept: {s.kept}; rejected: {s.rejected}{thr}; duplicates: {s.duplicates}")
        if s.redecided_kept or s.redecided_withdrawn:
            print(f"re-decided as the model learned from more pages: {s.redecided_kept} joined the corpus, "
                  f"{s.redecided_withdrawn} left it (to dropped/)")
        if s.corpus_articles is not None:
            print(f"corpus/: {s.corpus_articles} articles ({s.corpus_change:+d} this poll)")
        print(f"seconds: {s.seconds:.1f}")
        for f in s.failures:
            print(f"failed: {f['feed']}: {f['error']}")
        for w in s.warnings:
            print(f"warning: {w}")
    if summary.interrupted:
        print(f"ingest poll: interrupted by {summary.interrupted}; what was complete is stored, the rest is "
              f"fetched next time", file=sys.stderr)
        return 128 + getattr(signal, summary.interrupted)
    return 0


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from ingest.config import check_listen
    from ingest.out.web import WebContext, bind, make_app, make_server
    from ingest.run.metrics import Metrics

    listen = args.listen or config.web.listen or "127.0.0.1:8750"
    reason = check_listen(listen, config.web.password)
    if reason:
        print(f"ingest serve: --listen {listen}: expected {reason}", file=sys.stderr)
        return 2
    try:
        store = open_store(config)
    except StoreBusy as exc:
        who = exc.holder.describe() if exc.holder else "another ingest process"
        hint = "; open that one" if exc.holder and exc.holder.web else "; stop it first, or wait for it to finish"
        print(f"ingest serve: {config.paths.store} is held by {who}{hint}", file=sys.stderr)
        return 1
    host, port = listen.rpartition(":")[0].strip("[]"), int(listen.rpartition(":")[2])
    with store:
        try:
            sock = bind(host, port)
        except OSError as exc:
            print(f"ingest serve: cannot listen on {listen}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        store.announce("serve", f"http://{listen}/")
        from ingest.store import StoreThread

        db = StoreThread()
        # pages read through their own read-only connection on the loop; verdicts and seeds are
        # written by the store's thread
        with open_store(config, readonly=True) as reader:
            ctx = WebContext(reader, lambda: config, lambda: [s.text for s in load_seeds(config.paths.seeds)],
                             Metrics(), writer=lambda fn: db(fn, store), listen_host=host)
            print(f"serving http://{listen}/ (Ctrl-C stops)", file=sys.stderr)
            try:
                asyncio.run(make_server(make_app(ctx), install_signals=True).serve(sockets=[sock]))
            finally:
                db.close()
    return 0


def add_run(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("run", parents=[common], help="run the service: poll feeds on schedule, write digests",
                       description="Run in the foreground until SIGTERM/SIGINT: poll each feed when it is due "
                                   "(intervals adapt to how often it publishes; failures back off), and write "
                                   "the digest on the [schedule] digest cron. SIGHUP re-reads the config. "
                                   "One line per event is logged to stderr (or --log-file). With [store] url "
                                   "(PostgreSQL) it is a worker: start as many as you like, on any machines; "
                                   "they share the hosts through leases (see `ingest feeds sync`).")
    p.set_defaults(func=cmd_run)


def add_poll(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("poll", parents=[common], help="poll every feed once, now",
                       description="One pass over all feeds: fetch them, find entries not seen before, fetch "
                                   "their pages, extract the text, score it against the seeds and store the "
                                   "relevant ones. Prints a summary, with corpus/'s article count and the poll's "
                                   "change to it; exits 0 even when some feeds fail.")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_poll)


def add_serve(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="the web view, when the service is not running",
                       description="Serve the web view (corpus, articles, search, review, near misses, feeds, "
                                   "digests, /healthz, /metrics) without polling. It takes the store, so it "
                                   "cannot run next to `ingest run`, which serves the same view itself at "
                                   "[web] listen. Beyond loopback it needs [web] password.")
    p.add_argument("--listen", metavar="ADDR:PORT", help="where to listen (default: [web] listen, 127.0.0.1:8750)")
    p.set_defaults(func=cmd_serve)

