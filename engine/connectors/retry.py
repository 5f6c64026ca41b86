"""Retries of a connector call: the policy, its parameters, and the attempt loop."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import msgspec

from engine.connectors.base import Connector, ConnectorError

logger = logging.getLogger(__name__)

OnAttempt = Callable[[int, "dict[str, Any] | None", "ConnectorError | None", float], None]
"""Called after each attempt: (attempt number from 1, result or None, error or None, seconds)."""


class RetryPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How often and how patiently to retry a retryable connector failure.

    Attributes:
        retries: Extra attempts after the first one.
        backoff_initial: Delay in seconds before the first retry.
        backoff_max: Upper bound of any delay.
        multiplier: Growth factor of the delay from one retry to the next.
        jitter: Fraction of the delay that is random: the delay is drawn from
            ``[d * (1 - jitter), d]`` where ``d`` is the exponential delay.
    """

    retries: int = 0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("retries and backoff delays must not be negative")
        if self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("multiplier must be >= 1 and jitter between 0 and 1")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return the seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        exponential = self.backoff_initial * self.multiplier ** max(attempt - 1, 0)
        capped = min(self.backoff_max, exponential)
        return capped * (1 - self.jitter * rng.random())

    def retries_after(self, attempt: int, error: ConnectorError) -> bool:
        """Whether attempt number ``attempt`` (from 1), which failed with ``error``, is retried."""
        return error.retryable and attempt <= self.retries

    def gave_up(self, attempts: int, error: ConnectorError) -> str:
        """Why no further attempt follows ``attempts`` attempts that ended with ``error``,
        for the final error message."""
        made = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
        if not error.retryable:
            return f"{made}: this failure is not retryable"
        if self.retries == 0:
            return f"{made}: no retries were allowed (retries=0); set retries=N to retry a temporary failure"
        return (f"{made}: the retry budget (retries={self.retries}) is spent; raise retries or retry_backoff "
                "if the failure is temporary")


def policy_from_params(
    params: Mapping[str, Any],
) -> tuple[RetryPolicy, float | None, dict[str, Any]]:
    """Take the engine's keys out of connection parameters.

    ``retries`` (int), ``retry_backoff`` (seconds before the first retry, or a dict with any of
    ``initial``, ``max``, ``multiplier``, ``jitter``), ``timeout`` (seconds per attempt) and
    ``secrets`` (names to mask, see ``masking``) are removed; ``params`` itself is not modified.

    Returns:
        The retry policy, the per-attempt timeout (None when not given), the remaining parameters.

    Raises:
        ConnectorError: Not retryable, when one of these keys has a bad value.
    """
    remaining = dict(params)
    retries = remaining.pop("retries", 0)
    backoff = remaining.pop("retry_backoff", None)
    timeout = remaining.pop("timeout", None)
    remaining.pop("secrets", None)  # names to mask (engine.connectors.masking), not for the connector
    fields: dict[str, Any] = {"retries": retries}
    if isinstance(backoff, Mapping):
        names = {"initial": "backoff_initial", "max": "backoff_max"}
        fields.update({names.get(str(key), str(key)): value for key, value in backoff.items()})
    elif backoff is not None:
        fields["backoff_initial"] = backoff
    try:
        policy = msgspec.convert(fields, RetryPolicy)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConnectorError(
            f"invalid retry parameters: {exc}; use retries=<int >= 0> and retry_backoff=<seconds> "
            "or retry_backoff={'initial', 'max', 'multiplier', 'jitter'}",
            retryable=False,
            details={"retries": repr(retries), "retry_backoff": repr(backoff)},
        ) from None
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise ConnectorError(
            f"invalid timeout parameter {timeout!r}; use a positive number of seconds or leave "
            "it out",
            retryable=False,
            details={"timeout": repr(timeout)},
        )
    return policy, None if timeout is None else float(timeout), remaining


class Outcome(NamedTuple):
    """One attempt: the result, or the error; and how long it took in seconds."""

    result: dict[str, Any] | None
    error: ConnectorError | None
    seconds: float


def try_once(
    connector: Connector,
    params: dict[str, Any],
    *,
    idempotency_key: str,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Run ``connector`` once. A connector bug (any exception but ``ConnectorError``) and a
    result that cannot be recorded become non-retryable errors, so every attempt has an outcome."""
    started = clock()
    try:
        raw = connector.run(params, idempotency_key=idempotency_key, timeout=timeout)
        return Outcome(_checked(connector, raw), None, clock() - started)
    except ConnectorError as exc:
        error = exc
    except Exception as exc:  # a connector bug must still become a recorded attempt
        logger.exception("%s connector raised %s", connector.name, type(exc).__name__)
        error = ConnectorError(
            f"{connector.name} connector raised {type(exc).__name__}: {exc}; this is a bug in "
            "the connector, which should raise ConnectorError",
            retryable=False,
            details={"exception_type": type(exc).__name__},
        )
        error.__cause__ = exc
    return Outcome(None, error, clock() - started)


def run_with_retries(
    connector: Connector,
    params: dict[str, Any],
    *,
    idempotency_key: str,
    policy: RetryPolicy,
    timeout: float | None,
    on_attempt: OnAttempt,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Run a connector in this thread, retrying retryable failures with exponential backoff.

    For calls outside the engine (a connector's own tests, scripts): the engine runs a
    CONNECTION execution one attempt per activation instead, with each backoff a durable
    timer (``engine.connection_runner``). Both follow the same ``policy``.

    Args:
        connector: The connector to call.
        params: Its parameters, without the engine's keys.
        idempotency_key: Passed unchanged to every attempt.
        policy: How many retries and how long to wait between them.
        timeout: Seconds allowed per attempt.
        on_attempt: Called after every attempt, successful or not, before any backoff sleep.
        sleep: Waits between attempts (injected by tests).
        rng: Source of jitter; a fresh ``random.Random()`` by default.
        clock: Monotonic clock used to measure attempt durations.

    Returns:
        The connector's result, checked to be a msgpack-serialisable dict.

    Raises:
        ConnectorError: Immediately when not retryable, else the last error once retries are spent.
            Any other exception from the connector is wrapped in a non-retryable ConnectorError.
    """
    rng = rng or random.Random()
    attempt = 0
    while True:
        attempt += 1
        outcome = try_once(connector, params, idempotency_key=idempotency_key, timeout=timeout, clock=clock)
        on_attempt(attempt, outcome.result, outcome.error, outcome.seconds)
        if outcome.error is None:
            assert outcome.result is not None
            return outcome.result
        if not policy.retries_after(attempt, outcome.error):
            raise outcome.error
        wait = policy.delay(attempt, rng)
        logger.info(
            "%s attempt %d failed (%s); retrying in %.2fs", connector.name, attempt, outcome.error, wait
        )
        sleep(wait)


def _checked(connector: Connector, result: object) -> dict[str, Any]:
    try:
        if not isinstance(result, dict):
            raise TypeError(f"expected a dict, got {type(result).__name__}")
        msgspec.msgpack.encode(result)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ConnectorError(
            f"{connector.name} connector returned a value that cannot be recorded ({exc}); "
            "a connector must return a dict of str/int/float/bool/None/bytes/list/dict",
            retryable=False,
            details={"result_type": type(result).__name__},
        ) from None
    return result
