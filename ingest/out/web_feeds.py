"""The web view's feed pages: the list with Add / Pause / Resume / Remove / Poll now, and a page per
feed (its recent entries and what became of each, its state, its settings, its OPML and JSON).

Every change is a POST with the CSRF token and writes ``config.toml`` the way `ingest feeds add`
does (ingest.sources.subscriptions: comments and layout kept, validated, written atomically); the
store's feeds table follows at once on SQLite (the service also reloads the file by itself). "Poll
now" asks the service (``WebContext.poll_now``); `ingest serve` polls nothing and says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ingest.config import Config, FeedSettings, load_config
from ingest.run.schedule import explain_state, sync_store
from ingest.sources.urls import display, display_host, redact, redact_text
from ingest.store import FeedRow
from ingest.timefmt import every
from ingest.timefmt import short as _date

if TYPE_CHECKING:
    from ingest.out.web_context import WebContext

ENTRIES = 50  # entries shown on a feed's page
NOT_POLLING = ("`ingest serve` shows the store and polls nothing: run `ingest poll` for one pass now, or "
               "`ingest run` (the service), whose web view has this button working")
FEED_MESSAGES = {  # the confirmations a redirect may name (?done=KEY): never text from the URL
    "paused": "Paused: it is not polled until you resume it; its history stays.",
    "resumed": "Resumed: it is polled again on its schedule.",
    "removed": "Removed from config.toml; its articles and history stay in the store.",
    "polling": "The service polls it now; reload in a few seconds to see what it found.",
    "polling-all": "The service polls every feed now; reload in a few seconds to see what they found.",
}


def feed_settings(own: FeedSettings | None) -> dict[str, Any]:
    """A [[feeds]] table as it may be shown: header names only, no cookie value, the proxy redacted."""
    if own is None:
        return {}
    return {"name": own.name, "category": own.category, "enabled": own.enabled, "poll_interval": own.poll_interval,
            "threshold": own.threshold, "user_agent": own.user_agent or None, "headers": [k for k, _ in own.headers],
            "cookie": bool(own.cookie), "proxy": redact(own.proxy) if own.proxy else None}


def feed_dict(f: FeedRow, own: FeedSettings | None, now: float, counts: tuple[int, int]) -> dict[str, Any]:
    """The feed's JSON representation (what `ingest feeds list --json` and `status --json` say of it)."""
    return {"id": f.id, "url": display(f.url), "config_url": display(f.config_url), "name": f.name or f.title,
            "title": f.title, "in_config": own is not None, "state": f.state if f.enabled else "paused",
            "summary": redact_text(explain_state(f, now)), "reason": redact_text(f.state_reason) or None,
            "last_poll": _date(f.last_poll), "last_success": _date(f.last_success),
            "last_error": redact_text(f.last_error) if f.last_error else None,
            "consecutive_errors": f.consecutive_errors, "errors_since": _date(f.errors_since),
            "next_poll": _date(f.next_poll), "interval": every(f.interval) if f.interval else None,
            "entries_seen": counts[0], "articles_kept": counts[1], "settings": feed_settings(own)}


