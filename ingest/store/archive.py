"""The WARC archive of fetched pages (WARC/1.1, ISO 28500; written with warcio, the Webrecorder library).

Each hop of a page's fetch (a redirect, then the page) is a ``request`` record and its ``response``
record, gzip per record, appended to ``<folder>/<kind>-<start>-<writer>-<n>.warc.gz``. A writer never
appends to a file it did not open: each process (each PostgreSQL worker) names its own, and a new file
starts at ``max_size``, so a kill in the middle of a record leaves a partial tail in a file nobody
writes again, which no index row points at (the caller records a ``RecordRef`` only once ``write``
has returned). ``kind`` keeps kept and rejected pages in separate files, so whole files of rejected
pages can be removed once they are old enough, with nothing rewritten in place.

What is recorded as received: the status line and the response headers. The payload is the body as
the fetcher decoded it, so ``Content-Encoding``, ``Transfer-Encoding`` and ``Content-Length`` are kept
as ``X-Archive-Orig-*`` headers and ``Content-Length`` states the stored length (pywb's convention for
decoded payloads). The request records hold no secret: ``Cookie``, ``Authorization``,
``Proxy-Authorization`` and every header a feed's configuration added are left out, and credentials
in URLs are removed.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from ingest import __version__
from ingest.sources.exchange import Exchange
from ingest.sources.urls import site_host, without_userinfo

GZIP_LEVEL = 6
MAX_FILE_SIZE = 1 << 30  # [archive] max_file_size: a new file after this many bytes
KINDS = ("kept", "rejected", "feeds")
# request headers written as they were sent; any other (Cookie, Authorization, a feed's own headers) is left out
REQUEST_HEADERS = frozenset({"host", "user-agent", "accept", "accept-encoding", "accept-language", "connection",
                             "if-none-match", "if-modified-since"})
_DECODED = ("content-encoding", "transfer-encoding", "content-length")  # no longer true of the stored payload


@dataclass(frozen=True)
class RecordRef:
    """Where a page's response record is: read with one seek (``offset``, ``length`` bytes of gzip)."""

    file: str  # the file's name, in the archive folder
    offset: int
    length: int
    uri: str  # WARC-Target-URI: the final URL
    date: str  # WARC-Date
    payload_digest: str  # WARC-Payload-Digest, "sha1:BASE32"


@dataclass(frozen=True)
class Built:
    """A fetch's records, serialised and compressed, not written yet: the last response record is at
    ``offset`` (``length`` bytes) in ``data``."""

    data: bytes
    offset: int
    length: int
    uri: str
    date: str
    payload_digest: str


def build_records(exchanges: Sequence[Exchange]) -> Built | None:
    """Each hop as a response record and its request record, gzip per record (CPU only: callable from
    any thread; zlib and hashlib release the GIL)."""
    if not exchanges:
        return None
    members: list[bytes] = []
    last: Built | None = None
    for ex in exchanges:
        uri = without_userinfo(ex.url)
        writer = WARCWriter(io.BytesIO(), gzip=False, warc_version="WARC/1.1")
        response = writer.create_warc_record(uri, "response", payload=io.BytesIO(ex.body),
                                             http_headers=_response_headers(ex))
        request = writer.create_warc_record(uri, "request", payload=io.BytesIO(b""),
                                            http_headers=_request_headers(ex))
        request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
        start = sum(len(m) for m in members)
        members.append(_member(writer, response))
        last = Built(b"", start, len(members[-1]), uri, response.rec_headers.get_header("WARC-Date"),
                     response.rec_headers.get_header("WARC-Payload-Digest"))
        members.append(_member(writer, request))
    assert last is not None
    return dataclasses.replace(last, data=b"".join(members))


def _member(writer: WARCWriter, record: object) -> bytes:
    """One record as a gzip member of its own, at level 6: warcio compresses at 9, which costs 1.7 times
    the CPU for the same size on news pages (26.6 KB a 134 KB page either way; measured on bench/'s pages)."""
    out = io.BytesIO()
    writer.out = out
    writer.write_record(record)
    return gzip.compress(out.getvalue(), compresslevel=GZIP_LEVEL, mtime=0)


class ArchiveWriter:
    """Appends records for one writer (a process) to its own files in ``folder``."""

    def __init__(self, folder: Path, writer: str, max_size: int = MAX_FILE_SIZE) -> None:
        self.folder, self.writer, self.max_size = folder, _safe(writer), max_size
        self.started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        self._files: dict[str, tuple[str, io.BufferedWriter]] = {}
        self._count: dict[str, int] = {}

    def write(self, exchanges: Sequence[Exchange], kind: str = "kept") -> RecordRef | None:
        """Write each hop as a request and a response record; the last response's place, or None when
        there is no hop to write."""
        built = build_records(exchanges)
        return self.append(built, kind) if built is not None else None

    def append(self, built: Built, kind: str = "kept") -> RecordRef:
        """Append records ``build_records`` made (in another thread: the digests and the gzip are the
        work, this is one write)."""
        if kind not in KINDS:
            raise ValueError(f"archive kind must be one of {KINDS}, not {kind!r}")
        name, fh = self._file(kind)
        base = fh.tell()
        fh.write(built.data)  # one write: a kill leaves this page's records whole or a tail never indexed
        fh.flush()
        return RecordRef(name, base + built.offset, built.length, built.uri, built.date, built.payload_digest)

    def open_files(self) -> set[str]:
        return {name for name, _ in self._files.values()}

    def close(self) -> None:
        for _, fh in self._files.values():
            fh.close()
        self._files.clear()

    def _file(self, kind: str) -> tuple[str, io.BufferedWriter]:
        current = self._files.get(kind)
        # a file another process pruned (idle past keep_rejected) is not written on: records would vanish
        if current is not None and current[1].tell() < self.max_size and (self.folder / current[0]).exists():
            return current
        if current is not None:
            current[1].close()
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:  # "x": never a file another writer (or this process's previous one) opened
            n = self._count[kind] = self._count.get(kind, 0) + 1
            name = f"{kind}-{self.started}-{self.writer}-{n:05d}.warc.gz"
            try:
                fh = (self.folder / name).open("xb")  # kept open across writes
                break
            except FileExistsError:
                continue
        warcinfo = io.BytesIO()
        w = WARCWriter(warcinfo, gzip=True, warc_version="WARC/1.1")
        w.write_record(w.create_warcinfo_record(name, {"software": f"seed-ingest {__version__} (warcio)",
                                                       "format": "WARC File Format 1.1",
                                                       "isPartOf": "seed-ingest"}))
        fh.write(warcinfo.getvalue())
        fh.flush()
        self._files[kind] = (name, fh)
        return name, fh


