"""The feed list: `feeds add|remove|list|import|export|sync`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.cli.common import write_output
from ingest.config import Config
from ingest.run.schedule import explain_state
from ingest.sources.urls import display, redact, redact_text
from ingest.store import open_store
from ingest.timefmt import iso as _iso

if TYPE_CHECKING:
    from ingest.sources.discovery import Discovery


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
    from ingest.sources import subscriptions as subs

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
            from ingest.sources.discovery import DiscoveryError, missing_scheme

            if (hint := missing_scheme(args.url)) is not None:
                print(f"ingest feeds add: {hint}", file=sys.stderr)
                return 2

            try:
                found = asyncio.run(_discover(config, args.url))
            except DiscoveryError as exc:
                print(f"ingest feeds add: {exc}", file=sys.stderr)
                return 1
            report = subs.add_found(config.path, found, config.feeds, args.name, args.category or "")
            for line in report.lines():
                print(line)
            if report.added:
                print(_feed_list_applies(config), file=sys.stderr)
                return _backfill_added(config, [f.url for f in report.added]) if args.backfill else 0
            why = f"every feed found is already in {config.path}" if report.already else "no feed found worked"
            print(f"ingest feeds add: {why}; nothing changed", file=sys.stderr)
            return 1
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
                from ingest.run.schedule import sync_store

                done = sync_store(store, config, time.time())
            where = "PostgreSQL" if config.store.url else str(config.paths.store)
            print(f"feeds in {where}: {done.active} from {config.path} ({done.added} new, {done.paused} paused); "
                  f"{done.removed} no longer listed (inactive, history kept)")
            return 0
    except subs.FeedListError as exc:
        print(f"ingest feeds {action}: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(action)


def _backfill_added(config: Config, urls: list[str]) -> int:
    """`feeds add --backfill`: the new feeds' sites' history now, or, while the service holds the store,
    what will fetch it."""
    from ingest.cli import backfill
    from ingest.config import load_config
    from ingest.store import StoreError

    config = load_config(config.path)  # with the feeds just added: their archived pages are read too
    try:
        return backfill.run(config, urls, None, None, False, False)
    except StoreError as exc:
        if "another ingest process" not in str(exc):
            raise
        then = ("the service backfills the new site between polls ([backfill] enabled)" if config.backfill.enabled
                else "run `ingest backfill " + display(urls[0]) + "` once it has stopped, or set [backfill] "
                     "enabled = true so the service backfills between polls")
        print(f"ingest feeds add: the feed is added; another ingest process holds the store: {then}",
              file=sys.stderr)
        return 0


def _feed_list_applies(config: Config) -> str:
    """When an edit of the feed list reaches the polls."""
    from ingest.store import holder

    if config.store.url:
        return "run `ingest feeds sync` to hand the change to the workers (PostgreSQL)"
    running = holder.current(config.paths.store)
    if running is not None and running.command == "run":
        return f"the running service (pid {running.pid}) picks it up within seconds"
    return "the next `ingest run` or `ingest poll` polls it"


async def _discover(config: Config, url: str) -> Discovery:
    from ingest.sources.discovery import discover
    from ingest.sources.fetch import Fetcher

    async with Fetcher(config.fetch) as fetcher:
        return await discover(url, fetcher)


def add_feeds(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
                                         "/feed.json, news sitemaps). Links resolve against the page's own URL. "
                                         "Fetched politely, with the private-address guard. Every working feed "
                                         "the page links is added, unless already listed (same normalised URL); "
                                         "each feed found is reported: added (title, entry count, newest entry), "
                                         "already followed, or failed (with its answer). Exit 0 when one was "
                                         "added, 1 when nothing changed.")
    q.add_argument("url", metavar="URL")
    q.add_argument("--name", help="a name for the feed (default: its title; with several feeds found, the "
                   "first one added)")
    q.add_argument("--category", help="a category, as OPML folders; nested with \" / \"")
    q.add_argument("--backfill", action="store_true",
                   help="then fetch the new site's history, best-first, as `ingest backfill URL` does")
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

