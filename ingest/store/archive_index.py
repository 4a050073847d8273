"""Where each fetched page's WARC record is (ingest.store.archive writes the files): one row per page,
so the archived copy is read with one seek; and this process's one archive writer."""

from __future__ import annotations

import os
import socket

from ingest.store.archive import ArchiveWriter, RecordRef
from ingest.store.core import SqlCore

ARCHIVE = "archive"  # folder (in the store) of the WARC files


class ArchiveIndex(SqlCore):
    _archive: ArchiveWriter | None = None

    def archive_writer(self, max_size: int) -> ArchiveWriter:
        """This process's writer: its own files (host and pid in their names), opened once."""
        if self._archive is None:
            self._archive = ArchiveWriter(self.root / ARCHIVE, f"{socket.gethostname()}-{os.getpid()}", max_size)
        return self._archive

    def close(self) -> None:
        self.close_archive()
        super().close()

    def close_archive(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    def index_record(self, page_id: int, ref: RecordRef, kind: str) -> None:
        """Point the page at its record (written and flushed before: no row points at a partial one)."""
        with self.transaction() as db:
            db.execute("DELETE FROM archive_records WHERE page_id = ?", (page_id,))
            db.execute('INSERT INTO archive_records (page_id, file, "offset", length, uri, date, payload_digest, '
                       "kind) VALUES (?,?,?,?,?,?,?,?)",
                       (page_id, ref.file, ref.offset, ref.length, ref.uri, ref.date, ref.payload_digest, kind))

    def page_record(self, page_id: int) -> RecordRef | None:
        row = self.db.execute('SELECT file, "offset", length, uri, date, payload_digest FROM archive_records '
                              "WHERE page_id = ?", (page_id,)).fetchone()
        return RecordRef(row[0], row[1], row[2], row[3], row[4], row[5]) if row is not None else None

    def archive_size(self) -> tuple[int, int]:
        """Indexed records and the bytes of the archive's files."""
        n = self.db.execute("SELECT COUNT(*) FROM archive_records").fetchone()[0]
        folder = self.root / ARCHIVE
        size = sum(p.stat().st_size for p in folder.glob("*.warc.gz")) if folder.is_dir() else 0
        return int(n), size
