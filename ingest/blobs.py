"""Blobs as stored: JSON, zlib-compressed (term counts, kept page texts, pending deferrals)."""

from __future__ import annotations

import json
import zlib


def pack(value: object) -> bytes:
    return zlib.compress(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 6)


def unpack(blob: bytes) -> dict:
    return json.loads(zlib.decompress(blob).decode("utf-8"))
