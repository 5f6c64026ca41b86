"""Messages to people and their answers, and stored connectors: the SQL behind them."""

from __future__ import annotations

import sqlite3
from typing import Any

from store import values
from store.model import ConnectorWrite, MessageRow, NewMessage

_MESSAGE_COLUMNS = ", ".join(MessageRow.__struct_fields__)


def insert_message(conn: sqlite3.Connection, execution_id: str, new: NewMessage, at: float) -> None:
    conn.execute(
        f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL)",
        (new.id, execution_id, new.seq, new.subject, new.message, values.encode(new.form), new.wait,
         new.deadline, "waiting" if new.wait else "sent", at),
    )


def message_row(row: tuple[Any, ...]) -> MessageRow:
    fields = list(row)
    fields[5] = values.decode(fields[5])
    fields[6] = bool(fields[6])
    fields[9] = values.decode(fields[9])
    return MessageRow(*fields)


def select_messages(conn: sqlite3.Connection, where: str = "1", params: tuple[Any, ...] = ()) -> list[MessageRow]:
    rows = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY created_at", params)
    return [message_row(r) for r in rows]


def answer_message(conn: sqlite3.Connection, message_id: str, response: Any, at: float) -> list[str]:
    """Store the answer; the waiting execution becomes runnable. Returns it (or nothing)."""
    row = conn.execute("SELECT execution_id, status FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None or row[1] != "waiting":
        raise ValueError(f"message {message_id} is {'unknown' if row is None else row[1]}, not waiting for an answer")
    conn.execute(
        "UPDATE messages SET status = 'answered', response = ?, answered_at = ? WHERE id = ?",
        (values.encode(response), at, message_id),
    )
    woken = conn.execute(
        "UPDATE executions SET status = 'QUEUED', wake_at = NULL WHERE id = ? AND status = 'WAITING' RETURNING id",
        (row[0],),
    ).fetchall()
    return [r[0] for r in woken]


def write_connector(conn: sqlite3.Connection, write: ConnectorWrite, at: float) -> None:
    conn.execute(
        "INSERT INTO connectors VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
        "connector_type = excluded.connector_type, value = excluded.value, "
        "description = coalesce(excluded.description, description), updated_at = excluded.updated_at",
        (write.name, write.connector_type, values.encode(write.value), write.description, at),
    )


def select_connectors(conn: sqlite3.Connection, name: str | None = None) -> list[ConnectorWrite]:
    where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
    rows = conn.execute(f"SELECT name, connector_type, value, description FROM connectors {where} ORDER BY name", params)
    return [ConnectorWrite(n, t, values.decode(v), d) for n, t, v, d in rows]
