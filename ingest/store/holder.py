"""Who holds an SQLite store's writer lock, and where it serves the web view.

The lock itself (``.lock``, filelock) says only *that* a process holds the
store; the holder writes ``.holder.json`` next to it (atomically) so another
command can say *who*: "``ingest serve`` (pid 4123) serves the web view at
http://127.0.0.1:8751/". A record is believed only while the lock is held:
a holder that died left the lock free, and whoever takes it next writes its
own record.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import filelock

FILE = ".holder.json"


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str = ""  # "run", "serve", "poll" … ("" another command: rescore, digest …)
    web: str = ""  # the web view's URL when it serves one
    since: float = 0.0

    def describe(self) -> str:
        if not self.pid:  # the lock is held, but its holder has not written (or no longer has) a record
            return "another ingest process"
        who = f"`ingest {self.command}`" if self.command else "another ingest command"
        what = f"the service, pid {self.pid}" if self.command == "run" else f"pid {self.pid}"
        where = f", serving the web view at {self.web}" if self.web else \
            " (its web view is off)" if self.command == "run" else ""
        return f"{who} ({what}){where}"


def record(root: Path, holder: Holder) -> None:
    """Write the holder's record (best effort: a read-only folder only loses the description)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".holder-", dir=root)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(holder), fh)
        Path(tmp).replace(root / FILE)
    except OSError:
        pass


def announce(root: Path, command: str, web: str = "") -> None:
    """The current process holds the store for ``ingest COMMAND`` (serving ``web``, if any)."""
    record(root, Holder(os.getpid(), command, web, time.time()))


def read(root: Path) -> Holder | None:
    """The recorded holder, if its process is alive (a record left by a process that died, read
    while the next holder has not yet written its own, says nothing)."""
    try:
        data = json.loads((root / FILE).read_text(encoding="utf-8"))
        found = Holder(int(data["pid"]), str(data.get("command", "")), str(data.get("web", "")),
                       float(data.get("since", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(found.pid, 0)
    except ProcessLookupError:
        return None
    except OSError:  # alive, another user's
        pass
    return found


def current(root: Path) -> Holder | None:
    """The process holding the store's lock now (None: nobody does). A holder that has not yet
    written its record is described by its lock alone (pid 0)."""
    if not (root / ".lock").exists():
        return None
    lock = filelock.FileLock(root / ".lock", blocking=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        return read(root) or Holder(0)
    except OSError:
        return None
    lock.release()
    return None
