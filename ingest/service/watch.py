"""What the service watches for a reload: the config file and the seed files, and which changed
config keys it can apply while running (the rest need a restart)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ingest.config import Config

RESTART_KEYS = ("paths.store", "web.listen", "store.url", "worker.processes")  # everything else is applied by SIGHUP


def changed_keys(old: Config, new: Config) -> list[str]:
    """The config keys whose values differ, as "section.key" (and "feeds")."""
    out = []
    for section in ("paths", "fetch", "relevance", "schedule", "digest", "web", "store", "worker"):
        a, b = getattr(old, section), getattr(new, section)
        out += [f"{section}.{f.name}" for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]
    if old.feeds != new.feeds:
        out.append("feeds")
    return out


def file_mark(path: Path) -> tuple:
    """What changes when a file is edited or replaced (an atomic rename gives a new inode)."""
    try:
        st = path.stat()
    except OSError:
        return ()
    return st.st_ino, st.st_size, st.st_mtime_ns


def seeds_mark(folder: Path) -> tuple:
    """What changes when a seed file is added, removed or edited (names, sizes, mtimes)."""
    try:
        return tuple(sorted((p.name, st.st_size, st.st_mtime_ns) for p in folder.iterdir()
                            if not p.name.startswith(".") and (st := p.stat())))
    except OSError:
        return ()
