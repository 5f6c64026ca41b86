"""Who may use ``engine serve``: API tokens and webhooks, each stored by the sha256
digest of its secret (the secret itself is shown once and never stored)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec

from store.dialect import Conn, integrity_errors
from store.base import Store
from store.git_actions import GitSource, SyncOutcome, decode_outcome, encode_outcome, source_columns, source_of
from store.open import as_sql

_WEBHOOK_COLUMNS = "name, flow, digest, created_at, git_repo, git_ref, git_path, last_sync"


class TokenRow(msgspec.Struct, frozen=True):
    """An API token; ``revoked_at`` is set once it was revoked."""

    name: str
    digest: str
    created_at: float
    revoked_at: float | None


class WebhookRow(msgspec.Struct, frozen=True):
    """A webhook: ``POST /webhooks/{name}`` with the key whose digest is ``digest`` starts
    ``flow``, or (``git`` set, ``flow`` '') syncs the flows of ``git``; ``last_sync``: how
    its last sync ended."""

    name: str
    flow: str
    digest: str
    created_at: float
    git: GitSource | None = None
    last_sync: SyncOutcome | None = None


def _webhook(fields: Sequence[Any]) -> WebhookRow:
    name, flow, digest, created_at, git_repo, git_ref, git_path, last_sync = fields
    return WebhookRow(name, flow, digest, created_at, source_of(git_repo, git_ref, git_path), decode_outcome(last_sync))


class NameTakenError(ValueError):
    """A token or webhook of that name exists already (a ``ValueError``, so the store's
    transaction undoes the write and passes it on)."""


class AccessStore:
    """API tokens and webhooks in the engine's database."""

    def __init__(self, store: Store) -> None:
        self.store = as_sql(store, "API tokens and webhooks")

    # -- tokens --------------------------------------------------------------------

    def add_token(self, name: str, digest: str) -> None:
        """Store a new token; one revoked earlier under ``name`` is replaced.

        Raises:
            NameTakenError: a token named ``name`` is in use.
        """

        def write(conn: Conn) -> None:
            row = conn.execute("SELECT revoked_at FROM api_tokens WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] is None:
                raise NameTakenError(name)
            conn.execute("INSERT INTO api_tokens VALUES (?, ?, ?, NULL) ON CONFLICT(name) DO UPDATE SET "
                         "digest = excluded.digest, created_at = excluded.created_at, revoked_at = NULL", (name, digest, time.time()))

        self.store.transaction(write)  # a NameTakenError raised by write undoes it

    def tokens(self) -> list[TokenRow]:
        """Every token, revoked ones too, by name."""
        rows = self.store.read(lambda conn: conn.execute(
            "SELECT name, digest, created_at, revoked_at FROM api_tokens ORDER BY name").fetchall())
        return [TokenRow(*row) for row in rows]

    def revoke_token(self, name: str) -> bool:
        """Revoke the token ``name``; False when there is none in use by that name."""
        return self.store.transaction(lambda conn: conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (time.time(), name)
        ).rowcount == 1)

    # -- webhooks ------------------------------------------------------------------

    def add_webhook(self, name: str, flow: str, digest: str, git: GitSource | None = None) -> None:
        """Store a new webhook (``git``: its action is a git sync; ``flow`` is then '').

        Raises:
            NameTakenError: a webhook named ``name`` exists.
        """

        def write(conn: Conn) -> None:
            try:
                conn.execute(f"INSERT INTO webhooks ({_WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                             (name, flow, digest, time.time(), *source_columns(git)))
            except integrity_errors():
                raise NameTakenError(name) from None

        self.store.transaction(write)  # a NameTakenError raised by write undoes it

    def webhook(self, name: str) -> WebhookRow | None:
        row = self.store.read(lambda conn: conn.execute(
            f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE name = ?", (name,)).fetchone())
        return _webhook(row) if row else None

    def webhooks(self) -> list[WebhookRow]:
        rows = self.store.read(lambda conn: conn.execute(
            f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks ORDER BY name").fetchall())
        return [_webhook(row) for row in rows]

    def record_sync(self, name: str, digest: str, outcome: SyncOutcome) -> None:
        """Record how the git sync of webhook ``name`` ended (not on a webhook created anew
        under that name meanwhile: its key, so ``digest``, differs)."""
        self.store.transaction(lambda conn: conn.execute(
            "UPDATE webhooks SET last_sync = ? WHERE name = ? AND digest = ?", (encode_outcome(outcome), name, digest)))

    def remove_webhook(self, name: str) -> bool:
        """Delete the webhook ``name``; False when there is none."""
        return self.store.transaction(
            lambda conn: conn.execute("DELETE FROM webhooks WHERE name = ?", (name,)).rowcount == 1)
