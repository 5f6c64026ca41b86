"""SQLITE connector: one SQL statement against a SQLite database file."""

from __future__ import annotations

import contextlib
import logging
import pathlib
import sqlite3
import urllib.parse
from typing import Any

from engine.connectors.base import ConnectorError, ParamSpec, parse_params

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
"""Seconds to wait for a lock held by another connection (SQLite's busy timeout)."""


class SqliteParams(ParamSpec):
    """Parameters of the SQLITE connector."""

    path: str
    query: str
    params: list[Any] | dict[str, Any] = []
    create: bool = False


class SqliteConnector:
    """Run one statement and commit; output ``{"rows": [dict, ...], "rowcount": int}``.

    The file must exist unless ``create=True``, so a typo in ``path`` is an error rather than a
    new empty database. ``rowcount`` is the number of rows changed by a write, or returned by a
    read. A locked database is retryable; SQL errors are not.
    """

    name = "SQLITE"

    def run(
        self, params: dict[str, Any], *, idempotency_key: str, timeout: float | None
    ) -> dict[str, Any]:
        """Execute ``query`` with ``params`` on the database at ``path``."""
        spec = parse_params(self.name, params, SqliteParams)
        mode = "rwc" if spec.create else "rw"
        uri = f"file:{urllib.parse.quote(str(pathlib.Path(spec.path).absolute()))}?mode={mode}"
        where = f"SQLITE {spec.path}"
        seconds = DEFAULT_TIMEOUT if timeout is None else timeout
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=seconds)
        except sqlite3.OperationalError as exc:
            raise ConnectorError(
                f"{where}: cannot open the database ({exc}); check that the file exists and is "
                "writable, or pass create=True to create it",
                retryable=False,
                details={"path": spec.path},
            ) from None
        with contextlib.closing(connection):
            try:
                cursor = connection.execute(spec.query, spec.params)
                columns = [column[0] for column in cursor.description or ()]
                rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
                connection.commit()
            except sqlite3.Error as exc:
                raise _query_error(where, exc) from None
        rowcount = cursor.rowcount if cursor.rowcount >= 0 else len(rows)
        logger.debug("%s: %d rows, rowcount %d", where, len(rows), rowcount)
        return {"rows": rows, "rowcount": rowcount}


def _query_error(where: str, exc: sqlite3.Error) -> ConnectorError:
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return ConnectorError(
            f"{where}: the database is locked by another connection ({message}) (retryable); "
            "retry later or raise timeout",
            retryable=True,
            details={"error": type(exc).__name__},
        )
    return ConnectorError(
        f"{where}: the statement failed: {type(exc).__name__}: {message} (not retryable); "
        "fix the query or its params",
        retryable=False,
        details={"error": type(exc).__name__},
    )
