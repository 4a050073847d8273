"""When to poll each feed next: the whole policy in one pure function.

``plan`` takes a feed's stored state and the outcome of one poll and returns
the fields to store (next poll time, interval, error count, state). It does no
I/O, so every rule is testable with a made-up clock:

=====================  ========================================================
outcome                what happens
=====================  ========================================================
200, new entries       interval from how often the feed publishes (mean gap of
                       the entries dated within the last 7 days, like
                       Miniflux), never below what the feed asks (ttl, sy:update*,
                       Cache-Control max-age, Expires), within
                       [min_interval, max_interval]
200 unchanged / 304    interval kept; next poll one interval on
301 / 308              the feed's stored URL becomes the new one (logged, shown
                       in status); 302 / 307 change nothing
error (network, 5xx,   exponential backoff with jitter: min_interval * 2^(n-1),
4xx, not a feed)       at most max_interval; state "error"
429 / 503 + Retry-     as an error, and never before Retry-After expires
After
max_errors failures    state "failing"; still retried, once a day
spanning >= 3 days
410 Gone               state "disabled"; not polled again until the config
                       changes its URL
=====================  ========================================================
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ingest.config import ScheduleSettings
from ingest.timefmt import every
from ingest.timefmt import iso as _iso

if TYPE_CHECKING:
    from ingest.config import Config
    from ingest.store import SqlStore
    from ingest.store.rows import FeedRow

WEEK = 7 * 86400.0
DAY = 86400.0
FAILING_SPAN = 3 * DAY
MAX_SERVER_DELAY = 30 * DAY  # no delay a server asks for (Retry-After, ttl, max-age) is believed beyond this
JITTER = 0.2  # +-20 % on backoff delays, so failing feeds do not retry in lockstep


@dataclass(frozen=True)
class FeedOutcome:
    """What one poll of a feed found (built by the pipeline)."""

    ok: bool
    status: int = 0
    error: str | None = None
    changed: bool = False  # a new body was parsed
    entry_dates: Sequence[datetime] = field(default_factory=tuple)  # of all entries in the feed
    hint_seconds: float | None = None  # the longest interval the feed/server asks for
    retry_after: float | None = None  # absolute time before which the host must not be asked
    moved_to: str | None = None  # permanent redirect target


@dataclass(frozen=True)
class FeedState:
    """The stored scheduling state the policy needs."""

    interval: float | None
    consecutive_errors: int
    first_error_at: float | None  # when the current run of errors began


def _max_age(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    m = re.search(r"max-age\s*=\s*(\d+)", cache_control)
    return float(m.group(1)) if m else None


def hint_from(headers: dict[str, str], ttl_minutes: int | None, update_seconds: float | None,
              now: float) -> float | None:
    """The longest polling interval the feed or its server asks for, if any."""
    import email.utils

    hints = []
    if ttl_minutes and ttl_minutes > 0:
        hints.append(ttl_minutes * 60.0)
    if update_seconds:
        hints.append(update_seconds)
    age = _max_age(headers.get("cache-control"))
    if age:
        hints.append(age)
    elif headers.get("expires"):
        try:
            exp = email.utils.parsedate_to_datetime(headers["expires"])
            if exp is not None and exp.timestamp() > now:
                hints.append(exp.timestamp() - now)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return min(max(hints), MAX_SERVER_DELAY) if hints else None


def publishing_interval(dates: Sequence[datetime], now: float) -> float | None:
    """Mean gap between the entries dated within the last 7 days: the time they
    span up to now over their number (a feed listing only its last 20 entries
    of a busy day is measured over that day, not the week). None: no dates."""
    recent = [d.timestamp() for d in dates if now - WEEK <= d.timestamp() <= now + 3600]
    if not recent:
        return None if not dates else WEEK
    span = max(3600.0, now - min(recent))
    return span / len(recent)


def clamp(value: float, settings: ScheduleSettings) -> float:
    return min(settings.max_interval, max(settings.min_interval, value))


def backoff(errors: int, settings: ScheduleSettings, rng: random.Random) -> float:
    base = min(settings.max_interval, settings.min_interval * 2 ** max(0, errors - 1))
    return base * (1 + rng.uniform(-JITTER, JITTER))


def plan(state: FeedState, outcome: FeedOutcome, settings: ScheduleSettings, now: float,
         rng: random.Random) -> dict:
    """The feed fields to store after a poll."""
    if outcome.ok:
        interval = state.interval or settings.poll_interval
        if outcome.changed:
            observed = publishing_interval(outcome.entry_dates, now)
            if observed is not None:
                interval = observed
        if outcome.hint_seconds:
            interval = max(interval, outcome.hint_seconds)
        interval = clamp(interval, settings)
        fields = {"interval": interval, "next_poll": now + interval, "consecutive_errors": 0,
                  "state": "ok", "state_reason": "", "last_success": now, "retry_after": None}
        if outcome.moved_to:
            fields["url"] = outcome.moved_to
        return fields

    errors = state.consecutive_errors + 1
    first_error = state.first_error_at or now
    if outcome.status == 410:
        return {"consecutive_errors": errors, "state": "disabled", "next_poll": None,
                "state_reason": "410 Gone: the server says the feed was removed for good"}
    delay = backoff(errors, settings, rng)
    state_name, reason = "error", outcome.error or "error"
    if errors >= settings.max_errors and now - first_error >= FAILING_SPAN:
        state_name = "failing"
        reason = f"{errors} consecutive failures since {datetime.fromtimestamp(first_error):%Y-%m-%d}; " \
                 f"retried daily. Last: {outcome.error}"
        delay = DAY
    next_poll = now + delay
    # a server-given delay is the server's request, not a schedule setting: believed up to a bound of its
    # own against absurd values (30 days), whatever max_interval says about how often the user wants polls
    retry_after = min(outcome.retry_after, now + MAX_SERVER_DELAY) if outcome.retry_after else None
    if retry_after and retry_after > next_poll:
        next_poll = retry_after
    return {"consecutive_errors": errors, "state": state_name, "state_reason": reason, "next_poll": next_poll,
            "retry_after": retry_after}


def with_floor(settings: ScheduleSettings, floor: float | None) -> ScheduleSettings:
    """The schedule of a feed whose [[feeds]] poll_interval says "never more often than this"."""
    import dataclasses

    if not floor or floor <= settings.min_interval:
        return settings
    return dataclasses.replace(settings, min_interval=floor, poll_interval=max(settings.poll_interval, floor),
                               max_interval=max(settings.max_interval, floor))


def first_poll(url: str, n_feeds: int, settings: ScheduleSettings, now: float) -> float:
    """Start time for a feed never polled: spread over a window so N feeds do not fire
    together; stable per URL, so a restart keeps the same spread."""
    import zlib

    window = min(settings.poll_interval, max(5.0, n_feeds * 0.5))
    return now + (zlib.crc32(url.encode()) % 10_000) / 10_000 * window


def explain_state(f: FeedRow, now: float) -> str:
    """One line that explains a feed's state (status, the web view)."""
    from ingest.sources.urls import display

    if f.state == "disabled":
        return f"disabled: {f.state_reason}"
    if not f.enabled:
        return "paused: enabled = false in config.toml (its state is kept)"
    parts = []
    if f.state == "failing":
        parts.append(f"failing: {f.state_reason}")
    elif f.state == "error":
        until = max(f.next_poll or 0, f.retry_after or 0)
        parts.append(f"backing off until {_iso(until)} after {f.consecutive_errors} error(s): {f.last_error}")
    elif f.state == "new":
        parts.append("new: not polled yet")
    else:
        parts.append(f"ok: polled {every(f.interval)}")
    if f.retry_after and f.retry_after > now:
        parts.append(f"server asked to wait until {_iso(f.retry_after)} (Retry-After)")
    if f.url != f.config_url:
        parts.append(f"moved permanently to {display(f.url)}")
    return "; ".join(parts)


