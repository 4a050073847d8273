"""What both backends share: the store's SQL, written once in the subset SQLite and PostgreSQL agree on.

``SqlStore`` joins the table families (``feeds``, ``pages``, ``verdicts``,
``digests``, each on ``core.SqlCore``) and adds what spans them: crash
recovery and the consistency check. Together they hold every query that reads
or writes the same way on both
(``?`` placeholders; the PostgreSQL connection translates them). Each backend
adds what differs: opening, transactions, migrations, full-text search,
integrity checks, and where article text lives (SQLite: corpus files written
around the commit; PostgreSQL: a column, the folder written by ``ingest corpus
sync``). Nothing outside the store writes SQL.
"""

from __future__ import annotations

from ingest.store.core import (
    DROPPED,
    MAX_DEFERRAL,
    MAX_PAGE_ATTEMPTS,
    ORPHANS,
    STREAM_WINDOW,
    WITHDRAWN,
    _query_words,
    _snippet,
)
from ingest.store.digests import DigestTables
from ingest.store.rows import CheckReport
from ingest.text import corpus
from ingest.text.corpus import TMP_PREFIX

__all__ = ["DROPPED", "MAX_DEFERRAL", "MAX_PAGE_ATTEMPTS", "ORPHANS", "STREAM_WINDOW", "WITHDRAWN", "SqlStore",
           "_query_words", "_snippet"]


class SqlStore(DigestTables):
    """The shared part of a store; open one with ``ingest.store.open_store`` (or a backend's ``open``).
    Its queries live by table family: ``feeds`` (feeds, hosts, runs), ``pages`` (entries, pages,
    articles), ``verdicts`` (the model's window, verdicts), ``digests`` (digests, health, reads);
    here is what spans them all: crash recovery and the consistency check."""

    # -- crash recovery -------------------------------------------------

    def recover(self) -> dict[str, int]:
        """Finish or undo corpus writes that a crash interrupted."""
        def committed_hash(name: str) -> str | None:
            # a temp file is the committed version when its row holds its text's hash
            # (a new article, or an update committed just before the crash)
            row = self.db.execute("SELECT text_hash FROM articles WHERE path=?", (f"corpus/{name}",)).fetchone()
            return row[0] if row is not None else None

        renamed, removed = corpus.finish_writes(self.corpus, committed_hash)
        done = {"renamed": renamed, "removed": removed}
        # a verdict's move between corpus/ and withdrawn/ interrupted: put the file where the row says
        # (withdrawn rows are few: the ones the user or rescore took out)
        moving = {r["path"]: r for r in self.db.execute("SELECT * FROM articles WHERE withdrawn IS NOT NULL")}
        for f in [*(self.root / WITHDRAWN).glob("*.txt"), *(self.root / DROPPED).glob("*.txt")]:
            if f"corpus/{f.name}" not in moving:
                row = self.db.execute("SELECT * FROM articles WHERE path=?", (f"corpus/{f.name}",)).fetchone()
                if row is not None:
                    self._place(row)
                    done["renamed"] += 1
        for row in moving.values():
            if (self.root / row["path"]).exists():
                self._place(row)
                done["renamed"] += 1
        done["removed"] += corpus.remove_temp_files(self.root / "digests")  # a digest killed while writing
        return done

    def check(self, repair: bool = False) -> CheckReport:
        """Compare the index with the folder: database integrity, every row's file, every file's
        row, temp files left by a crash. ``repair`` does only what loses nothing: finishes or
        undoes interrupted writes (:meth:`recover`) and moves files no row knows into orphans/."""
        report = CheckReport()
        report.integrity = self._integrity()
        temps = [p for d in (self.corpus, self.root / "digests") if d.is_dir() for p in d.glob(TMP_PREFIX + "*")]
        report.temp_files = [str(p.relative_to(self.root)) for p in temps]
        if repair and temps:
            done = self.recover()
            report.repaired.append(f"interrupted writes: {done['renamed']} finished, {done['removed']} temp "
                                   f"file(s) removed (their rows never committed)")
        known: set[str] = set()
        for art in self.db.execute("SELECT id, path, url, withdrawn, withdrawn_by FROM articles ORDER BY number"):
            name = art["path"].split("/", 1)[1]
            known.add(name)
            where = self.article_file(art)
            if where.exists():
                continue
            other = self.misplaced_file(art)
            if other is not None:
                if repair:
                    self._place(art)
                    report.repaired.append(f"moved {name} to {where.parent.name}/ as its row says")
                else:
                    report.misplaced.append(str(other.relative_to(self.root)))
                continue
            report.missing.append(f"{where.relative_to(self.root)} (article a{art['id']})")
        for d in (self.corpus, self.root / WITHDRAWN, self.root / DROPPED):
            for f in sorted(d.glob("*.txt")) if d.is_dir() else ():
                if f.name in known or f.name.startswith(TMP_PREFIX):
                    continue
                if repair:
                    (self.root / ORPHANS).mkdir(exist_ok=True)
                    f.replace(self.root / ORPHANS / f.name)
                    report.repaired.append(f"moved {f.relative_to(self.root)} (no row in the index) to {ORPHANS}/")
                else:
                    report.orphans.append(str(f.relative_to(self.root)))
        report.archive, marked = self.check_archive(repair)
        report.repaired += marked
        if repair:
            report.temp_files = []
        return report
