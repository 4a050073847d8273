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


def every(seconds: float | None) -> str:
    """A polling interval as people say it: "every 30 min", "every 20.8 h", "every 3 days"."""
    if not seconds:
        return "on the default interval"
    if seconds < 5400:
        return f"every {seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"every {seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"every {seconds / 86400:.1f} days".replace(".0 days", " days")
