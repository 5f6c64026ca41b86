"""POSTGRES connector: one SQL statement through psycopg 3, which is imported only when used."""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

from engine.connectors.base import ConnectorError, ParamSpec, parse_params
from engine.connectors.masking import mask_secrets

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
# SQLSTATE classes and codes worth retrying: connection exceptions, serialization failures and
# deadlocks, insufficient resources, operator intervention (includes statement timeout),
# lock not available.
_RETRYABLE_SQLSTATE_CLASSES = ("08", "40", "53", "57")
_RETRYABLE_SQLSTATES = ("55P03",)
_TRANSIENT_FATAL = ("starting up", "shutting down", "too many", "recovery mode")


class PostgresParams(ParamSpec):
    """Parameters of the POSTGRES connector."""

    dsn: str
    query: str
    params: list[Any] | dict[str, Any] | None = None


class PostgresConnector:
    """Run one statement in a transaction and commit; output ``{"rows", "rowcount"}``.

    Values that msgpack cannot carry are made plain: decimals become strings (no precision is
    lost), dates and times ISO 8601 strings, intervals seconds, UUIDs and addresses strings.
    Connection failures, timeouts, deadlocks and serialization failures are retryable.
    """

    name = "POSTGRES"

    def run(
        self, params: dict[str, Any], *, idempotency_key: str, timeout: float | None
    ) -> dict[str, Any]:
        """Execute ``query`` with ``params`` on the database named by ``dsn``."""
        spec = parse_params(self.name, params, PostgresParams)
        psycopg = _import_psycopg()
        from psycopg.rows import dict_row

        where = f"POSTGRES {mask_secrets(spec.dsn)}"
        seconds = DEFAULT_TIMEOUT if timeout is None else timeout
        try:
            connection = psycopg.connect(
                spec.dsn, connect_timeout=max(1, round(seconds)), row_factory=dict_row
            )
        except psycopg.Error as exc:
            raise _connect_error(where, exc) from None
        try:
            with connection:
                connection.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [f"{int(seconds * 1000)}"]
                )
                cursor = connection.execute(spec.query, spec.params)
                rows = [_plain(row) for row in cursor.fetchall()] if cursor.description else []
                rowcount = cursor.rowcount
        except psycopg.Error as exc:
            raise _query_error(where, exc) from None
        logger.debug("%s: %d rows, rowcount %d", where, len(rows), rowcount)
        return {"rows": rows, "rowcount": rowcount}


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConnectorError(
            "the POSTGRES connector needs psycopg 3, which is not installed; "
            "run pip install 'psycopg[binary]' in the engine's environment",
            retryable=False,
            details={"missing": "psycopg"},
        ) from None
    return psycopg


def _connect_error(where: str, exc: psycopg.Error) -> ConnectorError:
    message = mask_secrets(str(exc))
    refused = "FATAL:" in message and not any(text in message for text in _TRANSIENT_FATAL)
    if refused:
        return ConnectorError(
            f"{where}: the server refused the connection ({message}) (not retryable); "
            "check the user, password and database name in the dsn",
            retryable=False,
            details={"sqlstate": exc.sqlstate},
        )
    return ConnectorError(
        f"{where}: cannot connect ({message}) (retryable); check that the server is running "
        "and reachable",
        retryable=True,
        details={"sqlstate": exc.sqlstate},
    )


def _query_error(where: str, exc: psycopg.Error) -> ConnectorError:
    import psycopg

    state = exc.sqlstate
    if state is None:
        retryable = isinstance(exc, psycopg.OperationalError)
    else:
        retryable = state[:2] in _RETRYABLE_SQLSTATE_CLASSES or state in _RETRYABLE_SQLSTATES
    kind, advice = (
        ("retryable", "it may succeed when retried")
        if retryable
        else ("not retryable", "fix the query or its params")
    )
    first_line = mask_secrets(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return ConnectorError(
        f"{where}: the statement failed: {type(exc).__name__} [{state}] {first_line} ({kind}); "
        f"{advice}",
        retryable=retryable,
        details={"sqlstate": state, "error": type(exc).__name__},
    )


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | bytes):
        return value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return str(value)  # Decimal, UUID, IP addresses, ranges and other adapted types
