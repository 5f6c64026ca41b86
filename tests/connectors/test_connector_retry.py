"""Retry policy, its parameters, and the attempt loop (with small in-test connectors)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.connectors import ConnectorError, RetryPolicy, policy_from_params, run_with_retries


class Scripted:
    """A connector that plays a list of outcomes: dicts are returned, exceptions raised."""

    name = "SCRIPTED"

    def __init__(self, *outcomes: Any):
        self.outcomes = list(outcomes)
        self.calls: list[tuple[dict[str, Any], str, float | None]] = []

    def run(self, params: dict[str, Any], *, idempotency_key: str, timeout: float | None) -> Any:
        self.calls.append((params, idempotency_key, timeout))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def flaky() -> ConnectorError:
    return ConnectorError("flaky", retryable=True)


def run(connector: Scripted, retries: int = 2, **kwargs: Any) -> tuple[Any, list[Any], list[Any]]:
    attempts: list[Any] = []
    sleeps: list[float] = []
    kwargs.setdefault("rng", random.Random(0))
    try:
        result: Any = run_with_retries(
            connector,
            {"p": 1},
            idempotency_key="e:4",
            policy=RetryPolicy(retries=retries, backoff_initial=1.0, backoff_max=3.0),
            timeout=2.5,
            on_attempt=lambda *attempt: attempts.append(attempt),
            sleep=sleeps.append,
            **kwargs,
        )
    except ConnectorError as exc:
        result = exc
    return result, attempts, sleeps


def test_success_after_retryable_failures_reports_every_attempt():
    ticks = iter(range(100))
    connector = Scripted(flaky(), flaky(), {"ok": True})
    result, attempts, sleeps = run(connector, clock=lambda: float(next(ticks)))
    assert result == {"ok": True}
    assert [(n, out, err is None, seconds) for n, out, err, seconds in attempts] == [
        (1, None, False, 1.0),
        (2, None, False, 1.0),
        (3, {"ok": True}, True, 1.0),
    ]
    assert {call[1:] for call in connector.calls} == {("e:4", 2.5)}
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_exhausted_retries_raise_the_last_error():
    last = ConnectorError("third", retryable=True)
    result, attempts, sleeps = run(Scripted(flaky(), flaky(), last))
    assert result is last
    assert len(attempts) == 3 and len(sleeps) == 2


def test_non_retryable_error_is_raised_at_once():
    fatal = ConnectorError("bad params", retryable=False)
    result, attempts, sleeps = run(Scripted(fatal, {"never": "reached"}))
    assert result is fatal
    assert len(attempts) == 1 and attempts[0][2] is fatal and sleeps == []


def test_unexpected_exception_becomes_a_non_retryable_error():
    result, attempts, _ = run(Scripted(KeyError("x")))
    assert isinstance(result, ConnectorError) and not result.retryable
    assert "SCRIPTED connector raised KeyError" in result.message
    assert isinstance(result.__cause__, KeyError)
    assert attempts[0][2] is result


@pytest.mark.parametrize("bad", [["not", "a", "dict"], {"when": object()}])
def test_unrecordable_result_is_an_error(bad):
    result, _, _ = run(Scripted(bad))
    assert isinstance(result, ConnectorError) and not result.retryable
    assert "cannot be recorded" in result.message


@given(
    attempt=st.integers(1, 40),
    initial=st.floats(0, 10),
    maximum=st.floats(0, 100),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_delay_is_capped_exponential_with_jitter_below(attempt, initial, maximum, jitter, seed):
    policy = RetryPolicy(retries=1, backoff_initial=initial, backoff_max=maximum, jitter=jitter)
    delay = policy.delay(attempt, random.Random(seed))
    ceiling = min(maximum, initial * 2.0 ** (attempt - 1))
    assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9


def test_policy_from_params_takes_the_engine_keys_out():
    params = {"url": "u", "retries": 3, "retry_backoff": {"initial": 1, "max": 4}, "timeout": 9}
    policy, timeout, rest = policy_from_params(params)
    assert policy == RetryPolicy(retries=3, backoff_initial=1.0, backoff_max=4.0)
    assert timeout == 9.0
    assert rest == {"url": "u"}
    assert "retries" in params
    assert policy_from_params({"retry_backoff": 0.1})[0].backoff_initial == 0.1
    assert policy_from_params({}) == (RetryPolicy(), None, {})


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": "3"}, "retries"),
        ({"retry_backoff": {"jitter": 2}}, "jitter"),
        ({"retry_backoff": {"speed": 2}}, "speed"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "5s"}, "timeout"),
    ],
)
def test_bad_retry_params_are_named(params, named):
    with pytest.raises(ConnectorError) as caught:
        policy_from_params(params)
    assert not caught.value.retryable
    assert named in caught.value.message
