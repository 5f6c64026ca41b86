"""What a schedule or webhook whose action is a git sync keeps: where it reads flows
from (``GitSource``, columns ``git_repo``, ``git_ref``, ``git_path``) and how its last
sync ended (``SyncOutcome``, msgpack in the column ``last_sync``). The SQL that writes
them sits with each table's store (``store.schedules``, ``store.access``)."""

from __future__ import annotations

from typing import Any

import msgspec


class GitSource(msgspec.Struct, frozen=True):
    """The flows of ``ref`` (a branch, tag or commit) of ``repo``, in the folder ``path``
    (None: the top of the repository)."""

    repo: str
    ref: str = "HEAD"
    path: str | None = None


class SyncedFlowInfo(msgspec.Struct, frozen=True):
    """A flow a git sync registered; ``changed``: it got a new current version."""

    name: str
    project: str
    version: str
    changed: bool


class SyncOutcome(msgspec.Struct, frozen=True):
    """How a git sync ended, at ``at`` (epoch seconds): the ``commit`` read and the
    ``flows`` registered from it, or the one-line ``error`` (nothing registered).
    ``slot``: the schedule slot it ran for (None for a webhook)."""

    at: float
    commit: str | None = None
    flows: list[SyncedFlowInfo] = []
    error: str | None = None
    slot: int | None = None


def source_columns(source: GitSource | None) -> tuple[str | None, str | None, str | None]:
    """The ``git_repo``, ``git_ref`` and ``git_path`` values of ``source``."""
    return (None, None, None) if source is None else (source.repo, source.ref, source.path)


def source_of(repo: str | None, ref: str | None, path: str | None) -> GitSource | None:
    """The ``GitSource`` stored in those columns (None: the action starts a flow)."""
    return None if repo is None else GitSource(repo, ref or "HEAD", path)


def encode_outcome(outcome: SyncOutcome) -> bytes:
    return msgspec.msgpack.encode(outcome)


def decode_outcome(blob: Any) -> SyncOutcome | None:
    return None if blob is None else msgspec.msgpack.decode(bytes(blob), type=SyncOutcome)
