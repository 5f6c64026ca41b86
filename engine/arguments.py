"""The arguments of a recorded call, as a replay checks them.

A command's identity is its kind, its name and its arguments. Each argument is
recorded as an ``Arg``: a name, a digest of its canonical encoding
(``store.values.canonical``: equal values give equal digests in any process, whatever
its ``PYTHONHASHSEED``) and a shortened form to name it in a diagnosis. A value that
has no encoding (a socket, a client object) is digested by its type only.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import reprlib
import types
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from engine.connectors import MASK, is_secret_key, mask_secrets
from store import values
from store.events import Arg, Event

#: How much of an argument's value a diagnosis shows.
MAX_SHOWN = 60

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = MAX_SHOWN
_repr.maxlevel = 3

#: Values a nested function or lambda may hold (a closure variable, a default) that
#: count as its arguments: plain and immutable, so the step function cannot change them.
_PLAIN = (str, int, float, bytes, type(None))
_NUMBERS = frozenset({int, float, bool, type(None)})


def argument(name: str, value: Any) -> Arg:
    """The recorded form of one argument."""
    try:
        data = values.canonical(value)
        # a recordable number's (or None's) text is short and holds nothing a mask could match
        shown = repr(value) if type(value) in _NUMBERS else _shown(value)
    except values.UnrecordableValueError:
        kind = type(value)
        data = f"<{kind.__module__}.{kind.__qualname__}>".encode()
        shown = f"<{kind.__qualname__} object>"
    if is_secret_key(name):
        shown = MASK
    elif len(shown) > MAX_SHOWN:
        shown = shown[: MAX_SHOWN - 3] + "..."
    return Arg(name, hashlib.blake2b(data, digest_size=8).hexdigest(), shown)


def _shown(value: Any) -> str:
    return str(mask_secrets(_repr.repr(_masked(value))))


def _masked(value: Any, secret: bool = False) -> Any:
    """The start of ``value`` (what a shortened form can show at most), with values
    under secret-looking keys masked; cut first, so a huge value costs nothing here."""
    if secret:
        return MASK
    if isinstance(value, str):
        return value[: MAX_SHOWN + 1]
    if isinstance(value, Mapping):
        return {k: _masked(v, is_secret_key(k)) for k, v in itertools.islice(value.items(), _repr.maxdict + 1)}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in itertools.islice(value, _repr.maxlist + 1)]
    return value


def mapping_arguments(mapping: Mapping[str, Any], label: str = "{}") -> list[Arg]:
    """One argument per key, sorted by key (the mapping's order does not matter);
    ``label`` formats the key into the argument's name."""
    return [argument(label.format(key), mapping[key]) for key in sorted(mapping, key=str)]


def step_arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[Arg]:
    """The arguments of ``this.step(fn, *args, **kwargs)``: positional ones by their
    parameter name, keyword ones sorted, those a ``functools.partial`` binds, and the
    plain values a lambda or nested function holds (closure variables, defaults), so
    ``this.step(lambda: fetch(name))`` is checked like ``this.step(fetch, name)``."""
    if isinstance(fn, functools.partial):
        args, kwargs = (*fn.args, *args), {**fn.keywords, **kwargs}
        fn = fn.func
    target = getattr(fn, "__func__", fn)  # a bound method: its function, without self
    code = getattr(target, "__code__", None)
    names: tuple[str, ...] = code.co_varnames[: code.co_argcount] if code is not None else ()
    if target is not fn:
        names = names[1:]
    found = [argument(names[i] if i < len(names) else f"args[{i}]", value) for i, value in enumerate(args)]
    if kwargs:
        found += mapping_arguments(kwargs)
    if isinstance(target, types.FunctionType) and ("<locals>" in target.__qualname__ or target.__name__ == "<lambda>"):
        found += _held(target)
    return found


def _held(fn: types.FunctionType) -> list[Arg]:
    held: dict[str, Any] = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            held[name] = cell.cell_contents
        except ValueError:  # a variable not bound yet
            continue
    positional = fn.__code__.co_varnames[: fn.__code__.co_argcount]
    held.update(zip(positional[len(positional) - len(fn.__defaults__ or ()):], fn.__defaults__ or ()))
    held.update(fn.__kwdefaults__ or {})
    return mapping_arguments({k: v for k, v in held.items() if _plain(v)}, "{} (held by the function)")


def _plain(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def unchecked(events: list[Event]) -> list[Event]:
    """``events`` without their recorded arguments, so a replay takes their outcomes
    over whatever the arguments are now (a fork given other inputs wants exactly that)."""
    return [
        msgspec.structs.replace(e, body=msgspec.structs.replace(e.body, args=None))
        if getattr(e.body, "args", None) is not None else e
        for e in events
    ]


def same(recorded: list[Arg] | None, new: list[Arg] | None) -> bool:
    """Whether a call's arguments match the recorded ones (always, for a log written
    before arguments were recorded)."""
    if recorded is None or new is None:
        return True
    return [(a.name, a.digest) for a in recorded] == [(a.name, a.digest) for a in new]


def difference(recorded: list[Arg], new: list[Arg]) -> str:
    """Which argument differs, shortened: ``name='bravo' where the history recorded name='alpha'``."""
    old = {a.name: a for a in recorded}
    now = {a.name: a for a in new}
    for arg in recorded:
        if arg.name not in now:
            return f"{arg.name} is no longer passed (the history recorded {arg.name}={arg.shown})"
        if now[arg.name].digest != arg.digest:
            return f"{arg.name}={now[arg.name].shown} where the history recorded {arg.name}={arg.shown}"
    added = [a for a in new if a.name not in old]
    if added:
        return f"{added[0].name}={added[0].shown} is passed now but was not in the recorded run"
    return "the arguments are in another order"
