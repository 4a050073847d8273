"""apprise URLs: whether apprise can use one, and its service object.

Below both the config (which refuses an unusable ``[notify] urls`` entry at
load time) and the delivery code (ingest.out.notify), so neither imports the other.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit


def instantiate(url: str) -> Any:
    """apprise's service object for ``url`` (None when apprise cannot use it); logs captured."""
    import apprise

    with apprise.LogCapture(level=logging.INFO):
        return apprise.Apprise.instantiate(url)


def url_reason(url: str) -> str | None:
    """Why apprise cannot use ``url`` (None when it can); the message does not repeat the URL."""
    if instantiate(url) is None:
        scheme = urlsplit(url).scheme or "(none)"
        return (f"an apprise URL (scheme {scheme}:// is unknown to apprise, or the URL lacks a part it needs; "
                f"see https://github.com/caronc/apprise/wiki)")
    return None
