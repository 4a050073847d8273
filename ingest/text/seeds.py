"""The seed texts: the examples that define the topic.

Plain-text files in the seeds folder (the first line is often, not always, a
title). A seed that is not UTF-8 text, is binary or is huge is refused with a
message naming the file, rather than scored silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAX_SEED_BYTES = 2_000_000
MIN_SEED_WORDS = 20


class SeedError(Exception):
    """The seeds folder cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class Seed:
    path: Path
    text: str


def load_seeds(folder: Path) -> list[Seed]:
    if not folder.is_dir():
        raise SeedError(f"{folder}: seeds folder not found; create it and put a few example articles "
                        f"(plain .txt files) in it, or set [paths] seeds in the config")
    seeds = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in (".txt", ".text", ""):
            continue
        size = path.stat().st_size
        if size > MAX_SEED_BYTES:
            raise SeedError(f"{path}: seed file is {size:,} bytes, over the {MAX_SEED_BYTES:,}-byte limit; "
                            f"a seed should be one article")
        raw = path.read_bytes()
        if b"\x00" in raw:
            raise SeedError(f"{path}: seed file is binary, not text; seeds must be plain-text articles")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SeedError(f"{path}: seed file is not UTF-8 (byte {exc.start}); re-save it as UTF-8") from None
        if len(text.split()) < MIN_SEED_WORDS:
            raise SeedError(f"{path}: seed file has fewer than {MIN_SEED_WORDS} words; "
                            f"a seed should be a whole example article")
        seeds.append(Seed(path, text))
    if not seeds:
        raise SeedError(f"{folder}: no seed files (*.txt); put a few example articles in it")
    return seeds
