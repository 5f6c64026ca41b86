"""The SQL of flows: every version of every flow, content-addressed, and the current one of each name."""

from __future__ import annotations

from typing import Any

from store.dialect import Conn
from store.model import FlowVersion

_CURRENT = (
    "SELECT f.name, f.version, v.source, v.path, f.project, v.created_at FROM flows f "
    "JOIN flow_versions v ON v.version = f.version"
)


def put(conn: Conn, version: str, name: str, project: str, source: str, path: str | None,
        now: float) -> None:
    """Keep ``source`` as ``version`` (once) and make it the current version of ``name``."""
    conn.execute(
        "INSERT OR IGNORE INTO flow_versions VALUES (?, ?, ?, ?, ?, ?)",
        (version, name, project, source, path, now),
    )
    conn.execute(
        "INSERT INTO flows VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
        "project=excluded.project, version=excluded.version, updated_at=excluded.updated_at "
        "WHERE flows.version != excluded.version OR flows.project != excluded.project",
        (name, project, version, now),
    )


def select(conn: Conn, where: str = "1 = 1", params: tuple[Any, ...] = ()) -> list[FlowVersion]:
    """The current versions of the flows matching ``where``, by name."""
    rows = conn.execute(f"{_CURRENT} WHERE {where} ORDER BY f.name", params).fetchall()
    return [FlowVersion(*row) for row in rows]


def select_versions(conn: Conn, where: str, params: tuple[Any, ...]) -> list[FlowVersion]:
    """The versions matching ``where``, oldest first."""
    rows = conn.execute(
        "SELECT name, version, source, path, project, created_at FROM flow_versions "
        f"WHERE {where} ORDER BY created_at",
        params,
    ).fetchall()
    return [FlowVersion(*row) for row in rows]
