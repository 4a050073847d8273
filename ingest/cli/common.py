"""What the command groups share: verdicts applied now or later, periods, output files."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.config import Config, ConfigError
from ingest.store import SqlStore, StoreBusy, open_store

if TYPE_CHECKING:
    from ingest.run.feedback import Applied

log = logging.getLogger("ingest")


def parse_since(value: str, now: float) -> float:
    """'24h', '7d', '90m' (ago) or an ISO date/time (UTC when no zone is given)."""
    from ingest.config import _DURATION, parse_duration

    try:
        return now - parse_duration(value)
    except ValueError as exc:
        if _DURATION.match(value):
            raise ConfigError(f"--since {value!r}: expected {exc}") from None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since {value!r}: expected a duration such as 24h or 7d, or an ISO date "
                          f"such as 2026-11-20") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def apply_now(config: Config) -> Applied | None:
    """Apply pending verdicts when no other process holds the store: what was done (None: not now)."""
    from ingest.run.feedback import apply_verdicts

    try:
        store = open_store(config)
    except StoreBusy:
        return None
    with store:
        return apply_verdicts(store, time.time())


def apply_recorded(store: SqlStore) -> None:
    """Verdicts recorded (``ingest mark``) while another process held the store reach the corpus folder."""
    from ingest.run.feedback import apply_verdicts

    done = apply_verdicts(store, time.time())
    for what, paths in (("added", done.added), ("restored", done.restored), ("withdrawn", done.withdrawn)):
        for path in paths:
            log.info("event=verdict_applied change=%s path=%s", what, path)


def verdicts_apply_later(config: Config) -> str:
    """Who applies a verdict recorded while another process holds the store, and when."""
    from ingest.store import holder

    running = holder.current(config.paths.store)
    if running is not None and running.command == "run":
        return f"the running service (pid {running.pid}) moves the files within a few seconds"
    who = running.describe() if running is not None else "another ingest process"
    return (f"recorded; {who} holds the store, so the corpus folder follows when it is free (the next "
            f"`ingest mark`, `ingest run` or `ingest poll` applies every recorded verdict)")


def print_applied(done: Applied, by: str = "user") -> None:
    """What a verdict (``by`` the user) or a re-decision (the model) did to the corpus folder."""
    for p in done.added:
        print(f"added to the corpus: {p}")
    for p in done.restored:
        print(f"back in the corpus: {p}")
    for p in done.withdrawn:
        where = "withdrawn/" if by == "user" else "dropped/: a later model may bring it back"
        print(f"taken out of the corpus (kept in {where}): {p}")
    for u in done.duplicates:
        print(f"already in the corpus as another copy of the story: {u}")
    for u in done.missing:
        print(f"text no longer kept ([relevance] keep_rejected), not added: {u}")


class OutputError(Exception):
    """An output file named on the command line cannot be written."""


def write_output(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"--output {path}: cannot write: {exc.strerror or exc}") from None

