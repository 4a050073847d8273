"""The corpus format, in one place: the seeds' plain text, file names, atomic writes.

A corpus file is the title on the first line, a blank line, the text
(paragraphs separated by blank lines), UTF-8. Files are written to a hidden
temp name (TMP_PREFIX) and fsynced before the row that names them commits,
then renamed into place (see ingest.store.sqlite, ``recover``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .urls import url_hash

TMP_PREFIX = ".tmp-"


def render(title: str, text: str) -> str:
    """The seeds' format: title line, blank line, text."""
    return f"{title}\n\n{text.strip()}\n"


def read(path: Path) -> tuple[str, str]:
    raw = path.read_text(encoding="utf-8")
    title, _, text = raw.partition("\n\n")
    return title.strip(), text.strip()


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
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(render(title, text))
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


# the names the rest of the code knew first
corpus_text = render
read_corpus_file = read
