"""The web view: read, search and steer the corpus in a browser (Starlette + Jinja2).

Server-rendered pages, no JavaScript, no external assets. It runs inside
``ingest run`` on the service's event loop (so verdicts go through the one
store writer) or standalone with ``ingest serve``. Handlers are ``async``
and touch the store only from the event loop's thread (SQLite connections
are not shared across threads).

Security: loopback by default; any other address needs ``[web] password``
(HTTP Basic, meant to sit behind the operator's TLS proxy). Every POST carries
a CSRF token (double submit: a SameSite=Strict cookie and a form field);
every response carries a strict Content-Security-Policy (no script at all),
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
``X-Frame-Options: DENY``. Every value from a feed or page is escaped
(Jinja2 autoescape); only http(s) links are rendered, through
:func:`ingest.sources.urls.display`.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ingest.out.render import environment as _environment
from ingest.out.web_archive import archive_routes
from ingest.out.web_context import WebContext
from ingest.out.web_feeds import feed_routes
from ingest.out.web_teaching import teaching_routes
from ingest.run.feedback import Preview, model_report, snippet
from ingest.store import SearchError
from ingest.timefmt import short as _date

if TYPE_CHECKING:
    import socket

    import uvicorn
    from starlette.types import Message, Receive, Scope, Send

PAGE_SIZE = 50
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
DIGEST_CSP = ("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
              "form-action 'none'")
CSRF_COOKIE = "ingest_csrf"
MESSAGES = {  # the confirmations a redirect may name (?done=KEY)
    "withdrawn": "Taken out of the corpus (kept in withdrawn/).",
    "added": "Added to the corpus.",
    "recorded": "Recorded: the corpus had it this way already.",
    "seeded": "Written to the seeds folder; the model uses it from the next decision.",
    "applied": "Applied: the recent pages were decided again with the model learned from your verdicts.",
}
# what follows a verdict's confirmation: who re-decides the other pages, and when
FOLLOWS = {
    "service": " The service re-decides the other recent pages with it within seconds.",
    "button": " Press Apply (Review page) to re-decide the other recent pages with it.",
}
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           b'fill="#1f2937"/><circle cx="8" cy="9" r="3.5" fill="#84cc16"/><path d="M8 5.5V2" stroke="#84cc16" '
           b'stroke-width="1.5"/></svg>')


def _parse_day(value: str | None, end: bool = False) -> float | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day.timestamp() + (86400 - 1e-6 if end else 0)


def make_app(ctx: WebContext) -> Starlette:
    env = _environment()

    def page(request: Request, template: str, **values: Any) -> HTMLResponse:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        # a confirmation is named by a key, never taken from the URL: a crafted link shows nothing of its own
        done = request.query_params.get("done", "")
        flash = MESSAGES.get(done)
        q = request.query_params
        if flash and done == "applied" and q.get("joined", "").isdigit() and q.get("left", "").isdigit():
            flash += f" {q['joined']} page(s) joined the corpus, {q['left']} left it (to dropped/)."
        elif flash and q.get("join", "").isdigit() and q.get("leave", "").isdigit():
            pv = Preview(int(q["join"]), int(q["leave"]))  # numbers only: nothing of the URL's own is shown
            if ctx.on_verdict is not None:
                flash += FOLLOWS["service"] + (f" ({pv.join} to join, {pv.leave} to leave)" if pv else "")
            elif pv:
                flash += (f" With it the model would now decide {pv.join + pv.leave} other page(s) differently "
                          f"({pv.join} would join, {pv.leave} would leave): press Apply to do it.")
        values.setdefault("flash", flash)
        body = env.get_template(template).render(csrf=token, **values)
        response = HTMLResponse(body)
        if request.cookies.get(CSRF_COOKIE) != token:
            response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body())[:10_000].decode("utf-8", "replace")
        fields = {k: v[0] for k, v in parse_qs(body).items()}
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie, fields.get("csrf", "")):
            raise _Forbidden("missing or wrong CSRF token: reload the page and try again")
        return fields

    aggregates: dict[tuple, dict] = {}

    def aggregate(name: str, compute: Callable[[], Any]) -> Any:
        """Whole-table aggregates (corpus size, site list, per-feed counts) computed once per store
        state, not per request: on 100,000 articles each is a scan."""
        key = ctx.store.state_key()
        if key not in aggregates:
            aggregates.clear()
            aggregates[key] = {}
        cache = aggregates[key]
        if name not in cache:
            cache[name] = compute()
        return cache[name]

    async def corpus(request: Request) -> Response:
        q = request.query_params
        feed = int(q["feed"]) if q.get("feed", "").isdigit() else None
        min_score = None
        with contextlib.suppress(ValueError):
            min_score = float(q["min_score"]) if q.get("min_score") else None
        since, until = _parse_day(q.get("since")), _parse_day(q.get("until"), end=True)
        mark = re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.(\d+)", q.get("before", ""))
        before = (mark.group(1), int(mark.group(2))) if mark else None
        rows = ctx.store.list_articles(before=before, limit=PAGE_SIZE + 1, feed_id=feed, site=q.get("site") or None,
                                       since=since, until=until, min_score=min_score)
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        params = {k: v for k, v in q.items() if k != "before" and v}
        last = rows[-1] if more and rows else None
        next_url = "/?" + urlencode({**params, "before": f"{last['day']}.{last['id']}"}) if last is not None else ""
        filters = {"feed": feed, "site": q.get("site"), "since_text": q.get("since", ""),
                   "until_text": q.get("until", ""), "min_score": min_score}
        # scores under the model learned now, as on every page (learned once per store state, in a thread);
        # an article that has left the model's window shows the score it was kept at
        now = await now_view()
        cards = {}
        for a in rows:  # a two-line opening and the terms that match under the model of now (else when kept)
            body = ctx.store.article_body(a)
            terms = (now.article_terms(a["id"]) if now is not None else None) or json.loads(a["terms"])
            cards[a["id"]] = (snippet(body[1]) if body is not None else "", list(terms)[:6])
        return page(request, "corpus.html", title="Corpus", nav="corpus", articles=rows, more=more, cards=cards,
                    current={a["id"]: found for a in rows if now is not None and (found := now.article(a["id"]))},
                    next_url=next_url, feeds=ctx.store.feeds(), sites=aggregate("sites", ctx.store.sites),
                    filters=filters, total=aggregate("total", lambda: ctx.store.metrics_snapshot()["articles"]),
                    model=aggregate("model", lambda: model_report(ctx.store)))

    async def article(request: Request, error: str | None = None) -> Response:
        aid = request.path_params["id"]
        art = ctx.store.article(aid)
        if art is None:
            return PlainTextResponse("no such article", status_code=404)
        body = ctx.store.article_body(art)
        text = body[1] if body is not None else "(the corpus file is missing: see `ingest check`)"
        row = ctx.store.article_page(aid)
        judged = ctx.store.verdicts().get(row["id"]) if row is not None else None
        now = await now_view()
        found = now.article(aid) if now is not None else None
        return page(request, "article.html", title=art["title"], nav="corpus", art=art, judged=judged,
                    current=found[0] if found else None, current_threshold=found[1] if found else None,
                    withdrawn=art["withdrawn"] is not None, terms=json.loads(art["terms"])[:12],
                    paragraphs=[p for p in text.split("\n\n") if p.strip()],
                    sources=ctx.store.article_sources(aid), copies=ctx.store.article_copies(aid), error=error,
                    backfill=ctx.store.backfill_origins([aid]).get(aid),
                    original=ctx.store.page_record(row["id"]) if row is not None else None)

    now_view, routes_teaching = teaching_routes(ctx, page, form, aggregate, article)

    async def search(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        rejected = request.query_params.get("rejected") == "1"
        offset = int(request.query_params.get("offset", "0")) if request.query_params.get("offset", "").isdigit() \
            else 0
        hits, error = [], None
        p = request.query_params
        try:
            min_score = float(p["min_score"]) if p.get("min_score") else None
        except ValueError:
            min_score = None
        filters: dict[str, Any] = {
            "feed_id": int(p["feed"]) if p.get("feed", "").isdigit() else None, "site": p.get("site") or None,
                   "since": _parse_day(p.get("since")), "until": _parse_day(p.get("until"), end=True),
                   "min_score": min_score}
        if q:
            try:
                hits = ctx.store.search(q, limit=PAGE_SIZE + 1, offset=offset, rejected=rejected, **filters)
            except SearchError as exc:
                error = str(exc)
        more = len(hits) > PAGE_SIZE
        params = {**{k: v for k, v in p.items() if v and k != "offset"}, "offset": offset + PAGE_SIZE}
        return page(request, "search.html", title=f"Search: {q}" if q else "Search", nav="search", q=q,
                    rejected=rejected, hits=hits[:PAGE_SIZE], error=error, more=more,
                    next_url="/search?" + urlencode(params))

    def _digest_files() -> dict[str, Path]:
        folder = ctx.store.root / "digests"
        return {p.name: p for p in folder.glob("*.html")} if folder.is_dir() else {}

    async def digests(request: Request) -> Response:
        files = _digest_files()
        rows = []
        for d in ctx.store.digest_rows():
            name = Path(d["path"]).with_suffix(".html").name if d["path"] else None
            rows.append({"name": name if name in files else None, "stories": d["items"],
                         "period": f"{_date(d['since'])} – {_date(d['until'])}"})
        return page(request, "digests.html", title="Digests", nav="digests", digests=rows)

    async def digest_file(request: Request) -> Response:
        path = _digest_files().get(request.path_params["name"])
        if path is None:
            return PlainTextResponse("no such digest", status_code=404)
        # the digest's own self-contained HTML (escaped when it was written), its inline style allowed,
        # with a way back to the view (the file itself stays as it was written)
        body = path.read_text(encoding="utf-8")
        back = '<p style="font:14px sans-serif;margin:.5rem 1rem"><a href="/digests">← All digests</a></p>'
        at = body.find(">", body.find("<body")) + 1 if "<body" in body else 0
        return HTMLResponse(body[:at] + back + body[at:], headers={"Content-Security-Policy": DIGEST_CSP})

    async def favicon(request: Request) -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    async def healthz(request: Request) -> Response:
        h = ctx.store.health(ctx.clock(), ctx.config().schedule.poll_interval)
        body = {"ok": h.ok, "last_success_age": h.last_success_age, "feeds": h.feeds,
                "store_writable": h.store_writable, "problems": list(h.problems)}
        return JSONResponse(body, status_code=200 if h.ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    routes = [
        Route("/", corpus), Route("/a/{id:int}", article), *archive_routes(ctx), *routes_teaching,
        Route("/favicon.ico", favicon), Route("/search", search),
        *feed_routes(ctx, page, form, aggregate), Route("/digests", digests), Route("/digests/{name}", digest_file),
        Route("/healthz", healthz), Route("/metrics", metrics),
        Mount("/static", StaticFiles(packages=[("ingest.out", "static")]), name="static"),
    ]
    middleware = [Middleware(_Guard, ctx=ctx)]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={_Forbidden: _forbidden})
    ctx.metrics.watch_store(ctx.store.metrics_snapshot)
    return app


class _Forbidden(Exception):
    pass


async def _forbidden(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"403 Forbidden: {exc}", status_code=403)


def host_allowed(header: str, listen_host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a request's Host header names this view: an IP address (a browser's origin is then
    that address: nothing to rebind), ``localhost``, the listen address, or an ``allowed_hosts``
    name (``*.example.org`` covers its subdomains). Any other name is what a DNS-rebinding page sends."""
    import ipaddress

    header = header.strip()
    if header.startswith("[") and "]" in header:
        name = header[1:header.index("]")]
    else:
        name = header.rpartition(":")[0] if header.count(":") == 1 else header
    name = name.lower().rstrip(".")
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    if name in ("localhost", listen_host.lower().strip("[]").rstrip(".")):
        return True
    return any(name == a or (a.startswith("*.") and name.endswith(a[1:])) for a in allowed)


