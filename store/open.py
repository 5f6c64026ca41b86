"""Open a store from the ``--db`` value: a file path, ``sqlite:///PATH``, or (not yet)
``postgresql://...``."""

from __future__ import annotations

import re

from store.base import Store
from store.errors import StoreError
from store.sqlite import SqliteStore

#: A value without ``SCHEME://`` is a file path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(url: str, synchronous: str = "FULL") -> Store:
    """The store that ``url`` names, created on first use.

    Args:
        url: a SQLite file path, ``sqlite:///relative/path`` or ``sqlite:////absolute/path``.
        synchronous: SQLite's durability, ``FULL`` or ``NORMAL``.

    Raises:
        StoreError: a ``postgresql://`` URL (not built yet), an unknown scheme, or a
            database that cannot be opened.
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
        raise StoreError(
            f"cannot open database {_without_password(url)}: PostgreSQL support is not built yet; "
            "use a SQLite file for --db (a path, or sqlite:///PATH)"
        )
    raise StoreError(
        f"cannot open database {_without_password(url)}: unknown scheme {scheme!r}; --db takes a file path "
        "or sqlite:///PATH (postgresql:// is not built yet)"
    )


def _without_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part hidden."""
    return re.sub(r"^([^:/]+://[^:/@]*):[^@]*@", r"\1:***@", url)


def as_sqlite(store: Store, what: str) -> SqliteStore:
    """``store`` as the SQLite store that ``what`` is kept in (the only backend today)."""
    if not isinstance(store, SqliteStore):
        raise StoreError(f"{what} are kept in SQLite databases only, not in {store.path}")
    return store
