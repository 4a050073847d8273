"""The archived copy of an article's page in the web view (``/a/ID/original``), as it was fetched.

An archived page is foreign HTML: it is served under a Content-Security-Policy that sandboxes it
(``sandbox`` without ``allow-scripts`` or ``allow-same-origin``: no script runs, no form submits, and
the page has an opaque origin, so it can read no cookie of the view), lets nothing load from anywhere
(``default-src 'none'``; images only from ``data:``, the page's own inline styles), and with
``nosniff`` and the record's own content type."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ingest.out.web_context import WebContext
from ingest.store.archive import read_record
from ingest.store.archive_index import ARCHIVE

ARCHIVED_CSP = ("sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; "
                "frame-ancestors 'self'; base-uri 'none'")


def archive_routes(ctx: WebContext) -> list[Route]:
    async def original(request: Request) -> Response:
        aid = request.path_params["id"]
        row = ctx.store.article_page(aid)
        ref = ctx.store.page_record(row["id"]) if row is not None else None
        if ref is None:
            return PlainTextResponse("no archived copy of this article", status_code=404)
        try:
            headers, body = read_record(ctx.store.root / ARCHIVE, ref)
        except (OSError, ValueError):
            return PlainTextResponse("the archived copy cannot be read (see `ingest check`)", status_code=500)
        ctype = headers.get_header("Content-Type") or "text/html; charset=utf-8"
        return Response(body, media_type=None, headers={
            "Content-Type": ctype, "Content-Security-Policy": ARCHIVED_CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "SAMEORIGIN", "Cache-Control": "no-store",
            "X-Archive-Source": f"{ref.file} {ref.offset}"})

    return [Route("/a/{id:int}/original", original)]
