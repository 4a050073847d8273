"""The ``ingest`` command line: parse arguments, call one function, print.

Exit status: 0 success (a poll in which some feeds failed still succeeds),
1 the run itself could not proceed (store locked or unusable), 2 bad
configuration, seeds or arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import shlex
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config import Config, ConfigError, FeedSettings, load_config
from .logs import setup_logging
from .relevance import MIN_STREAM
from .schedule import explain_state
from .seeds import SeedError, load_seeds
from .store import SqlStore, StoreBusy, StoreError, open_store
from .timefmt import iso as _iso
from .urls import display, redact, redact_text

if TYPE_CHECKING:
    from .feedback import Applied
    from .subscriptions import Found

log = logging.getLogger("ingest")


# -- commands ----------------------------------------------------------------

def _announce(store: SqlStore, command: str, web: str = "") -> None:
    """Record which command holds an SQLite store (so another one can say who, and where)."""
    if store.backend == "sqlite":
        from .store import holder

        holder.announce(store.root, command, web)


def cmd_poll(config: Config, args: argparse.Namespace) -> int:
    import signal

    from .poll_once import poll_once
    from .worker import kill_workers, make_executor

    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    with open_store(config) as store:
        _announce(store, "poll")
        _apply_recorded(store)
        executor = make_executor(config.worker.processes or None, language=config.relevance.language)
        clean = False
        try:
            if sys.stderr.isatty():
                from .progress import TerminalProgress

                to_stderr = [h for h in logging.getLogger("ingest").handlers if type(h) is logging.StreamHandler]
                with TerminalProgress(to_stderr[0] if to_stderr else None) as bar:
                    summary = asyncio.run(poll_once(config, store, seeds, executor, progress=bar))
            else:
                summary = asyncio.run(poll_once(config, store, seeds, executor))
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
        print(f"seconds: {s.seconds:.1f}")
        for f in s.failures:
            print(f"failed: {f['feed']}: {f['error']}")
    if summary.interrupted:
        print(f"ingest poll: interrupted by {summary.interrupted}; what was complete is stored, the rest is "
              f"fetched next time", file=sys.stderr)
        return 128 + getattr(signal, summary.interrupted)
    return 0


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from .config import check_listen
    from .metrics import Metrics
    from .web import WebContext, bind, make_app, make_server

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
        _announce(store, "serve", f"http://{listen}/")
        from .store import StoreThread

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


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from .service import run_service

    return run_service(config)


def cmd_score(config: Config, args: argparse.Namespace) -> int:
    from .pipeline import score_texts

    names, texts = [], []
    for name in args.files:
        if name == "-":
            names.append("-")
            texts.append(sys.stdin.read())
            continue
        try:
            texts.append(Path(name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"ingest score: {name}: cannot read as UTF-8 text: {exc}", file=sys.stderr)
            return 2
        names.append(name)
    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    with open_store(config, readonly=True) as store:
        scored = score_texts(config, store, seeds, texts)
    for w in scored.threshold.warnings:
        print(f"ingest: warning: {w}", file=sys.stderr)
    th = scored.threshold.value
    for name, s in zip(names, scored.scores, strict=True):
        if args.json:
            print(json.dumps({"path": name, "score": s.score, "relevant": s.score >= th, "threshold": th,
                              "terms": list(s.terms)}))
        else:
            verdict = "relevant" if s.score >= th else "not relevant"
            print(f"{s.score:.3f}  {verdict:<12}  {name}  (threshold {th:.3f}; terms: {', '.join(s.terms[:6])})")
    return 0


def cmd_digest(config: Config, args: argparse.Namespace) -> int:
    from . import digest
    from .feedback import review

    now = time.time()
    seeds = [s.text for s in load_seeds(config.paths.seeds)]
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
                d = digest.build(reader, since, now, now, review(reader, seeds, config, digest.REVIEW_ITEMS))
            print("ingest: the service is running and records the digests; this preview since the last "
                  "digest is not recorded", file=sys.stderr)
        else:
            with store:
                d, paths = digest.scheduled(store, now, review=review(store, seeds, config, digest.REVIEW_ITEMS))
                print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
                _deliver(store, config, now)
        text = digest.render(d, args.format)
    else:
        since = parse_since(args.since, now)
        with open_store(config, readonly=True) as store:
            d = digest.build(store, since, now, now, review(store, seeds, config, digest.REVIEW_ITEMS))
        text = digest.render(d, args.format)
    if args.output:
        write_output(args.output, text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _deliver(store: SqlStore, config: Config, now: float) -> None:
    """Send the digest just recorded (and earlier ones that failed) to [notify] urls and [digest] email;
    a failure is reported and retried at the next digest (the files are written regardless)."""
    from . import notify

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


def parse_since(value: str, now: float) -> float:
    """'24h', '7d', '90m' (ago) or an ISO date/time (UTC when no zone is given)."""
    from .config import _DURATION, parse_duration

    try:
        return now - parse_duration(value)
    except ValueError as exc:
        if _DURATION.match(value):
            raise ConfigError(f"--since {value!r}: expected {exc}") from None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since {value!r}: expected a duration such as 24h or 7d, or an ISO date "
                          f"such as 2026-11-20") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    with open_store(config, readonly=True) as store:
        for row in store.articles():
            body = store.article_body(row)
            text = body[1] if body is not None else None
            sources = store.article_sources(row["id"])
            feeds = list(dict.fromkeys(display(s["feed_url"]) for s in sources if s["feed_url"]))
            print(json.dumps({
                "id": row["id"], "url": display(row["url"]), "canonical_url": display(row["canonical_url"]),
                "title": row["title"],
                "text": text, "author": row["author"] or None, "published": row["published"],
                "fetched": _iso(row["fetched"]), "feeds": feeds, "score": row["score"], "path": row["path"],
                "site": row["site"] or None, "terms": json.loads(row["terms"]),
                "sources": [{"url": display(s["url"]), "feed": display(s["feed_url"]) if s["feed_url"] else None,
                             "first_seen": _iso(s["first_seen"])}
                            for s in sources],
            }, ensure_ascii=False))
    return 0


def cmd_search(config: Config, args: argparse.Namespace) -> int:
    from .store import SearchError

    with open_store(config, readonly=True) as store:
        try:
            hits = store.search(args.query, limit=max(1, args.limit), rejected=args.rejected)
        except SearchError as exc:
            print(f"ingest search: {exc}", file=sys.stderr)
            return 2
    for h in hits:
        snippet = h.snippet.replace("\x02", "[").replace("\x03", "]")
        if args.json:
            print(json.dumps({"kind": h.kind, "id": f"{'a' if h.kind == 'article' else 'p'}{h.id}", "title": h.title,
                              "url": display(h.url), "site": h.site or None, "published": h.published,
                              "fetched": _iso(h.fetched), "score": h.score, "snippet": snippet,
                              "rank": round(h.rank, 4)}, ensure_ascii=False))
        else:
            ref = f"{'a' if h.kind == 'article' else 'p'}{h.id}"
            flag = "" if h.kind == "article" else "  (rejected)"
            print(f"{ref:<8} {_short(h.title or h.url, 90)}{flag}")
            print(f"{'':<9}{display(h.url)}\n{'':<9}{_short(snippet, 160)}")
    if not hits and not args.json:
        print("no match", file=sys.stderr)
    return 0


def cmd_status(config: Config, args: argparse.Namespace) -> int:
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
        if config.store.url:
            from .store.postgres import PgStore

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
                        "entries_seen": 0, "articles_kept": 0})
    if args.json:
        print(json.dumps(out))
        return 0
    window, relevant, irrelevant, pending = learning
    model = "logistic regression" if window >= MIN_STREAM else f"cosine (learns once {MIN_STREAM} pages are in)"
    print(f"relevance: {model} on a window of {window} recent pages; your verdicts: {relevant} relevant, "
          f"{irrelevant} not{f', {pending} not applied yet' if pending else ''} (ingest review asks)")
    if config.store.url:
        print(f"workers (PostgreSQL): {len(workers)} seen in the last {config.store.lease:g}s"
              + "".join(f"\n  {name}: {hosts} host(s) held, seen {_iso(seen)}" for name, hosts, seen in workers))
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


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_check(config: Config, args: argparse.Namespace) -> int:
    with open_store(config, writer=args.repair, readonly=not args.repair) as store:
        report = store.check(repair=args.repair)
        if store.recovered.get("renamed") or store.recovered.get("removed"):
            report.repaired.insert(0, f"interrupted writes: {store.recovered['renamed']} finished, "
                                      f"{store.recovered['removed']} temp file(s) removed")
    if args.json:
        print(json.dumps({"ok": report.ok, **dataclasses.asdict(report)}))
        return 0 if report.ok else 1
    for line in report.integrity:
        print(f"database: {line}")
    for path in report.missing:
        print(f"missing file: {path}: indexed but gone (deleted by hand?); restore it from a backup")
    for path in report.orphans:
        print(f"unindexed file: {path}: no row in ingest.db (--repair moves it to orphans/)")
    for path in report.misplaced:
        print(f"misplaced file: {path}: its row says the other folder (--repair moves it)")
    for path in report.temp_files:
        print(f"temp file: {path}: left by an interrupted write (--repair finishes or removes it)")
    for line in report.repaired:
        print(f"repaired: {line}")
    print("store is consistent" if report.ok else "store has problems (listed above)", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_review(config: Config, args: argparse.Namespace) -> int:
    from .feedback import review

    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    with open_store(config, readonly=True) as store:
        items = review(store, seeds, config, args.limit)
    if args.json:
        for it in items:
            print(json.dumps(it.as_dict(), ensure_ascii=False))
        return 0
    if not items:
        print("nothing to review yet: no unjudged kept or rejected pages in the model's window")
        return 0
    print(f"{'id':<8} {'score':>6} {'thresh':>6}  {'now':<8} {'site':<22} title / matched terms")
    for it in items:
        print(f"{it.id:<8} {it.score:6.3f} {it.threshold:6.3f}  {'kept' if it.kept else 'rejected':<8} "
              f"{_short(it.site, 22):<22} {_short(it.title or it.url, 70)}")
        print(f"{'':<42}terms: {', '.join(it.terms[:6]) or '-'}")
    print("\njudge with: ingest mark ID... --relevant | --irrelevant", file=sys.stderr)
    return 0


def _apply_now(config: Config) -> Applied | None:
    """Apply pending verdicts when no other process holds the store: what was done (None: not now)."""
    from .feedback import apply_verdicts

    try:
        store = open_store(config)
    except StoreBusy:
        return None
    with store:
        return apply_verdicts(store, time.time())


def _apply_recorded(store: SqlStore) -> None:
    """Verdicts recorded (``ingest mark``) while another process held the store reach the corpus folder."""
    from .feedback import apply_verdicts

    done = apply_verdicts(store, time.time())
    for what, paths in (("added", done.added), ("restored", done.restored), ("withdrawn", done.withdrawn)):
        for path in paths:
            log.info("event=verdict_applied change=%s path=%s", what, path)


def _verdicts_apply_later(config: Config) -> str:
    """Who applies a verdict recorded while another process holds the store, and when."""
    from .store import holder

    running = holder.current(config.paths.store)
    if running is not None and running.command == "run":
        return f"the running service (pid {running.pid}) moves the files within a few seconds"
    who = running.describe() if running is not None else "another ingest process"
    return (f"recorded; {who} holds the store, so the corpus folder follows when it is free (the next "
            f"`ingest mark`, `ingest run` or `ingest poll` applies every recorded verdict)")


def _print_applied(done: Applied) -> None:
    for p in done.added:
        print(f"added to the corpus: {p}")
    for p in done.restored:
        print(f"back in the corpus: {p}")
    for p in done.withdrawn:
        print(f"taken out of the corpus (kept in withdrawn/): {p}")
    for u in done.duplicates:
        print(f"already in the corpus as another copy of the story: {u}")
    for u in done.missing:
        print(f"text no longer kept ([relevance] keep_rejected), not added: {u}")


def cmd_mark(config: Config, args: argparse.Namespace) -> int:
    from .feedback import FeedbackError, mark

    with open_store(config, writer=False) as store:
        try:
            rows = mark(store, args.ids, args.relevant, time.time())
        except FeedbackError as exc:
            print(f"ingest mark: {exc}", file=sys.stderr)
            return 2
    verdict = "relevant" if args.relevant else "not relevant"
    for row in rows:
        print(f"p{row['id']}: {verdict}  {display(row['final_url'] or row['url'])}")
    done = _apply_now(config)
    if done is not None:
        _print_applied(done)
    else:
        print(_verdicts_apply_later(config), file=sys.stderr)
    return 0


def cmd_rescore(config: Config, args: argparse.Namespace) -> int:
    from .feedback import rescore

    now = time.time()
    since = parse_since(args.since, now) if args.since else now - config.relevance.keep_rejected
    seeds = [s.text for s in load_seeds(config.paths.seeds)]
    try:
        store = open_store(config)
    except StoreError as exc:
        if "another ingest process" in str(exc):
            print(f"ingest rescore: {exc}. The service rescores by itself when the seeds change "
                  f"(and on SIGHUP); verdicts from `ingest mark` take effect at its next poll.", file=sys.stderr)
            return 1
        raise
    with store:
        report = rescore(store, seeds, config, since, now, apply=args.apply)
    if args.json:
        a = report.applied
        print(json.dumps({"pages": report.pages, "without_text": report.without_text,
                          "threshold": report.threshold, "added": a.added, "restored": a.restored,
                          "withdrawn": a.withdrawn, "duplicates": a.duplicates,
                          "below": [it.as_dict() for it in report.below]}, ensure_ascii=False))
        return 0
    thr = f" (threshold {report.threshold:.3f})" if report.threshold is not None else ""
    print(f"re-decided {report.pages} pages since {_iso(since)}{thr}; {report.without_text} rejected pages "
          f"no longer have their text")
    _print_applied(report.applied)
    if report.below and not args.apply:
        print(f"{len(report.below)} kept article(s) now fall below the threshold (still in the corpus; "
              f"--apply takes them out, `ingest mark ID --relevant` keeps one for good):")
        for it in report.below:
            print(f"  {it.id:<8} {it.score:.3f}  {_short(it.title or it.url, 80)}")
    return 0


def cmd_seeds(config: Config, args: argparse.Namespace) -> int:
    from .feedback import FeedbackError, add_seed, mark

    if args.seeds_command == "list":
        for s in load_seeds(config.paths.seeds):
            first = s.text.strip().split("\n", 1)[0]
            print(f"{s.path.name}  {len(s.text.split()):>6} words  {_short(first, 70)}")
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
        done = _apply_now(config)
        if done is not None:
            _print_applied(done)
        else:
            print(f"judged relevant: {_verdicts_apply_later(config)}", file=sys.stderr)
    return 0


def _feed_states(config: Config) -> dict[str, dict]:
    """Poll state by configured URL, when the store exists (read-only; nothing is created)."""
    if not (config.paths.store / "ingest.db").exists():
        return {}
    with open_store(config, readonly=True) as store:
        rows = store.feeds(active_only=False)
        counts = store.feed_counts()
    now = time.time()
    return {f.config_url: {"state": f.state if f.enabled else "paused", "summary": redact_text(explain_state(f, now)),
                           "title": f.title, "last_success": _iso(f.last_success),
                           "articles_kept": counts.get(f.id, (0, 0))[1]} for f in rows}


def cmd_feeds(config: Config, args: argparse.Namespace) -> int:
    from . import subscriptions as subs

    action = args.feeds_command
    try:
        if action == "list":
            states = _feed_states(config)
            out = []
            for f in config.feeds:
                st = states.get(f.url, {})
                out.append({"url": display(f.url), "name": f.name or st.get("title", ""), "category": f.category,
                            "enabled": f.enabled, "poll_interval": f.poll_interval, "threshold": f.threshold,
                            "user_agent": f.user_agent or None, "headers": [k for k, _ in f.headers],
                            "cookie": bool(f.cookie), "proxy": redact(f.proxy) if f.proxy else None,
                            "state": st.get("state", "new"), "summary": st.get("summary", "new: not polled yet"),
                            "last_success": st.get("last_success"), "articles_kept": st.get("articles_kept", 0)})
            if args.json:
                print(json.dumps(out, ensure_ascii=False))
                return 0
            for r in out:
                label = f"{r['name']}  " if r["name"] else ""
                cat = f"  [{r['category']}]" if r["category"] else ""
                print(f"{r['state']:<9} {label}{r['url']}{cat}")
                print(f"          {r['summary']}; articles kept: {r['articles_kept']}")
            print(f"{len(out)} feed(s) in {config.path}", file=sys.stderr)
            return 0
        if action == "add":
            found = asyncio.run(_discover(config, args.url))
            title = " ".join((found.parsed.title or "").split())[:200]  # the feed's own title names it
            feed = FeedSettings(url=found.url, name=args.name or title, category=args.category or "")
            added, dupes = subs.add_feeds(config.path, [feed], config.feeds)
            newest = found.newest
            what = (f"{found.parsed.kind.value}, {len(found.parsed.entries)} entries, newest "
                    f"{newest.date().isoformat() if newest else 'undated'}")
            if dupes:
                print(f"ingest feeds add: {display(found.url)} ({what}) is already in {config.path}; "
                      f"nothing changed", file=sys.stderr)
                return 1
            print(f"added: {found.parsed.title or '(untitled)'}  {display(found.url)}")
            print(f"       {what}")
            for other in found.also:
                print(f"       the page also links {display(other)}; to follow it too: "
                      f"ingest feeds add {shlex.quote(display(other))}")
            print(_feed_list_applies(config), file=sys.stderr)
            return 0
        if action == "remove":
            gone = subs.remove_feed(config.path, args.ref, config.feeds)
            print(f"removed: {gone.name + '  ' if gone.name else ''}{display(gone.url)} (its articles and "
                  f"history stay in the store)")
            print(_feed_list_applies(config), file=sys.stderr)
            return 0
        if action == "import":
            try:
                data = Path(args.file).read_bytes()
            except OSError as exc:
                print(f"ingest feeds import: {args.file}: cannot read: {exc.strerror or exc}", file=sys.stderr)
                return 2
            opml = subs.read_opml(data, args.file)
            added, dupes = subs.add_feeds(config.path, opml.feeds, config.feeds)
            print(f"imported {len(added)} feed(s) into {config.path}; {len(dupes)} duplicate(s) skipped; "
                  f"{len(opml.invalid)} invalid")
            for f in added:
                print(f"  added: {f.name or '(no name)'}  {display(f.url)}{f'  [{f.category}]' if f.category else ''}")
            for f in dupes:
                print(f"  duplicate: {display(f.url)}")
            for what, why in opml.invalid:
                print(f"  invalid: {display(what) if '://' in what else what}: {why}")
            if added:
                print(_feed_list_applies(config), file=sys.stderr)
            return 0
        if action == "export":
            feeds = config.feeds
            secret = [f for f in feeds if redact(f.url) != f.url]
            if args.redact:
                feeds = tuple(dataclasses.replace(f, url=redact(f.url)) for f in feeds)
            elif secret:
                print(f"ingest feeds export: {len(secret)} feed URL(s) carry credentials (a password or a token) and "
                      f"are written as they are; --redact replaces them with REDACTED", file=sys.stderr)
            text = subs.write_opml(feeds)
            if args.output:
                write_output(args.output, text)
                print(f"wrote {len(config.feeds)} feed(s) to {args.output}", file=sys.stderr)
            else:
                sys.stdout.write(text)
            return 0
        if action == "sync":
            with open_store(config) as store:
                done = subs.sync_store(store, config, time.time())
            where = "PostgreSQL" if config.store.url else str(config.paths.store)
            print(f"feeds in {where}: {done.active} from {config.path} ({done.added} new, {done.paused} paused); "
                  f"{done.removed} no longer listed (inactive, history kept)")
            return 0
    except subs.FeedListError as exc:
        print(f"ingest feeds {action}: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(action)


def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    with open_store(config, writer=False) as store:
        version = store.schema_version()
        where = "PostgreSQL" if config.store.url else str(config.paths.store / "ingest.db")
    print(f"{where}: schema version {version} ({store.backend}); up to date")
    return 0


def cmd_corpus(config: Config, args: argparse.Namespace) -> int:
    from .corpus import sync_folder

    folder = Path(args.dir)
    if not config.store.url and folder.resolve() == (config.paths.store / "corpus").resolve():
        print(f"ingest corpus sync: {folder} is the store's own corpus folder (SQLite keeps it current)",
              file=sys.stderr)
        return 0
    with open_store(config, readonly=True) as store:
        try:
            done = sync_folder(folder, store.corpus_files(), store.withdrawn_files())
        except OSError as exc:
            raise OutputError(f"{folder}: cannot write: {exc.strerror or exc}") from None
    print(f"{folder}: {done.written} written, {done.unchanged} unchanged, {done.removed} removed (withdrawn)")
    return 0


def _feed_list_applies(config: Config) -> str:
    """When an edit of the feed list reaches the polls."""
    from .store import holder

    if config.store.url:
        return "run `ingest feeds sync` to hand the change to the workers (PostgreSQL)"
    running = holder.current(config.paths.store)
    if running is not None and running.command == "run":
        return f"the running service (pid {running.pid}) picks it up within seconds"
    return "the next `ingest run` or `ingest poll` polls it"


async def _discover(config: Config, url: str) -> Found:
    from .fetch import Fetcher
    from .subscriptions import discover

    async with Fetcher(config.fetch) as fetcher:
        return await discover(url, fetcher)


# -- parser ------------------------------------------------------------------

DESCRIPTION = """\
seed-ingest follows feeds (RSS, Atom, RDF, JSON Feed, news sitemaps) and keeps
the articles that resemble the example texts in your seeds folder, in a
plain-text corpus with an SQLite index of where each came from (or, with
[store] url, a PostgreSQL database that any number of workers share).
"""


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name (defaults set once, on the top parser)."""
    def default(value: str | None) -> str | None:
        return argparse.SUPPRESS if suppress else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=default(None),
                        help="config file (default: $INGEST_CONFIG, else ./config.toml)")
    common.add_argument("--log-level", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        default=default("INFO"), help="log detail, any case (default INFO); DEBUG adds each "
                                                      "request (status, time) and each rejection (score, threshold)")
    common.add_argument("--log-file", metavar="PATH", default=default(None),
                        help="append the log to this file instead of stderr")
    common.add_argument("--log-format", choices=["text", "json"], default=default("text"),
                        help="text: one 'time LEVEL key=value ...' line per event (default); json: one JSON "
                             "object per line (time, level, message and the key=value fields), for log shippers")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common(suppress=True)
    parser = argparse.ArgumentParser(prog="ingest", description=DESCRIPTION, parents=[_common(suppress=False)],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"seed-ingest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", parents=[common], help="run the service: poll feeds on schedule, write digests",
                       description="Run in the foreground until SIGTERM/SIGINT: poll each feed when it is due "
                                   "(intervals adapt to how often it publishes; failures back off), and write "
                                   "the digest on the [schedule] digest cron. SIGHUP re-reads the config. "
                                   "One line per event is logged to stderr (or --log-file). With [store] url "
                                   "(PostgreSQL) it is a worker: start as many as you like, on any machines; "
                                   "they share the hosts through leases (see `ingest feeds sync`).")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("poll", parents=[common], help="poll every feed once, now",
                       description="One pass over all feeds: fetch them, find entries not seen before, fetch "
                                   "their pages, extract the text, score it against the seeds and store the "
                                   "relevant ones. Prints a summary; exits 0 even when some feeds fail.")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("score", parents=[common], help="score text files against the seeds",
                       description="Score plain-text files against the seeds without fetching anything. The "
                                   "decision is the one `poll` would make for the same texts arriving in one "
                                   "poll on the same store.")
    p.add_argument("files", nargs="+", metavar="FILE", help="text files; - reads standard input")
    p.add_argument("--json", action="store_true", help='one JSON object per file: {"path", "score", '
                   '"relevant", "threshold", "terms"}')
    p.set_defaults(func=cmd_score)

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
    p.set_defaults(func=cmd_digest)

    p = sub.add_parser("export", parents=[common], help="write the corpus to stdout as JSON lines",
                       description="The corpus, one JSON object per article: id, url, canonical_url, title, "
                                   "text, author, published, fetched, feeds, score, path (plus site, terms, "
                                   "sources).")
    p.add_argument("--format", choices=["jsonl"], default="jsonl", help="output format (jsonl)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("status", parents=[common], help="show the state of every feed",
                       description="Per feed: state, last poll, last success, last error, consecutive "
                                   "errors, entries seen, articles kept.")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--check", action="store_true",
                   help="health check for cron, systemd or a container HEALTHCHECK: print one line and exit 1 "
                        "when no poll has succeeded within twice the longest interval in use or the store "
                        "cannot be written (0 otherwise); the same rule as GET /healthz")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("serve", parents=[common], help="the web view, when the service is not running",
                       description="Serve the web view (corpus, articles, search, review, near misses, feeds, "
                                   "digests, /healthz, /metrics) without polling. It takes the store, so it "
                                   "cannot run next to `ingest run`, which serves the same view itself at "
                                   "[web] listen. Beyond loopback it needs [web] password.")
    p.add_argument("--listen", metavar="ADDR:PORT", help="where to listen (default: [web] listen, 127.0.0.1:8750)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("search", parents=[common], help="full-text search of the corpus",
                       description="Search the kept articles (and with --rejected the rejected pages whose text "
                                   "is still kept), best match first (SQLite FTS5, bm25; a title match weighs "
                                   "more). Query syntax: words (all must match), \"a phrase\", prefix*, "
                                   "OR, NOT (gold NOT coal), parentheses. Matches are shown [like this].")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--limit", type=int, default=20, help="at most this many results (default 20)")
    p.add_argument("--rejected", action="store_true", help="also search rejected pages while their text is kept")
    p.add_argument("--json", action="store_true",
                   help="JSON lines: kind, id, title, url, site, published, fetched, score, snippet, rank")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("review", parents=[common], help="the articles whose verdict would teach the model most",
                       description="Pages of the model's window (recent kept and rejected pages) nearest the "
                                   "threshold, alternately just above and just below it, never one already "
                                   "judged: title, site, score, threshold, kept or not, the terms that "
                                   "matched. Judge them with `ingest mark`; a few verdicts here teach the "
                                   "model more than many on clear cases.")
    p.add_argument("--json", action="store_true", help='one JSON object per line: {"id", "url", "title", '
                   '"site", "score", "threshold", "kept", "terms"}')
    p.add_argument("--limit", type=int, default=10, metavar="N", help="how many (default 10)")
    p.set_defaults(func=cmd_review)

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

    p = sub.add_parser("rescore", parents=[common], help="re-decide recent pages with the current seeds and verdicts",
                       description="Score again the kept and rejected pages fetched in the period (their text "
                                   "is kept for [relevance] keep_rejected, so nothing is refetched). Pages "
                                   "that now pass join the corpus; kept articles that now fall below are "
                                   "listed, and leave the corpus only with --apply. Your verdicts always "
                                   "stand.")
    p.add_argument("--since", metavar="WHEN", help="a period such as 7d or an ISO date (default: keep_rejected)")
    p.add_argument("--apply", action="store_true", help="also take out the kept articles that fall below")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_rescore)

    p = sub.add_parser("check", parents=[common], help="check the index against the corpus files",
                       description="Compare ingest.db with the store folder: database integrity, a file for "
                                   "every article, a row for every file, temp files left by an interrupted "
                                   "write. Exit status 0 when consistent, 1 otherwise. Works while the "
                                   "service runs (read-only); --repair needs the store to itself.")
    p.add_argument("--repair", action="store_true",
                   help="do what is safe and say what was done: finish or undo interrupted writes, put "
                        "misplaced files where their row says, move unindexed files to orphans/ (nothing "
                        "is deleted; a missing file can only come back from a backup)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_check)

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

    p = sub.add_parser("feeds", parents=[common], help="list, add and remove feeds; OPML import and export",
                       description="The feed list lives in config.toml as [[feeds]] tables; these commands edit "
                                   "it in place (comments and layout kept; the result is validated before it "
                                   "replaces the file, so a failed edit changes nothing). The running service "
                                   "notices the change within seconds, or at once on SIGHUP.")
    feeds_sub = p.add_subparsers(dest="feeds_command", metavar="ACTION", required=True)
    q = feeds_sub.add_parser("add", parents=[common], help="add a feed, or find the feed of a web page",
                             description="URL may be a feed (RSS, Atom, RDF, JSON Feed, news sitemap) or any "
                                         "page of a site: the page's <link rel=alternate> feeds are tried, then "
                                         "common paths (/feed, /rss, /feed.xml, /atom.xml, /index.xml, "
                                         "/feed.json, news sitemaps). Fetched politely, with the private-address "
                                         "guard. Prints the feed's title, entry count and newest entry; refuses "
                                         "a feed already listed (same normalised URL).")
    q.add_argument("url", metavar="URL")
    q.add_argument("--name", help="a name for the feed (default: none; its title is shown)")
    q.add_argument("--category", help="a category, as OPML folders; nested with \" / \"")
    q.set_defaults(func=cmd_feeds)
    q = feeds_sub.add_parser("remove", parents=[common], help="remove a feed by URL or name",
                             description="Remove the [[feeds]] table whose URL (normalised) or name matches. "
                                         "The feed's articles and history stay in the store.")
    q.add_argument("ref", metavar="URL|NAME")
    q.set_defaults(func=cmd_feeds)
    q = feeds_sub.add_parser("list", parents=[common], help="list the feeds with their settings and state")
    q.add_argument("--json", action="store_true",
                   help="a JSON list: url, name, category, enabled, poll_interval, threshold, user_agent, headers "
                        "(names only), cookie (set or not), proxy (without password), state, summary, "
                        "last_success, articles_kept")
    q.set_defaults(func=cmd_feeds)
    q = feeds_sub.add_parser("import", parents=[common], help="add the feeds of an OPML file",
                             description="Read an OPML subscription list (as Miniflux, FreshRSS, Feedly, "
                                         "Inoreader and most readers export): nested outlines become the feed's "
                                         "category; feeds already listed are skipped and counted; invalid "
                                         "entries are listed. Nothing is fetched. The config is written once, "
                                         "or not at all.")
    q.add_argument("file", metavar="FILE.opml")
    q.set_defaults(func=cmd_feeds)
    q = feeds_sub.add_parser("export", parents=[common], help="write the feeds as OPML 2.0",
                             description="OPML 2.0 with categories as folders and names; per-feed secrets "
                                         "(headers, cookie, proxy) are not exported. Credentials in a feed's "
                                         "URL (user:password@, ?token=…) are, with a warning on stderr, unless "
                                         "--redact is given.")
    q.add_argument("--output", metavar="FILE", help="write to this file instead of stdout")
    q.add_argument("--redact", action="store_true",
                   help="replace credentials in feed URLs with REDACTED (a list to share, not to re-import)")
    q.set_defaults(func=cmd_feeds)
    q = feeds_sub.add_parser("sync", parents=[common], help="load config.toml's feeds into the store (PostgreSQL)",
                             description="Make the store's feeds table match config.toml: new feeds are added "
                                         "with a staggered first poll, removed ones go inactive (their history "
                                         "stays), paused ones are kept as they are. On PostgreSQL this is the "
                                         "one way feeds reach the workers; on SQLite the service does it "
                                         "itself.")
    q.set_defaults(func=cmd_feeds)

    p = sub.add_parser("migrate", parents=[common], help="create or upgrade the store's schema",
                       description="Create the tables (a new store) or upgrade them to this version's schema, "
                                   "on SQLite or on the PostgreSQL database of [store] url. Safe to run while "
                                   "workers run: they wait for it (an advisory lock on PostgreSQL).")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("corpus", parents=[common], help="write the corpus folder from the index",
                       description="On PostgreSQL article text lives in the database; `corpus sync DIR` "
                                   "writes it as seeds-format files (NNN_<hex>.txt) into DIR: new and changed "
                                   "articles written atomically, withdrawn ones removed, other files left "
                                   "alone. Idempotent. A worker also keeps [paths] store's corpus/ current "
                                   "every few minutes (one worker, elected).")
    corpus_sub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    q = corpus_sub.add_parser("sync", parents=[common], help="write the corpus articles into DIR")
    q.add_argument("dir", metavar="DIR", help="the folder to write (created if missing)")
    q.set_defaults(func=cmd_corpus)
    return parser


class OutputError(Exception):
    """An output file named on the command line cannot be written."""


def write_output(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"--output {path}: cannot write: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        setup_logging(args.log_level, args.log_file, args.log_format)
    except OSError as exc:
        print(f"ingest: --log-file {args.log_file}: cannot open for writing: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        return args.func(config, args)
    except BrokenPipeError:
        # the reader went away (`ingest export | head -1`): not an error of ours; exit as a
        # SIGPIPE-terminated tool would, without a traceback when Python flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ConfigError, SeedError) as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 2
    except (StoreError, OutputError) as exc:
        print(f"ingest: {exc}", file=sys.stderr)
        return 1
    except (sqlite3.Error, OSError) as exc:  # disk full, read-only store, I/O error
        text = str(exc).lower()
        writing = isinstance(exc, OSError) or "readonly" in text or "disk" in text or "full" in text
        what = "cannot write the store" if writing else "store error"
        print(f"ingest: {what}: {exc}. The store stays consistent (each article is committed with its file "
              f"or not at all; a partial file is removed on the next start); free space or fix permissions "
              f"and run again.", file=sys.stderr)
        return 1
