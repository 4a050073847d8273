"""A site's history as a web archive indexed it: backfill's third discovery source, opt-in because it
asks a third party (issue 36).

Two index formats, each asked for the site's URL prefix and date range, through the project's one
fetcher: the Wayback Machine's CDX API (``output=json``: a JSON array whose first row names the
fields; status 200 only, collapsed by URL key) and a Common Crawl index (``output=json``: one JSON
object per line). Only HTML captures of the site's own host count; rows past ``MAX_ROWS`` are left;
a malformed answer is reported, never raised. Each capture keeps its timestamp, so a page the site
no longer serves can be fetched from the archive's copy later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from ingest.sources.fetches import Fetches
from ingest.sources.urls import normalize, scheme_reason, site_host

WAYBACK = "https://web.archive.org/cdx/search/cdx"
COMMONCRAWL = "https://index.commoncrawl.org/CC-MAIN-2024-51-index"  # a recent crawl's index
MAX_ROWS = 100_000  # captures read per site and archive


@dataclass(frozen=True)
class Capture:
    url: str  # the page's own URL, as archived
    timestamp: str  # YYYYMMDDhhmmss: with the archive, where its copy is
    date: datetime | None


@dataclass
class ArchiveIndex:
    archive: str  # "wayback" or "commoncrawl"
    captures: list[Capture] = field(default_factory=list)
    read: list[tuple[str, str]] = field(default_factory=list)  # (index URL, "n captures" / why not)


def _date(ts: str) -> datetime | None:
    try:
        return datetime.strptime(ts[:14].ljust(14, "0"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _query(site: str, since: datetime | None, archive: str) -> dict[str, str]:
    host = urlsplit(site).netloc
    q = {"url": f"{host}/*", "output": "json"}
    if archive == "wayback":
        q |= {"filter": "statuscode:200", "collapse": "urlkey", "fl": "original,timestamp,statuscode,mimetype"}
        if since is not None:
            q["from"] = since.strftime("%Y%m%d")
    elif since is not None:
        q["from"] = since.strftime("%Y%m%d")
    return q


def _rows(body: bytes, archive: str) -> list[dict[str, str]]:
    """The index's rows as dicts (raises ValueError on a malformed answer)."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return []
    if archive == "wayback":
        data = json.loads(text)
        if not isinstance(data, list) or (data and not isinstance(data[0], list)):
            raise ValueError("not a CDX JSON array")
        if not data:
            return []
        names = [str(n) for n in data[0]]
        return [dict(zip(names, map(str, row), strict=False)) for row in data[1:MAX_ROWS + 1] if isinstance(row, list)]
    rows = []
    for line in text.splitlines()[:MAX_ROWS]:
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("not one JSON object per line")
        rows.append({k: str(v) for k, v in obj.items()})
    return rows


async def captures(site: str, fetcher: Fetches, archive: str = "wayback", endpoint: str | None = None,
                   since: datetime | None = None) -> ArchiveIndex:
    """The HTML pages of ``site`` that ``archive`` captured with status 200 (since ``since``), each once."""
    base = endpoint or (WAYBACK if archive == "wayback" else COMMONCRAWL)
    url = f"{base}?{urlencode(_query(site, since, archive))}"
    out = ArchiveIndex(archive)
    res = await fetcher.fetch(url, accept="application/json, text/plain;q=0.9")
    if res.error:
        out.read.append((url, res.error))
        return out
    try:
        rows = _rows(res.body, archive)
    except (ValueError, json.JSONDecodeError) as exc:
        out.read.append((url, f"not a CDX index answer ({str(exc)[:80]})"))
        return out
    host = site_host(site)
    seen: set[str] = set()
    for row in rows:
        original = row.get("original") or row.get("url") or ""
        status = row.get("statuscode") or row.get("status") or ""
        mime = (row.get("mimetype") or row.get("mime") or "").lower()
        if status != "200" or "html" not in mime or scheme_reason(original):
            continue
        if site_host(original) != host:
            continue
        key = normalize(original)
        if key in seen:
            continue
        seen.add(key)
        ts = row.get("timestamp", "")
        out.captures.append(Capture(original, ts, _date(ts)))
    out.read.append((url, f"{len(out.captures)} captures"))
    return out
