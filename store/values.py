"""Encoding of user values (inputs, outputs, step results, settings, messages) as
msgpack, and the limits every recorded value must keep.

The limits are declared here once; every place that records a user value goes through
``encode``/``roundtrip`` (or ``check_seconds`` for a duration) and so refuses the same
values with the same reason. A caller prefixes the reason with what was refused.

Flow API resource handles (settings, flows, executions) are recorded as references:
any object with an ``__engine_ref__()`` method is stored as the dict it returns.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

#: Largest encoded value accepted (an input, an output, a step result, a setting, a
#: message's text).
MAX_VALUE_BYTES = 16 * 1024 * 1024

#: Deepest nesting of lists and dicts inside one value (the inputs or outputs dict
#: itself counts as one level).
MAX_NESTING = 100

#: Longest duration accepted by ``this.sleep`` and by message and wait timeouts: 10 years.
MAX_SECONDS = 10 * 365 * 24 * 3600

_CONTAINERS = (dict, list, tuple, set, frozenset)


class UnrecordableValueError(ValueError):
    """A value cannot be recorded: not serialisable, too large, too deep, or invalid text."""


def _enc_hook(obj: Any) -> Any:
    ref = getattr(obj, "__engine_ref__", None)
    if ref is not None:
        return ref()
    raise TypeError(
        f"a value of type {type(obj).__name__} cannot be recorded; use JSON-like values "
        "(dict, list, str, int, float, bool, None, bytes) or a flow_api resource handle"
    )


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_decoder = msgspec.msgpack.Decoder()


def _sets_sorted(value: Any) -> Any:
    """Sets become lists in a stable order (msgspec would keep the hash order, which
    differs between processes, so a replay could see another order)."""
    if isinstance(value, (set, frozenset)):
        return sorted((_sets_sorted(v) for v in value), key=lambda v: (type(v).__name__, repr(v)))
    if isinstance(value, dict):
        return {k: _sets_sorted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sets_sorted(v) for v in value]
    return value


def _walk(value: Any) -> bool:
    """Check the nesting limit without recursion (a value nested thousands deep, or one
    that contains itself, must not raise RecursionError); True when it holds a set."""
    has_set = False
    stack = [(value, 1)] if isinstance(value, _CONTAINERS) else []
    while stack:
        container, depth = stack.pop()
        if depth > MAX_NESTING:
            raise UnrecordableValueError(
                f"a value nested more than {MAX_NESTING} lists or dicts deep exceeds the nesting limit of "
                f"{MAX_NESTING}; flatten it, or store it elsewhere and record a reference to it"
            )
        has_set = has_set or isinstance(container, (set, frozenset))
        items = container.values() if isinstance(container, dict) else container
        stack.extend((v, depth + 1) for v in items if isinstance(v, _CONTAINERS))
    return has_set


def encode(value: Any) -> bytes:
    """Encode a user value; raises ``UnrecordableValueError`` with a clear reason when it cannot."""
    if isinstance(value, _CONTAINERS) and _walk(value):
        value = _sets_sorted(value)
    try:
        data = _encoder.encode(value)
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end] if isinstance(exc.object, str) else ""
        raise UnrecordableValueError(
            f"text {bad!r} is not valid Unicode (a lone surrogate, from bytes decoded with "
            "errors='surrogateescape'); decode bytes with errors='replace', or keep them as bytes"
        ) from None
    except (TypeError, msgspec.EncodeError, OverflowError) as exc:
        raise UnrecordableValueError(str(exc)) from None
    if len(data) > MAX_VALUE_BYTES:
        raise UnrecordableValueError(
            f"a value of {len(data) / 1e6:.1f} MB exceeds the {MAX_VALUE_BYTES // 2**20} MiB limit "
            "for one recorded value; store large data elsewhere and record a reference to it"
        )
    return data


def canonical(value: Any) -> bytes:
    """One encoding for equal values, whatever their order in memory: dict items sorted
    by key, set members sorted (both by their own canonical encoding, so mixed types
    sort too), tuples as lists. Equal values give equal bytes in every process, whatever
    its ``PYTHONHASHSEED``. Raises ``UnrecordableValueError`` for a value with no encoding."""
    try:
        return _encoder.encode(_canonical_tree(value))
    except (TypeError, msgspec.EncodeError, OverflowError, RecursionError) as exc:
        raise UnrecordableValueError(str(exc)) from None


def _canonical_tree(value: Any) -> Any:
    if isinstance(value, (str, int, float, bytes, type(None))):
        return value
    if isinstance(value, dict):
        items = sorted(((canonical(k), k, _canonical_tree(v)) for k, v in value.items()), key=lambda t: t[0])
        return {k: v for _, k, v in items}
    if isinstance(value, (set, frozenset)):
        return [v for _, v in sorted(((canonical(v), _canonical_tree(v)) for v in value), key=lambda t: t[0])]
    if isinstance(value, (list, tuple)):
        return [_canonical_tree(v) for v in value]
    ref = getattr(value, "__engine_ref__", None)
    return _canonical_tree(ref()) if ref is not None else value


def decode(data: bytes | None) -> Any:
    return None if data is None else _decoder.decode(data)


def roundtrip(value: Any) -> Any:
    """The value as a replay will see it (tuples become lists, handles references)."""
    return _decoder.decode(encode(value))


def check_seconds(seconds: Any, what: str) -> float:
    """``seconds`` as a float if it is a finite number from 0 to ``MAX_SECONDS``;
    else ``UnrecordableValueError`` saying what ``what`` accepts."""
    number = seconds if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else math.nan
    if not 0 <= number <= MAX_SECONDS:  # also false for nan
        raise UnrecordableValueError(
            f"{what} must be a number of seconds from 0 to {MAX_SECONDS} (10 years), not {seconds!r}"
        )
    return float(number)
