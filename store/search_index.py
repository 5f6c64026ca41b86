"""The full-text index of what executions recorded (SQLite FTS5, table ``search_text``):
their logs, their messages to people and their errors. Rows are added in the commit
that records the events (store/writes.py), so the index is never behind the log; the
text is what was recorded, with secrets already masked. Read by store/search.py."""

from __future__ import annotations

from collections.abc import Iterable

from store.dialect import Conn
from store.events import CommandFailed, Event, ExecutionEnded, LogRecorded, MessageSent, decode_body

#: The virtual table (created by store/schema.py with the others).
DDL = "CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(execution_id UNINDEXED, text)"


def _text(event: Event) -> str:
    """The words of ``event`` worth finding it by ('' for events without any)."""
    body = event.body
    if isinstance(body, LogRecorded):
        return body.message
    if isinstance(body, MessageSent):
        return f"{body.subject}\n{body.message}"
    if isinstance(body, ExecutionEnded):
        error = f"\n{body.error.type}: {body.error.message}" if body.error else ""
        return (body.message or "") + error
    if isinstance(body, CommandFailed):
        return f"{body.error.type}: {body.error.message}"
    return ""


#: The kinds of event ``_text`` finds words in.
WITH_TEXT = frozenset({LogRecorded, MessageSent, ExecutionEnded, CommandFailed})


def index_events(conn: Conn, execution_id: str, events: Iterable[Event]) -> None:
    """Add the text of ``events`` to the index (inside the commit that records them)."""
    rows = [(execution_id, text) for e in events if type(e.body) in WITH_TEXT and (text := _text(e)).strip()]
    if rows:
        conn.executemany("INSERT INTO search_text (execution_id, text) VALUES (?, ?)", rows)


def index_existing(conn: Conn) -> None:
    """Index every event already recorded (the migration to schema version 7)."""
    for execution_id, seq, at, line, body in conn.execute("SELECT execution_id, seq, at, line, body FROM events").fetchall():
        index_events(conn, execution_id, [Event(seq, at, decode_body(body), line)])

