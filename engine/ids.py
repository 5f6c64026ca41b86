"""Execution ids: random for top-level executions, derived for children."""

from __future__ import annotations

import hashlib
import uuid


def new_id() -> str:
    """A fresh top-level execution id (16 hex digits)."""
    return uuid.uuid4().hex[:16]


def child_id(parent_id: str, seq: int) -> str:
    """The id of the child created at ``seq`` of ``parent_id``: the same on every replay,
    so a crash between creating a child and recording it cannot create a second one."""
    return hashlib.sha256(f"{parent_id}:{seq}".encode()).hexdigest()[:16]
