"""Times as every output shows them. A stored time out of range (a hostile server's
date, a corrupted row) is shown as unknown, never raised."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float | None) -> str | None:
    """ISO 8601 in UTC to the second, or None."""
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None
    except (OverflowError, OSError, ValueError):
        return None


def short(ts: float | None) -> str:
    """"YYYY-MM-DD HH:MM" in UTC, or ""."""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else ""
    except (OverflowError, OSError, ValueError):
        return ""
