"""Where flow versions came from: the git commit ``engine flows sync --git`` read them from."""

from __future__ import annotations

import time
from collections.abc import Sequence

from store.base import Store
from store.open import as_sql


class FlowOrigins:
    """The git commits of flow versions."""

    def __init__(self, store: Store) -> None:
        self.store = as_sql(store, "the git commits of flow versions")

    def record(self, versions: Sequence[str], repo: str, commit: str) -> None:
        """``versions`` were read from ``commit`` of ``repo``; a version seen in an earlier
        commit keeps that one (its content is the same)."""
        at = time.time()
        self.store.transaction(lambda conn: conn.executemany(
            "INSERT OR IGNORE INTO flow_origins VALUES (?, ?, ?, ?)", [(v, repo, commit, at) for v in versions]))

    def commits(self) -> dict[str, str]:
        """The commit of each flow version synced from git."""
        rows = self.store.read(lambda conn: conn.execute("SELECT version, git_commit FROM flow_origins").fetchall())
        return dict(rows)

    def commit_of(self, version: str) -> str | None:
        found = self.store.read(lambda conn: conn.execute(
            "SELECT git_commit FROM flow_origins WHERE version = ?", (version,)).fetchone())
        return found[0] if found else None
