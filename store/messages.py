"""Messages to people and their answers, and stored connectors: the SQL behind them.

A message's ``status`` is ``sent`` (nothing to answer), ``waiting`` (its execution waits
for an answer), ``answered``, or ``expired``: waiting past its deadline. ``expired`` is
derived when a row is read, so no process has to be running at the deadline; an answer
after the deadline is refused, so the execution, which records the timeout when it
wakes, and the table always agree.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from store.dialect import Conn
from store import values
from store.model import ConnectorWrite, MessageRow, NewMessage

_MESSAGE_COLUMNS = ", ".join(MessageRow.__struct_fields__)


def insert_message(conn: Conn, execution_id: str, new: NewMessage, at: float) -> None:
    conn.execute(
        f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL)",
        (new.id, execution_id, new.seq, new.subject, new.message, values.encode(new.form), new.wait,
         new.deadline, "waiting" if new.wait else "sent", at),
    )


# ``status`` as read: ``expired`` once a waiting message is past its deadline (filters see it too).
_DERIVED = ", ".join(
    "CASE WHEN status = 'waiting' AND deadline <= ? THEN 'expired' ELSE status END AS status" if f == "status" else f
    for f in MessageRow.__struct_fields__
)


def message_row(row: tuple[Any, ...]) -> MessageRow:
    fields = list(row)
    fields[5] = values.decode(fields[5])
    fields[6] = bool(fields[6])
    fields[9] = values.decode(fields[9])
    return MessageRow(*fields)


def select_messages(conn: Conn, where: str = "1 = 1", params: tuple[Any, ...] = ()) -> list[MessageRow]:
    """Messages matching ``where`` (which sees the derived status), oldest first."""
    rows = conn.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM (SELECT {_DERIVED} FROM messages) AS m WHERE {where} ORDER BY created_at",
        (time.time(), *params),
    )
    return [message_row(r) for r in rows]


def answer_message(conn: Conn, message_id: str, response: Any, at: float) -> list[str]:
    """Store the answer; the waiting execution becomes runnable. Returns it (or nothing).

    Raises ValueError (one line, for the responder) when the message is unknown, does not
    wait for an answer, or is past its deadline.
    """
    row = conn.execute(
        "SELECT execution_id, status, deadline, subject FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    if row is None:
        raise ValueError(f"no message {message_id!r}; `engine messages ls` lists the open ones")
    execution_id, status, deadline, subject = row
    if status == "waiting" and _expired(deadline, at):
        when = dt.datetime.fromtimestamp(deadline).isoformat(sep=" ", timespec="seconds")
        raise ValueError(f"message {message_id} ({subject!r}) expired at {when}: its execution no longer waits "
                         "for an answer")
    if status != "waiting":
        raise ValueError(f"message {message_id} ({subject!r}) is {status}, not waiting for an answer")
    conn.execute(
        "UPDATE messages SET status = 'answered', response = ?, answered_at = ? WHERE id = ?",
        (values.encode(response), at, message_id),
    )
    woken = conn.execute(
        "UPDATE executions SET status = 'QUEUED', wake_at = ? WHERE id = ? AND status = 'WAITING' RETURNING id",
        (at, execution_id),
    ).fetchall()
    return [r[0] for r in woken]


def _expired(deadline: float | None, now: float) -> bool:
    return deadline is not None and now >= deadline


def write_connector(conn: Conn, write: ConnectorWrite, at: float) -> None:
    conn.execute(
        "INSERT INTO connectors VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
        "connector_type = excluded.connector_type, value = excluded.value, "
        "description = coalesce(excluded.description, connectors.description), updated_at = excluded.updated_at",
        (write.name, write.connector_type, values.encode(write.value), write.description, at),
    )


def select_connectors(conn: Conn, name: str | None = None) -> list[ConnectorWrite]:
    where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
    rows = conn.execute(f"SELECT name, connector_type, value, description FROM connectors {where} ORDER BY name", params)
    return [ConnectorWrite(n, t, values.decode(v), d) for n, t, v, d in rows]