def read_record(folder: Path, ref: RecordRef) -> tuple[StatusAndHeaders, bytes]:
    """The response record at ``ref``: its HTTP headers and payload (one seek, one read)."""
    from warcio.archiveiterator import ArchiveIterator

    with (folder / ref.file).open("rb") as fh:
        fh.seek(ref.offset)
        data = fh.read(ref.length)
    for record in ArchiveIterator(io.BytesIO(data)):
        return record.http_headers, record.content_stream().read()
    raise ValueError(f"no WARC record at {ref.file}:{ref.offset}")


def verify_record(folder: Path, ref: RecordRef) -> str | None:
    """What is wrong with the record at ``ref`` (a missing file, a truncated or unreadable gzip member,
    a block or payload digest that does not match, another URI), or None when it is whole."""
    import zlib

    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    path = folder / ref.file
    try:
        with path.open("rb") as fh:
            fh.seek(ref.offset)
            data = fh.read(ref.length)
    except OSError as exc:
        return f"{ref.file}: cannot read: {exc.strerror or exc}"
    if len(data) < ref.length:
        return f"{ref.file} at {ref.offset}: truncated ({len(data)} of {ref.length} bytes)"
    try:
        for record in ArchiveIterator(io.BytesIO(data), check_digests=True):
            record.content_stream().read()
            checker = record.digest_checker
            if record.rec_headers.get_header("WARC-Target-URI") != ref.uri:
                return f"{ref.file} at {ref.offset}: not the record of {ref.uri}"
            if record.rec_headers.get_header("WARC-Payload-Digest") != ref.payload_digest:
                return f"{ref.file} at {ref.offset}: payload digest differs from the index"
            if checker.passed is False:
                return f"{ref.file} at {ref.offset}: " + "; ".join(checker.problems)
            return None
    except (ArchiveLoadFailed, OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as exc:
        return f"{ref.file} at {ref.offset}: unreadable: {exc}"
    return f"{ref.file} at {ref.offset}: no record"


def surt(url: str) -> str:
    """The SURT form CDXJ indexes sort by: host reversed with commas, then ")" and the path (lower case
    host, no scheme, no "www.", default port dropped): ``https://www.Example.org/a?b`` -> ``org,example)/a?b``."""
    parts = urlsplit(url)
    host = site_host(url)
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return ",".join(reversed(host.split("."))) + port + ")" + path


def write_cdxj(folder: Path, out: Path) -> int:
    """A CDXJ index of every response record in the archive's files (pywb's format: ``SURT TIMESTAMP
    {json}``, sorted), written atomically to ``out``; returns the lines written."""
    import json

    from warcio.archiveiterator import ArchiveIterator

    lines = []
    for path in sorted(folder.glob("*.warc.gz")):
        with path.open("rb") as fh:
            it = ArchiveIterator(fh)
            for record in it:
                if record.rec_type != "response":
                    continue
                uri = record.rec_headers.get_header("WARC-Target-URI")
                date = record.rec_headers.get_header("WARC-Date") or ""
                stamp = "".join(c for c in date if c.isdigit())[:14]
                fields = {"url": uri, "mime": (record.http_headers.get_header("Content-Type") or "").split(";")[0],
                          "status": record.http_headers.get_statuscode(),
                          "digest": record.rec_headers.get_header("WARC-Payload-Digest"),
                          "offset": str(it.get_record_offset()), "filename": path.name}
                record.content_stream().read()  # to the record's end: its length is known then
                fields["length"] = str(it.get_record_length())
                lines.append(f"{surt(uri)} {stamp} {json.dumps(fields, sort_keys=True)}")
    lines.sort()
    tmp = out.with_name(f".tmp-{out.name}")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(out)
    return len(lines)


def _response_headers(ex: Exchange) -> StatusAndHeaders:
    headers = []
    for k, v in ex.response_headers:
        if k.lower() in _DECODED:
            headers.append((f"X-Archive-Orig-{k}", v))
        else:
            headers.append((k, v))
    headers.append(("Content-Length", str(len(ex.body))))
    version = ex.http_version if ex.http_version.startswith("HTTP/") else "HTTP/1.1"
    return StatusAndHeaders(f"{ex.status} {ex.reason}".strip(), headers, protocol=version)


def _request_headers(ex: Exchange) -> StatusAndHeaders:
    parts = urlsplit(ex.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [(k, v) for k, v in ex.request_headers if k.lower() in REQUEST_HEADERS]
    headers = [(k, parts.netloc.rpartition("@")[2]) if k.lower() == "host" else (k, v) for k, v in headers]
    return StatusAndHeaders(f"{ex.method} {target} HTTP/1.1", headers, is_http_request=True)


def _safe(name: str) -> str:
    """A writer's name as a file-name part: letters, digits, dot, dash."""
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in name)[:64] or str(os.getpid())
