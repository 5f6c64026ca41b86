"""Open a store from the ``--db`` value: a file path, ``sqlite:///PATH``, or
``postgresql://user@host:port/dbname``."""

from __future__ import annotations

import re

from store.base import Store
from store.errors import StoreError
from store.pg_url import masked
from store.postgres import PostgresStore
from store.sqlite import SqliteStore

#: A value without ``SCHEME://`` is a file path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

#: The stores whose tables the side stores (tokens, schedules, search...) share.
SqlStore = SqliteStore | PostgresStore


def open_store(url: str, synchronous: str = "FULL") -> Store:
    """The store that ``url`` names, created on first use.

    Args:
        url: a SQLite file path, ``sqlite:///relative/path``, ``sqlite:////absolute/path``,
            or ``postgresql://user@host:port/dbname`` (also ``postgres://``).
        synchronous: SQLite's durability, ``FULL`` or ``NORMAL`` (PostgreSQL's is the server's).

    Raises:
        StoreError: an unknown scheme, or a database that cannot be opened.
    """
    found = _SCHEME.match(url)
    if found is None:
        return SqliteStore(url, synchronous)
    scheme = found.group(1).lower()
    if scheme == "sqlite":
        path = url[found.end():]
        if not path.startswith("/") or path == "/":
            raise StoreError(f"database URL {url!r} names no file: write sqlite:///relative/path or sqlite:////absolute/path")
        return SqliteStore(path[1:], synchronous)
    if scheme in ("postgresql", "postgres"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError(
                f"cannot open database {masked(url)}: psycopg is not installed; "
                "pip install 'durable-engine[postgres]'"
            ) from None
        return PostgresStore(url)
    raise StoreError(
        f"cannot open database {masked(url)}: unknown scheme {scheme!r}; --db takes a file path, "
        "sqlite:///PATH or postgresql://user@host:port/dbname"
    )


def file_of(url: str) -> str | None:
    """The SQLite file a ``--db`` value names (None: a URL of another scheme)."""
    if url.lower().startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    return None if "://" in url else url


def as_sql(store: Store, what: str) -> SqlStore:
    """``store`` as one of the SQL stores that ``what`` is kept in (every backend today)."""
    if not isinstance(store, (SqliteStore, PostgresStore)):
        raise StoreError(f"{what} are kept in SQL databases only, not in {store.path}")
    return store
