"""A PostgreSQL database of its own for a test module (created and dropped here).

The server is INGEST_TEST_PG (default: the local one, user postgres, trust
auth). When no server answers, the tests that need one are skipped, saying so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

SERVER = os.environ.get("INGEST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def unavailable() -> str | None:
    """Why no PostgreSQL test can run here (None: a server answers)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(SERVER, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL server answers at INGEST_TEST_PG={SERVER}: {str(exc).strip().splitlines()[0]}"
    return None


def url_of(name: str) -> str:
    parts = urlsplit(SERVER)
    return urlunsplit(parts._replace(path="/" + name))


@contextmanager
def database(prefix: str) -> Iterator[str]:
    """A new, empty database; its URL. Dropped afterwards (connections still open included)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url_of(name)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset(url: str) -> None:
    """Empty a test database (every table, sequence and the schema version)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
