"""The corpus format, in one place: the seeds' plain text, file names, atomic writes.

A corpus file is the title on the first line, a blank line, the text
(paragraphs separated by blank lines), UTF-8. Files are written to a hidden
temp name (TMP_PREFIX) and fsynced before the row that names them commits,
then renamed into place (see ingest.store.sqlite, ``recover``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.sources.urls import url_hash

TMP_PREFIX = ".tmp-"


def render(title: str, text: str) -> str:
    """The seeds' format: title line, blank line, text."""
    return f"{title}\n\n{text.strip()}\n"


def read(path: Path) -> tuple[str, str]:
    """(title, text) of a corpus file."""
    return parse(path.read_text(encoding="utf-8"))


def parse(raw: str) -> tuple[str, str]:
    """(title, text) of a corpus file's content."""
    title, _, text = raw.partition("\n\n")
    return title.strip(), text.strip()


def file_name(number: int, key: str) -> str:
    """``NNN_<16 hex>.txt``: the running number, and a hash of the article's key (its canonical URL)."""
    return f"{number:03d}_{url_hash(key)}.txt"


def write_temp(folder: Path, name: str, title: str, text: str) -> Path:
    """Write the file under its temp name and fsync it; the caller renames it into place."""
    tmp = folder / (TMP_PREFIX + name)
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(render(title, text))
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def finish_writes(folder: Path, committed_hash: Callable[[str], str | None]) -> tuple[int, int]:
    """Finish or undo the writes a crash interrupted in ``folder``: a temp file whose final name's
    committed text hash (``committed_hash(name)``, None when no row names it) is its own text's is
    the committed version and is renamed into place; any other temp file is removed. Only temp files
    are looked at (start-up stays fast with 100,000 articles). Returns (renamed, removed)."""
    from ingest.text.fingerprint import text_hash

    renamed = removed = 0
    for tmp in folder.glob(TMP_PREFIX + "*"):
        final = tmp.name[len(TMP_PREFIX):]
        want = committed_hash(final)
        if want is not None and text_hash(read(tmp)[1]) == want:
            tmp.replace(folder / final)
            renamed += 1
        else:
            tmp.unlink(missing_ok=True)
            removed += 1
    return renamed, removed


def remove_temp_files(folder: Path) -> int:
    """Temp files of a folder whose writes are all-or-nothing (digests): an interrupted one is dropped."""
    n = 0
    for tmp in folder.glob(TMP_PREFIX + "*"):
        tmp.unlink(missing_ok=True)
        n += 1
    return n


@dataclass
class SyncReport:
    written: int = 0  # new or changed files
    unchanged: int = 0
    removed: int = 0  # files of articles taken out of the corpus


def sync_folder(folder: Path, articles: Iterable[tuple[str, str, str, float]], withdrawn: Iterable[str]) -> SyncReport:
    """Make ``folder`` hold ``articles`` (file name, title, text, last changed) in the seeds' format.
    A file is rewritten (atomically: temp name, fsync, rename) only when missing, of another size,
    or older than its article's last change; the files of ``withdrawn`` articles are removed; any
    other file is left alone (the folder may hold the seeds, or notes). Idempotent."""
    folder.mkdir(parents=True, exist_ok=True)
    report = SyncReport()
    for name, title, text, changed in articles:
        data = render(title, text).encode("utf-8")
        path = folder / name
        try:
            st = path.stat()
            if st.st_size == len(data) and st.st_mtime >= changed:
                report.unchanged += 1
                continue
        except FileNotFoundError:
            pass
        tmp = folder / (TMP_PREFIX + name)
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        report.written += 1
    for name in withdrawn:
        try:
            (folder / name).unlink()
            report.removed += 1
        except FileNotFoundError:
            pass
    return report


# the names the rest of the code knew first
corpus_text = render
read_corpus_file = read
