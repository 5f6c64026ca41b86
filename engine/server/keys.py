"""API tokens and webhook keys: made from 32 random bytes, shown once, stored as their
sha256 digest, and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import msgspec

from engine import git_actions
from engine.api import Engine
from engine.errors import EngineError, NotFoundError
from engine.git_sync import check_source
from store.access import AccessStore, NameTakenError, WebhookRow
from store.git_actions import GitSource, SyncOutcome

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class TokenInfo(msgspec.Struct, frozen=True):
    """What ``engine tokens ls`` shows of a token (never its secret nor its digest)."""

    name: str
    created_at: float
    revoked_at: float | None


class WebhookInfo(msgspec.Struct, frozen=True):
    """What ``engine webhooks ls`` shows of a webhook (never its key): the ``flow`` it
    starts, or (``flow`` None) the ``git`` source it syncs and how its ``last_sync`` ended."""

    name: str
    flow: str | None
    created_at: float
    action: str
    git: GitSource | None = None
    last_sync: SyncOutcome | None = None
    last_sync_summary: str | None = None


class KeyRefusedError(EngineError):
    """A request's token or webhook key is missing, wrong or revoked (the API answers 401)."""


def new_secret(prefix: str) -> str:
    """A fresh secret: ``prefix`` and 32 random bytes, URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The hex sha256 of ``secret``: what the database keeps instead of the secret."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Whether ``secret`` has ``stored_digest``, compared in constant time."""
    return hmac.compare_digest(digest(secret), stored_digest)


def check_name(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise EngineError(f"invalid {what} name {name!r}: use up to 64 letters, digits, '_', '-' and '.', "
                          "starting with a letter or digit")
    return name


# -- API tokens ----------------------------------------------------------------------


def create_token(engine: Engine, name: str) -> str:
    """A new API token named ``name``; returns the token (shown once, stored hashed)."""
    token = new_secret("eng_")
    try:
        AccessStore(engine.store).add_token(check_name(name, "token"), digest(token))
    except NameTakenError:
        raise EngineError(f"API token {name!r} exists; `engine tokens revoke {name}` first, or pick another name") from None
    return token


def list_tokens(engine: Engine) -> list[TokenInfo]:
    return [TokenInfo(t.name, t.created_at, t.revoked_at) for t in AccessStore(engine.store).tokens()]


def revoke_token(engine: Engine, name: str) -> None:
    """Revoke the token ``name``: requests with it are refused from now on."""
    if not AccessStore(engine.store).revoke_token(name):
        raise NotFoundError(f"no API token {name!r} in use; `engine tokens ls` lists them")


def token_name(engine: Engine, token: str) -> str:
    """The name of the API token ``token``; ``KeyRefusedError`` when it is unknown or revoked."""
    for row in AccessStore(engine.store).tokens():
        if matches(token, row.digest):
            if row.revoked_at is not None:
                raise KeyRefusedError(f"API token {row.name!r} was revoked; create a new one with "
                                      "`engine tokens create NAME`")
            return row.name
    raise KeyRefusedError("the API token is not valid; send `Authorization: Bearer TOKEN` with a token from "
                          "`engine tokens create NAME`")


# -- webhooks --------------------------------------------------------------------------


def create_webhook(engine: Engine, name: str, flow: str | None, git: GitSource | None = None) -> tuple[str, WebhookInfo]:
    """A webhook ``name`` that starts ``flow`` or syncs the flows of ``git`` (one of them);
    returns its key (shown once, stored hashed) and what ``list_webhooks`` shows of it."""
    if (flow is None) == (git is None):
        raise EngineError(f"webhook {name!r} needs one action: --flow FLOW or --git-sync REPO")
    if git is not None:
        git = check_source(git, f"webhook {name!r} was not created")
    elif engine.store.get_flow(flow or "") is None:
        raise NotFoundError(f"flow {flow!r} does not exist; register it with `engine flows sync DIR` first")
    key = new_secret("whk_")
    try:
        AccessStore(engine.store).add_webhook(check_name(name, "webhook"), flow or "", digest(key), git)
    except NameTakenError:
        raise EngineError(f"webhook {name!r} exists; `engine webhooks rm {name}` first, or pick another name") from None
    return key, next(w for w in list_webhooks(engine) if w.name == name)


def list_webhooks(engine: Engine) -> list[WebhookInfo]:
    return [WebhookInfo(w.name, None if w.git else w.flow, w.created_at,
                        git_actions.describe(w.git) if w.git else f"flow {w.flow}", w.git, w.last_sync,
                        git_actions.summary(w.last_sync) if w.last_sync else None)
            for w in AccessStore(engine.store).webhooks()]


def remove_webhook(engine: Engine, name: str) -> None:
    if not AccessStore(engine.store).remove_webhook(name):
        raise NotFoundError(f"no webhook {name!r}; `engine webhooks ls` lists them")


def webhook_for_key(engine: Engine, name: str, key: str | None) -> WebhookRow:
    """The webhook ``name`` if ``key`` is its key; ``NotFoundError`` or ``KeyRefusedError``."""
    found = AccessStore(engine.store).webhook(name)
    if found is None:
        raise NotFoundError(f"no webhook {name!r}; `engine webhooks ls` lists them")
    if not key:
        raise KeyRefusedError(f"webhook {name!r} needs its key: send it as the X-Engine-Webhook-Key header "
                              "(or ?key=); nothing was started")
    if not matches(key, found.digest):
        raise KeyRefusedError(f"wrong key for webhook {name!r}: nothing was started; `engine webhooks rm {name}` "
                              "and create it again for a new key")
    return found
