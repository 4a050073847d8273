"""A request and its response as exchanged: what the fetcher records of each hop when asked (the
WARC archive writes them, ingest.store.archive)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Exchange:
    """One request and its response as sent and received: what a WARC archive records of a hop
    (ingest.store.archive). The body is as httpx decoded it (Content-Encoding undone), empty for a
    redirect, an error status or a body refused by the size caps."""

    url: str
    method: str
    request_headers: tuple[tuple[str, str], ...]
    http_version: str
    status: int
    reason: str
    response_headers: tuple[tuple[str, str], ...]
    body: bytes = b""


def exchange(resp: httpx.Response) -> Exchange:
    req = resp.request
    return Exchange(str(req.url), req.method, tuple((k.decode("latin-1"), v.decode("latin-1"))
                                                    for k, v in req.headers.raw),
                    resp.http_version, resp.status_code, resp.reason_phrase,
                    tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers.raw))