def feed_routes(ctx: WebContext, page: Callable[..., Response],
                form: Callable[[Request], Awaitable[dict[str, str]]],
                aggregate: Callable[[str, Callable], Any]) -> list[Route]:

    def config_now() -> Config:
        """The config as the file holds it now (the service reloads it within seconds; a page shown right
        after a change must not wait for that)."""
        try:
            return load_config(ctx.config().path)
        except Exception:  # a broken file: what was loaded last (the change itself was validated)
            return ctx.config()

    async def follow(config: Config) -> None:
        """The store's feeds table follows the file at once (SQLite; on PostgreSQL it is `feeds sync`'s)."""
        if not config.store.url:
            await ctx.write(lambda store: sync_store(store, config, ctx.clock()))

    def by_id(fid: int) -> FeedRow | None:
        return next((f for f in ctx.store.feeds(active_only=False) if f.id == fid), None)

    async def feeds(request: Request, report: list[str] | None = None, error: str | None = None) -> Response:
        now = ctx.clock()
        counts = aggregate("feed_counts", ctx.store.feed_counts)
        config = config_now()
        rows, listed = [], set()
        for f in ctx.store.feeds():
            own = config.feed(f.config_url)
            listed.add(f.config_url)
            rows.append({"id": f.id, "name": f.name or f.title or display_host(f.config_url),
                         "url": display(f.config_url), "category": own.category if own else "",
                         "enabled": f.enabled, "state": f.state if f.enabled else "paused",
                         "summary": redact_text(explain_state(f, now)),
                         "last_error": redact_text(f.last_error) if f.last_error else None,
                         "last_success": _date(f.last_success), "next_poll": _date(f.next_poll),
                         "interval": every(f.interval) if f.interval else "", "kept": counts.get(f.id, (0, 0))[1]})
        for own in config.feeds:  # listed in the file, not in the store yet (the service adds it shortly)
            if own.url not in listed:
                rows.append({"id": None, "name": own.name or display_host(own.url), "url": display(own.url),
                             "category": own.category, "enabled": own.enabled, "state": "new",
                             "summary": "new: not polled yet", "last_error": None, "last_success": None,
                             "next_poll": None, "interval": "", "kept": 0})
        done = FEED_MESSAGES.get(request.query_params.get("done", ""))
        from ingest.run.backfill_report import site_states

        return page(request, "feeds.html", title="Feeds", nav="feeds", feeds=rows, report=report or [],
                    backfill=site_states(ctx.store), backfill_on=config.backfill.enabled,
                    error=error, polls=ctx.poll_now is not None, not_polling=NOT_POLLING,
                    **({"flash": done} if done else {}))

    async def add(request: Request) -> Response:
        """Discovery as `ingest feeds add` does it (the service's own fetcher rules), each feed reported."""
        from ingest.sources import subscriptions as subs
        from ingest.sources.discovery import DiscoveryError, discover, missing_scheme
        from ingest.sources.fetch import Fetcher

        fields = await form(request)
        url = fields.get("url", "").strip()
        if not url:
            return await feeds(request, error="Give the URL of a feed or of a page.")
        if (hint := missing_scheme(url)) is not None:
            return await feeds(request, error=hint)
        config = config_now()
        try:
            async with Fetcher(config.fetch) as fetcher:
                found = await discover(url, fetcher)
            report = await asyncio.to_thread(subs.add_found, config.path, found, config.feeds,
                                             fields.get("name", "").strip() or None, fields.get("category", "").strip())
        except (DiscoveryError, subs.FeedListError) as exc:
            return await feeds(request, error=str(exc))
        await follow(config_now())
        lines = report.lines() or ["Nothing found."]
        if report.added and ctx.poll_now is None:
            lines.append("The next `ingest poll` or `ingest run` polls it.")
        elif report.added:
            lines.append("The service polls it within seconds.")
        return await feeds(request, report=lines)

    async def change(request: Request) -> Response:
        """Pause, resume or remove one feed (written to config.toml), or poll it now."""
        from ingest.sources import subscriptions as subs

        await form(request)
        fid, action = request.path_params["id"], request.path_params["action"]
        f = by_id(fid)
        if f is None or action not in ("pause", "resume", "remove", "poll"):
            return PlainTextResponse("no such feed", status_code=404)
        config = config_now()
        try:
            if action in ("pause", "resume"):
                await asyncio.to_thread(subs.set_enabled, config.path, f.config_url, action == "resume")
                done = "paused" if action == "pause" else "resumed"
            elif action == "remove":
                await asyncio.to_thread(subs.remove_feed, config.path, f.config_url, config.feeds)
                done = "removed"
            else:  # poll
                if ctx.poll_now is None:
                    return await feed_page(request, error=NOT_POLLING)
                await ctx.poll_now([fid])
                return RedirectResponse(f"/feeds/{fid}?done=polling", status_code=303)
        except subs.FeedListError as exc:
            return await feeds(request, error=str(exc))
        await follow(config_now())
        return RedirectResponse(f"/feeds?done={done}", status_code=303)

    async def poll_all(request: Request) -> Response:
        await form(request)
        if ctx.poll_now is None:
            return await feeds(request, error=NOT_POLLING)
        await ctx.poll_now(None)
        return RedirectResponse("/feeds?done=polling-all", status_code=303)

    async def feed_page(request: Request, error: str | None = None) -> Response:
        fid = request.path_params["id"]
        f = by_id(fid)
        if f is None:
            return PlainTextResponse("no such feed", status_code=404)
        own = config_now().feed(f.config_url)
        info = feed_dict(f, own, ctx.clock(), aggregate("feed_counts", ctx.store.feed_counts).get(f.id, (0, 0)))
        entries = []
        for e in ctx.store.feed_entries(fid, ENTRIES):
            outcome = e["outcome"] or "not fetched yet"
            if outcome == "rejected" and e["score"] is not None:
                what = f"rejected: score {e['score']:.3f} < threshold {(e['threshold'] or 0):.3f}"
            elif outcome == "duplicate" and e["article_id"] is not None:
                what = "a copy of an article already kept"
            elif outcome in ("error", "empty", "blocked", "deferred"):
                what = f"{outcome}: {redact_text(e['reason'])}" if e["reason"] else outcome
            else:
                what = outcome
            entries.append({"title": e["title"] or display(e["link"]), "link": e["link"],
                            "seen": _date(e["first_seen"]), "outcome": e["outcome"] or "new", "what": what,
                            "article": e["article_id"], "page": e["page_id"]})
        history = [{"at": _date(h["at"]), "state": h["state"], "reason": redact_text(h["reason"]),
                    "interval": every(h["interval"]) if h["interval"] else ""} for h in ctx.store.feed_history(fid)]
        done = FEED_MESSAGES.get(request.query_params.get("done", ""))
        return page(request, "feed.html", title=info["name"] or info["config_url"], nav="feeds", feed=info,
                    fid=fid, entries=entries, history=history, error=error, polls=ctx.poll_now is not None,
                    **({"flash": done} if done else {}))

    async def feed_json(request: Request) -> Response:
        f = by_id(request.path_params["id"])
        if f is None:
            return PlainTextResponse("no such feed", status_code=404)
        info = feed_dict(f, config_now().feed(f.config_url), ctx.clock(),
                         aggregate("feed_counts", ctx.store.feed_counts).get(f.id, (0, 0)))
        return Response(json.dumps(info, ensure_ascii=False, indent=1), media_type="application/json")

    async def feed_opml(request: Request) -> Response:
        from ingest.sources.subscriptions import write_opml

        f = by_id(request.path_params["id"])
        own = config_now().feed(f.config_url) if f is not None else None
        if f is None or own is None:
            return PlainTextResponse("no such feed in config.toml", status_code=404)
        return Response(write_opml((own,)), media_type="text/x-opml")

    return [Route("/feeds", feeds), Route("/feeds/add", add, methods=["POST"]),
            Route("/feeds/poll", poll_all, methods=["POST"]),
            Route("/feeds/{id:int}", feed_page), Route("/feeds/{id:int}.json", feed_json),
            Route("/feeds/{id:int}.opml", feed_opml),
            Route("/feeds/{id:int}/{action:str}", change, methods=["POST"])]