_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
            "Cache-Control": "no-store"}
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in _HEADERS.items()]


class _Guard:
    """Pure ASGI, before any handler: the Host header must name this view (400 otherwise), HTTP Basic
    when a password is set, and the security headers on every response."""

    def __init__(self, app: Any, ctx: WebContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        web = self.ctx.config().web
        response: Response
        if not host_allowed(headers.get("host", ""), self.ctx.listen_host or web.host, web.allowed_hosts):
            response = PlainTextResponse("400 Bad Request: the web view does not answer to this Host; if the name "
                                         "is yours, list it in [web] allowed_hosts", status_code=400)
        elif web.password and not _authorized(headers.get("authorization", ""), web.password):
            response = PlainTextResponse("401 Unauthorized", status_code=401,
                                         headers={"WWW-Authenticate": 'Basic realm="seed-ingest", charset="UTF-8"'})
        else:
            async def secured(message: Message) -> None:
                if message["type"] == "http.response.start":
                    names = {k.lower() for k, _ in message.get("headers", [])}
                    extra = [h for h in _RAW_HEADERS if h[0] not in names]
                    if b"content-security-policy" not in names:
                        extra.append((b"content-security-policy", CSP.encode()))
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                await send(message)

            await self.app(scope, receive, secured)
            return
        for k, v in _HEADERS.items():
            response.headers.setdefault(k, v)
        response.headers.setdefault("Content-Security-Policy", CSP)
        await response(scope, receive, send)


def _authorized(header: str, password: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        _, _, given = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(given.encode(), password.encode())


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a port in use is a clear error (uvicorn would exit the process)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and an
    # accepted socket inherits it; without it every response after the first on a keep-alive
    # connection waits ~40 ms for the client's delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


def make_server(app: Starlette, *, install_signals: bool = False) -> uvicorn.Server:
    """A uvicorn server for ``app``, run with ``await server.serve(sockets=[bind(...)])`` on the current
    loop and stopped with ``server.should_exit = True``. Inside the service the service owns the signals."""
    import contextlib

    import uvicorn

    class _Server(uvicorn.Server):
        def capture_signals(self) -> Any:  # uvicorn's own context manager, or a null one
            return super().capture_signals() if install_signals else contextlib.nullcontext()

    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, server_header=False,
                            proxy_headers=False)
    return _Server(config)
