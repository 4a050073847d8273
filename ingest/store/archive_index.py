"""Where each fetched page's WARC record is (ingest.store.archive writes the files): one row per page,
so the archived copy is read with one seek; and this process's one archive writer."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import asdict

from ingest.blobs import pack
from ingest.store.archive import ArchiveWriter, RecordRef, verify_record
from ingest.store.contract import Record
from ingest.store.core import SqlCore
from ingest.store.rows import PageDoc

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
        self.index_records([(page_id, ref, kind)])

    def index_records(self, records: Sequence[tuple[int, RecordRef, str]]) -> None:
        """Point each page at its record (written and flushed before: no row points at a partial one), in
        one transaction for a chunk of pages; a page fetched again points at its newest copy."""
        if not records:
            return
        with self.transaction() as db:
            db.executemany("DELETE FROM archive_records WHERE page_id = ?", [(pid,) for pid, _, _ in records])
            db.executemany('INSERT INTO archive_records (page_id, file, "offset", length, uri, date, payload_digest, '
                           "kind) VALUES (?,?,?,?,?,?,?,?)",
                           [(pid, r.file, r.offset, r.length, r.uri, r.date, r.payload_digest, kind)
                            for pid, r, kind in records])

    def page_record(self, page_id: int) -> RecordRef | None:
        row = self.db.execute('SELECT file, "offset", length, uri, date, payload_digest FROM archive_records '
                              "WHERE page_id = ? AND corrupt IS NULL", (page_id,)).fetchone()
        return RecordRef(row[0], row[1], row[2], row[3], row[4], row[5]) if row is not None else None

    def check_archive(self, repair: bool = False) -> tuple[list[str], list[str]]:
        """Every indexed record read back and its digests verified: (problems, what --repair did). A
        corrupted record is reported with its page and article; ``repair`` marks it (`corrupt`), so it is
        reported once and never served or re-extracted, and the check passes again."""
        problems, repaired = [], []
        folder = self.root / ARCHIVE
        rows = self.db.execute('SELECT r.page_id, r.file, r."offset", r.length, r.uri, r.date, r.payload_digest, '
                               "p.article_id FROM archive_records r LEFT JOIN pages p ON p.id = r.page_id "
                               "WHERE r.corrupt IS NULL ORDER BY r.page_id").fetchall()
        for r in rows:
            wrong = verify_record(folder, RecordRef(r[1], r[2], r[3], r[4], r[5], r[6]))
            if wrong is None:
                continue
            who = f"page p{r[0]}" + (f", article a{r[7]}" if r[7] is not None else "")
            if repair:
                with self.transaction() as db:
                    db.execute("UPDATE archive_records SET corrupt = ? WHERE page_id = ?", (wrong, r[0]))
                repaired.append(f"marked the archived copy of {who} corrupted: {wrong}")
            else:
                problems.append(f"{wrong} ({who}; --repair marks it)")
        return problems, repaired

    def archived_pages(self, since: float | None = None, page_ids: Sequence[int] = ()) -> list[Record]:
        """The pages with a whole archived record (fetched since ``since``, or those of ``page_ids``), with
        the record's place: what `ingest reextract` reads again."""
        sql = ('SELECT p.*, r.file AS r_file, r."offset" AS r_offset, r.length AS r_length, r.uri AS r_uri, '
               "r.date AS r_date, r.payload_digest AS r_digest FROM pages p JOIN archive_records r ON "
               "r.page_id = p.id WHERE r.corrupt IS NULL")
        params: list = []
        if since is not None:
            sql += " AND p.fetched >= ?"
            params.append(since)
        if page_ids:
            sql += f" AND p.id IN ({','.join('?' * len(page_ids))})"
            params += list(page_ids)
        return list(self.db.execute(sql + " ORDER BY p.id", tuple(params)).fetchall())

    def set_page_doc(self, page_id: int, doc: PageDoc) -> None:
        """A page's stored text replaced (re-extracted): its doc, its search entry."""
        with self.transaction() as db:
            db.execute("UPDATE pages SET title = ?, doc = ? WHERE id = ?", (doc.title, pack(asdict(doc)), page_id))
            self._index_page(db, page_id, doc.title, doc.text)

    def set_window_counts(self, page_id: int, counts: dict[str, int]) -> None:
        """A page's term counts in the model's window replaced (its text changed), if it is there."""
        with self.transaction() as db:
            db.execute("UPDATE stream SET counts = ? WHERE page_id = ?", (pack(counts), page_id))

    def prune_rejected_archive(self, before: float) -> tuple[int, int]:
        """Remove the files of rejected pages' records last written before ``before`` (whole files, their
        index rows first), unless a page in one has since joined the corpus (a verdict, a rescore) or
        this process still writes it. Returns (files removed, bytes freed)."""
        folder = self.root / ARCHIVE
        if not folder.is_dir():
            return 0, 0
        busy = self._archive.open_files() if self._archive is not None else set()
        removed = freed = 0
        for path in sorted(folder.glob("rejected-*.warc.gz")):
            stat = path.stat()
            if path.name in busy or stat.st_mtime >= before:
                continue
            kept = self.db.execute("SELECT COUNT(*) FROM archive_records r JOIN pages p ON p.id = r.page_id "
                                   "WHERE r.file = ? AND p.outcome <> 'rejected'", (path.name,)).fetchone()[0]
            if kept:
                continue
            with self.transaction() as db:  # rows first: a crash leaves an unindexed file, never a dangling row
                db.execute("DELETE FROM archive_records WHERE file = ?", (path.name,))
            path.unlink(missing_ok=True)
            removed, freed = removed + 1, freed + stat.st_size
        return removed, freed

    def archive_size(self) -> tuple[int, int]:
        """Indexed records and the bytes of the archive's files."""
        n = self.db.execute("SELECT COUNT(*) FROM archive_records").fetchone()[0]
        folder = self.root / ARCHIVE
        size = sum(p.stat().st_size for p in folder.glob("*.warc.gz")) if folder.is_dir() else 0
        return int(n), size