def last_fire(cron: str, now: float) -> float:
    """The latest time at or before ``now`` the cron expression fires: the digest's slot, the same for
    every worker."""
    from datetime import UTC, timedelta

    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron)
    at = datetime.fromtimestamp(now, UTC)
    for back in (60, 3600, 86400, 8 * 86400, 32 * 86400, 367 * 86400):
        first = trigger.get_next_fire_time(None, at - timedelta(seconds=back))
        if first is not None and first <= at:
            while (after := trigger.get_next_fire_time(first, first + timedelta(seconds=1))) is not None \
                    and after <= at:
                first = after
            return first.timestamp()
    return now


@dataclass(frozen=True)
class StoreSync:
    """What ``sync_store`` changed in the feeds table."""

    added: int
    removed: int  # no longer in the config: inactive, history kept
    paused: int  # enabled = false
    active: int  # feeds in the config


def sync_store(store: SqlStore, config: Config, now: float) -> StoreSync:
    """Make the store's feeds table match the config: new feeds get a first poll time spread over a
    window (so N new feeds do not fire together), removed ones go inactive with their history,
    unchanged ones keep their state. The service does this itself on SQLite; on PostgreSQL it is
    ``ingest feeds sync``'s alone, so workers never fight over the list."""
    before = {f.config_url: f for f in store.feeds(active_only=False)}
    store.sync_feeds((f.url, f.name, f.enabled) for f in config.feeds)
    feeds = store.feeds()
    for f in feeds:
        if f.next_poll is None and f.state != "disabled":
            store.update_feed(f.id, next_poll=first_poll(f.config_url, len(feeds), config.schedule, now))
    wanted = {f.url for f in config.feeds}
    return StoreSync(added=len(wanted - {u for u, f in before.items() if f.active}),
                     removed=sum(1 for u, f in before.items() if f.active and u not in wanted),
                     paused=sum(1 for f in config.feeds if not f.enabled), active=len(wanted))
