"""The connector interface: the error type every connector raises and the protocol it implements.

A connector does the real I/O of one CONNECTION execution. The engine calls ``run`` in a worker
thread, outside any flow handler, and records the returned plain dict as the connection's output.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

import msgspec

_S = TypeVar("_S", bound="ParamSpec")

ENGINE_KEYS = ("retries", "retry_backoff", "timeout", "secrets")
"""Parameters the engine takes out (``retry.policy_from_params``) before a connector sees them."""


class ConnectorError(Exception):
    """A connector call failed; the message says what happened and what to do.

    Attributes:
        message: Human-readable explanation, free of secrets.
        retryable: True when the same call may succeed later (network trouble, timeouts,
            5xx/429 answers, locked databases); False for bad parameters and refusals.
        details: Plain, msgpack-serialisable facts about the failure (status code, body excerpt).
    """

    def __init__(self, message: str, *, retryable: bool, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """Return the error as plain data, suitable for recording in the history."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "retryable": self.retryable,
            "details": self.details,
        }


@runtime_checkable
class Connector(Protocol):
    """One connector type, such as ``REST``; instances must be safe to call from many threads."""

    name: str

    def run(
        self, params: dict[str, Any], *, idempotency_key: str, timeout: float | None
    ) -> dict[str, Any]:
        """Do the I/O described by ``params`` and return a msgpack-serialisable dict.

        Args:
            params: Connector parameters, already merged, env-resolved and without engine keys.
            idempotency_key: ``"{execution_id}:{seq}"``, the same on every attempt.
            timeout: Seconds allowed for this attempt; None means the connector's default.

        Raises:
            ConnectorError: On any failure, with ``retryable`` set.
        """
        ...


class ParamSpec(msgspec.Struct, forbid_unknown_fields=True):
    """Base for the typed parameters of a built-in connector (unknown keys are rejected)."""


def parse_params(connector: str, params: dict[str, Any], spec: type[_S]) -> _S:
    """Validate raw parameters against a connector's spec.

    Args:
        connector: Connector type name, used in the error message.
        params: The raw parameters.
        spec: The ``ParamSpec`` subclass describing the accepted parameters.

    Returns:
        The typed parameters.

    Raises:
        ConnectorError: Not retryable, naming the missing, unknown or mistyped parameter.
    """
    try:
        return msgspec.convert(params, spec)
    except msgspec.ValidationError as exc:
        known = ", ".join(spec.__struct_encode_fields__)
        hint = ""
        if any(key in params for key in ENGINE_KEYS):
            hint = " (retries, retry_backoff, timeout and secrets are taken out by retry.policy_from_params)"
        raise ConnectorError(
            f"{connector} parameters are invalid: {exc}; accepted parameters are {known}{hint}",
            retryable=False,
            details={"connector": connector, "problem": str(exc)},
        ) from None


def excerpt(text: str | bytes, limit: int = 500) -> str:
    """Return at most ``limit`` characters of ``text`` for an error message or details."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."
