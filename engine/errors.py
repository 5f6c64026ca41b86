"""Failures as data: turning exceptions into ``ErrorInfo`` and back."""

from __future__ import annotations

import builtins
import importlib
import sys
import traceback
from types import TracebackType
from typing import Any, NamedTuple

import flow_api
from flow_api.exceptions import InvalidInputError
from store import values
from store.events import ErrorInfo

#: The longest text recorded as a log line, an end message or an error message.
MAX_TEXT = 64 * 1024


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, keeping its start and its end; lone
    surrogates (bytes decoded with ``surrogateescape``) are written as ``\\udcXX``."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    keep = (limit - 40) // 2
    return f"{text[:keep]} … [{len(text) - 2 * keep} characters left out] … {text[-keep:]}"


#: Attributes builtin exceptions keep outside ``__dict__`` that their ``args`` do not
#: restore. (``AttributeError.obj``, the object it names, is not recorded.)
_SLOTS: dict[type[BaseException], tuple[str, ...]] = {
    OSError: ("filename", "filename2"),
    ImportError: ("name", "path"),
    NameError: ("name",),
    AttributeError: ("name",),
}

_PLAIN = (str, int, float, bool, bytes, type(None))


def text_of(value: object) -> str:
    """``str(value)``, or a placeholder when its ``__str__`` fails (a flow's exception
    class may render badly: that must not stop the engine from recording it)."""
    try:
        return str(value)
    except Exception as failure:
        return f"<str() of this {type(value).__name__} failed: {type(failure).__name__}>"


def error_info(exc: BaseException, module_globals: dict[str, Any] | None = None) -> ErrorInfo:
    """Record ``exc`` as type name, message and traceback text (flow frames only when
    ``module_globals`` names the flow's module), with its args and attributes when all
    of them are plain values (else only its message)."""
    tb = exc.__traceback__
    if module_globals is not None:
        tb = _from_flow_frames(tb, module_globals)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    args: list[Any] = []
    attributes: dict[str, Any] | None = None
    if _unfaithful(exc) is None:
        args, attributes = list(exc.args), _attributes(exc)
    return ErrorInfo(_type_name(type(exc)), shorten(text_of(exc)), shorten(text), args, attributes)


class StepFailure(NamedTuple):
    """What to record of a step's failure, and the error raised instead when the step's
    own error could not be raised again as it is on replay."""

    info: ErrorInfo
    refused: InvalidInputError | None


def step_failure(
    execution_id: str, step: str, exc: BaseException, module_globals: dict[str, Any] | None
) -> StepFailure:
    """Record a step's error so a replay raises the same class with the same args and
    attributes; refuse, with an error naming the class and the value, what it could not."""
    problem = _unfaithful(exc) or _unfindable(type(exc), module_globals)
    if problem is None:
        return StepFailure(error_info(exc), None)
    refused = InvalidInputError(
        f"execution {execution_id}: step {step!r} raised {_type_name(type(exc))}({shorten(text_of(exc), 200)!r}), "
        f"which a replay could not raise again as it is: {problem}. Keep plain values (dict, list, str, int, "
        "float, bool, None, bytes) in the error's arguments and attributes and define its class at the top "
        "level of a module, or catch it in the step and raise one that does."
    )
    refused.__cause__ = exc
    return StepFailure(error_info(refused), refused)


def _type_name(cls: type[BaseException]) -> str:
    if cls.__module__ in ("builtins", "flow_api.exceptions"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _slots(cls: type[BaseException]) -> tuple[str, ...]:
    return next((names for base, names in _SLOTS.items() if issubclass(cls, base)), ())


def _attributes(exc: BaseException) -> dict[str, Any]:
    found = {name: value for name in _slots(type(exc)) if (value := getattr(exc, name)) is not None}
    found.update(getattr(exc, "__dict__", {}))
    return found


def _unfaithful(exc: BaseException) -> str | None:
    """Why ``exc`` could not be recorded as plain values, or None."""
    for i, arg in enumerate(exc.args):
        why = _not_plain(arg)
        if why:
            return f"its argument {i + 1} {why}"
    for name, value in _attributes(exc).items():
        why = _not_plain(value)
        if why:
            return f"its attribute {name!r} {why}"
    try:
        values.encode([list(exc.args), _attributes(exc)])
    except values.UnrecordableValueError as error:
        return f"its arguments or attributes cannot be recorded ({error})"
    return None


def _not_plain(value: Any) -> str:
    if type(value) in _PLAIN:
        return ""
    if type(value) is list:
        return next((why for v in value if (why := _not_plain(v))), "")
    if type(value) is dict:
        for key, item in value.items():
            why = _not_plain(key) or _not_plain(item)
            if why:
                return why
        return ""
    return f"holds a value of type {type(value).__qualname__}"


def _unfindable(cls: type[BaseException], module_globals: dict[str, Any] | None) -> str | None:
    if _find_class(_type_name(cls), module_globals) is cls:
        return None
    if "<locals>" in cls.__qualname__:
        return f"its class {cls.__qualname__} is defined inside a function, where a replay cannot find it"
    return f"its class cannot be found by its name {_type_name(cls)!r}"



def _from_flow_frames(tb: TracebackType | None, module_globals: dict[str, Any]) -> TracebackType | None:
    start = tb
    while start is not None and start.tb_frame.f_globals is not module_globals:
        start = start.tb_next
    return start or tb


def rebuild_error(info: ErrorInfo, module_globals: dict[str, Any] | None = None) -> Exception:
    """The recorded exception as an instance of its original type where that type is a
    builtin, a flow_api error, defined in the flow (``module_globals``) or importable,
    with its recorded args and attributes; else ``flow_api.EngineException``."""
    cls = _find_class(info.type, module_globals)
    if cls is None:
        return flow_api.EngineException(f"{info.type}: {info.message}")
    if info.attributes is None:  # recorded with its message only
        exc: Exception = cls.__new__(cls)
        Exception.__init__(exc, *(info.args or [info.message]))
        return exc
    args = tuple(info.args)
    try:
        exc = cls(*args)
    except Exception:  # an __init__ that takes other arguments than it passes on: state only
        exc = cls.__new__(cls, *args)
    exc.args = args
    slots = _slots(cls)
    if hasattr(exc, "__dict__"):
        exc.__dict__.clear()
    for name, value in info.attributes.items():
        if name in slots:
            setattr(exc, name, value)
        else:
            exc.__dict__[name] = value
    return exc


def _find_class(name: str, module_globals: dict[str, Any] | None = None) -> type[Exception] | None:
    module_name, _, qualname = name.rpartition(".")
    if not module_name:
        found = getattr(flow_api, name, None) or getattr(builtins, name, None)
    elif module_globals is not None and module_globals.get("__name__") == module_name:
        found = module_globals.get(qualname)
    else:
        found = getattr(sys.modules.get(module_name) or _import(module_name), qualname, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return None


def _import(module_name: str) -> Any:
    """The module a recorded error's class lives in, imported when a replay needs it
    (the step that imported it live does not run again)."""
    try:
        return importlib.import_module(module_name)
    except Exception:
        return None


class EngineError(Exception):
    """A user-facing error outside any flow (unknown id, bad flow file...): the message
    says what happened and what to do. The CLI prints it on one line."""


class NotFoundError(EngineError):
    """What an id or name refers to does not exist (the API answers 404)."""
