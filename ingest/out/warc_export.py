"""The corpus as it was read: the kept articles' WARC records (``ingest export --format warc``), or a
WACZ package of them (``--format wacz``: the WARC, a CDXJ index, the pages list and the
datapackage.json with each file's SHA-256, per the WACZ 1.1.1 spec), which ReplayWeb.page opens.

Records are copied as stored (the response and its request record, gzip members byte for byte), so
their digests still hold; the index is written for the new file's offsets."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ingest import __version__
from ingest.store import SqlStore
from ingest.store.archive import RecordRef, surt
from ingest.store.archive_index import ARCHIVE

WACZ_VERSION = "1.1.1"
REQUEST_MAX = 65536  # bytes read past a response record to find its request record


@dataclass(frozen=True)
class Copied:
    uri: str
    date: str
    title: str
    digest: str
    mime: str
    status: str
    data: bytes  # the response record's gzip member, then its request record's
    response_length: int


def kept_records(store: SqlStore) -> Iterator[Copied]:
    """Each kept article's archived response (and request) record, as stored."""
    from warcio.archiveiterator import ArchiveIterator

    folder = store.root / ARCHIVE
    for art in store.articles():
        page = store.article_page(art["id"])
        ref: RecordRef | None = store.page_record(page["id"]) if page is not None else None
        if ref is None:
            continue
        with (folder / ref.file).open("rb") as fh:
            fh.seek(ref.offset)
            data = fh.read(ref.length + REQUEST_MAX)
        it = ArchiveIterator(io.BytesIO(data))
        end, mime, status = ref.length, "", ""
        for i, record in enumerate(it):
            if i == 0:
                mime = (record.http_headers.get_header("Content-Type") or "").split(";")[0]
                status = record.http_headers.get_statuscode()
                record.content_stream().read()
                continue
            record.content_stream().read()
            if record.rec_type == "request":
                end = it.get_record_offset() + it.get_record_length()
            break
        yield Copied(ref.uri, ref.date, art["title"], ref.payload_digest, mime, status, data[:end], ref.length)


def write_warc(store: SqlStore, out: BinaryIO) -> tuple[int, list[str]]:
    """The kept articles' records into ``out``; returns (records, their CDXJ lines for data.warc.gz)."""
    n, lines, offset = 0, [], 0
    for c in kept_records(store):
        out.write(c.data)
        stamp = "".join(ch for ch in c.date if ch.isdigit())[:14]
        fields = {"url": c.uri, "mime": c.mime, "status": c.status, "digest": c.digest, "offset": str(offset),
                  "length": str(c.response_length), "filename": "data.warc.gz"}
        lines.append(f"{surt(c.uri)} {stamp} {json.dumps(fields, sort_keys=True)}")
        offset += len(c.data)
        n += 1
    return n, sorted(lines)


def write_wacz(store: SqlStore, path: Path, title: str = "seed-ingest corpus") -> int:
    """A WACZ package of the kept articles at ``path``; returns the pages in it."""
    warc = io.BytesIO()
    n, lines = write_warc(store, warc)
    pages = [json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "All Pages"})]
    for c in kept_records(store):
        pages.append(json.dumps({"id": hashlib.sha1(c.uri.encode()).hexdigest()[:16], "url": c.uri,
                                 "ts": c.date, "title": c.title}, ensure_ascii=False))
    files = {"archive/data.warc.gz": warc.getvalue(), "indexes/index.cdxj": "".join(f"{x}\n" for x in lines).encode(),
             "pages/pages.jsonl": "".join(f"{p}\n" for p in pages).encode()}
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    package = {"profile": "data-package", "title": title, "created": created, "wacz_version": WACZ_VERSION,
               "software": f"seed-ingest {__version__}",
               "resources": [{"name": Path(p).name, "path": p, "hash": "sha256:" + hashlib.sha256(b).hexdigest(),
                              "bytes": len(b)} for p, b in files.items()]}
    package_bytes = json.dumps(package, indent=2).encode()
    digest = {"path": "datapackage.json", "hash": "sha256:" + hashlib.sha256(package_bytes).hexdigest()}
    tmp = path.with_name(f".tmp-{path.name}")
    with zipfile.ZipFile(tmp, "w") as z:
        for p, b in files.items():  # the WARC stored (its records are gzip already), the rest deflated
            z.writestr(zipfile.ZipInfo(p, datetime.now(UTC).timetuple()[:6]), b,
                       compress_type=zipfile.ZIP_STORED if p.endswith(".gz") else zipfile.ZIP_DEFLATED)
        z.writestr("datapackage.json", package_bytes, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("datapackage-digest.json", json.dumps(digest, indent=2), compress_type=zipfile.ZIP_DEFLATED)
    tmp.replace(path)
    return n
