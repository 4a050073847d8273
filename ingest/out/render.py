"""HTML rendering shared by the web view and the HTML digest: one Jinja2 environment
(autoescaping on) and the filters every page uses to show dates and URLs safely."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ingest.sources.urls import display, display_host, site_label
from ingest.timefmt import short as format_date


def _safe_url(url: str | None) -> str | None:
    if not url or urlsplit(url).scheme not in ("http", "https"):
        return None
    return display(url)


def _highlight(snippet: str) -> Markup:
    """FTS5 snippet markers (\\x02 … \\x03) as <mark>, everything else escaped."""
    return Markup(html.escape(snippet).replace("\x02", "<mark>").replace("\x03", "</mark>"))


def environment() -> Environment:
    """The Jinja2 environment of every HTML page (web view, digest): autoescape on."""
    env = Environment(loader=PackageLoader("ingest.out", "templates"), autoescape=select_autoescape(default=True))
    env.filters.update(date=format_date, safe_url=_safe_url, display=display, host=display_host, site=site_label,
                       highlight=_highlight)
    return env
