"""Hypothesis round-trips of the event log codec and of user values.

Strategies are derived from each body Struct's fields and type hints, so a new kind
or field in ``store.events`` is covered without editing this file.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import values
from store.events import (
    ALL_BODIES,
    Body,
    ErrorInfo,
    body_to_builtins,
    decode_body,
    encode_body,
    kind_of,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- user values: what msgpack keeps as it is ------------------------------------------

keys = st.text(max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
user_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """A strategy for one field type of an event body."""
    if hint is Any:
        return user_values
    if hint is str:
        return st.text(max_size=20)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if hint is float:
        return st.floats(allow_nan=False)
    if hint is type(None):
        return st.none()
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return struct_strategy(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([strategy_for(a) for a in args])
    if origin is list:
        return st.lists(strategy_for(args[0]), max_size=4)
    if origin is dict:
        return st.dictionaries(strategy_for(args[0]), strategy_for(args[1]), max_size=4)
    raise AssertionError(f"no strategy for field type {hint!r}: teach tests/test_codec.py about it")


def struct_strategy(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    fields = {f.name: strategy_for(f.type) for f in msgspec.structs.fields(cls)}
    return st.builds(cls, **fields)


def test_every_body_kind_is_covered_and_tagged_uniquely():
    kinds = [cls.__struct_config__.tag for cls in ALL_BODIES]
    assert len(kinds) == len(set(kinds)) == len(ALL_BODIES)
    assert {"started", "ended", "step", "failed", "sleep", "child", "wait", "wait_done"} <= set(kinds)
    for cls in ALL_BODIES:
        assert issubclass(cls, Body)
        assert cls.__struct_config__.array_like and cls.__struct_config__.frozen
        strategy_for(cls)  # every field type has a strategy


@pytest.mark.parametrize("cls", ALL_BODIES, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_body_round_trips(cls, data):
    body = data.draw(struct_strategy(cls))
    encoded = encode_body(body)
    decoded = decode_body(encoded)
    assert type(decoded) is cls
    assert decoded == body
    assert encode_body(decoded) == encoded  # canonical: re-encoding a decoded body gives the same bytes
    # the CLI's JSON view of any body is JSON
    shown = body_to_builtins(decoded)
    assert shown["kind"] == kind_of(body)
    json.dumps(shown)


@SETTINGS
@given(body=st.sampled_from(ALL_BODIES).flatmap(struct_strategy))
def test_decoding_one_kind_never_yields_another(body):
    decoded = decode_body(encode_body(body))
    assert (kind_of(decoded), decoded) == (kind_of(body), body)


def test_error_info_keeps_type_message_and_traceback():
    info = ErrorInfo("ValueError", "bad", "Traceback (most recent call last):\n  ...\nValueError: bad\n")
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(info), type=ErrorInfo) == info


def test_garbage_is_refused_not_misread():
    with pytest.raises(msgspec.DecodeError):
        decode_body(b"\x93\xa7unknown\x01\x02")
    with pytest.raises(msgspec.DecodeError):
        decode_body(b"not msgpack at all")


# -- user values ---------------------------------------------------------------------


@SETTINGS
@given(value=user_values)
def test_user_values_round_trip(value):
    assert values.decode(values.encode(value)) == value
    assert values.roundtrip(value) == value


nested_tuples = st.recursive(
    scalars, lambda inner: st.tuples(inner, inner) | st.lists(inner, max_size=3), max_leaves=8
)


def _lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


@SETTINGS
@given(value=nested_tuples)
def test_tuples_come_back_as_lists(value):
    assert values.roundtrip(value) == _lists(value)


def test_sets_come_back_as_lists_of_their_elements():
    got = values.roundtrip({"s": {3, 1, 2}, "f": frozenset({"b", "a"})})
    assert sorted(got["s"]) == [1, 2, 3] and sorted(got["f"]) == ["a", "b"]


def test_sets_are_recorded_in_sorted_order():
    """A set's hash order differs between processes; the recorded order must not."""
    words = {f"word{i:02}" for i in range(30)}
    assert values.roundtrip(words) == sorted(words)
    assert values.roundtrip({"mixed": {3, "a", (1, 2)}}) == {"mixed": [3, [1, 2], "a"]}  # by type, then repr


def test_resource_handles_are_recorded_as_references():
    class Handle:
        def __engine_ref__(self) -> dict[str, str]:
            return {"__engine_ref__": "setting", "name": "colour"}

    assert values.roundtrip({"h": Handle()}) == {"h": {"__engine_ref__": "setting", "name": "colour"}}


@pytest.mark.parametrize(
    "bad, says",
    [
        (object(), "a value of type object cannot be recorded"),
        ({"nested": [1, {"deeper": object()}]}, "type object"),
        (2**64, "int"),
        (lambda: 1, "type function"),
    ],
    ids=["object", "nested-object", "too-big-int", "function"],
)
def test_unrecordable_values_are_refused_clearly(bad, says):
    with pytest.raises(values.UnrecordableValueError) as caught:
        values.encode(bad)
    assert says in str(caught.value)


def test_values_over_the_size_limit_are_refused():
    with pytest.raises(values.UnrecordableValueError, match="MiB limit"):
        values.encode(b"x" * (values.MAX_VALUE_BYTES + 1))
    values.encode(b"x" * (values.MAX_VALUE_BYTES - 16))  # just under it is fine
