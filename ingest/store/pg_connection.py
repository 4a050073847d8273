"""The PostgreSQL connection as the shared SQL sees it: a psycopg pool behind ``execute`` with ``?``
placeholders, rows readable by name and position (as sqlite3.Row), and nested transactions that join
the outer one.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class PgRow:
    """A row read by name or position (as sqlite3.Row)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names, self._values = names, values

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = {d.name: i for i, d in enumerate(cursor.description or ())}
    return lambda values: PgRow(names, values)


_TOKEN = re.compile(r"'(?:[^']|'')*'|\?|%")


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled; quoted text left alone)."""
    return _TOKEN.sub(lambda m: "%s" if m.group() == "?" else "%%" if m.group() == "%" else m.group(), sql)


class _Result:
    """A statement's rows, read before its connection went back to the pool."""

    def __init__(self, rows: list[PgRow], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def fetchone(self) -> PgRow | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[PgRow]:
        return self._rows

    def __iter__(self) -> Iterator[PgRow]:
        return iter(self._rows)


class PgConnection:
    """``execute``/``executemany`` as sqlite3's, over a pool: outside a transaction each statement
    takes a connection for itself; inside :meth:`transaction` the thread keeps one (a transaction
    opened inside another joins it: no savepoint round trips)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:  # inside one already: part of it (a failure rolls the whole one back)
            yield self
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield self
            finally:
                self._local.conn = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return self._run(conn, sql, params)
        with self.pool.connection() as conn:
            return self._run(conn, sql, params)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(p) for p in seq]
        if not rows:
            return
        with self.transaction(), self._local.conn.cursor() as cur:
            cur.executemany(translate(sql), rows)

    @staticmethod
    def _run(conn: Any, sql: str, params: Sequence[Any]) -> _Result:
        with conn.cursor(row_factory=_row_factory) as cur:
            if params:
                cur.execute(translate(sql), tuple(params))
            else:  # sent as written: no placeholders to translate (DDL's regular expressions keep their ?)
                cur.execute(sql)
            rows = cur.fetchall() if cur.description else []
            return _Result(rows, cur.rowcount)

    def close(self) -> None:
        self.pool.close()
