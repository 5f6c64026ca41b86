"""Failures as data: turning exceptions into ``ErrorInfo`` and back."""

from __future__ import annotations

import builtins
import sys
import traceback
from types import TracebackType
from typing import Any

import flow_api
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


def error_info(exc: BaseException, module_globals: dict[str, Any] | None = None) -> ErrorInfo:
    """Record ``exc`` as type name, message and traceback text (flow frames only when
    ``module_globals`` names the flow's module)."""
    tb = exc.__traceback__
    if module_globals is not None:
        tb = _from_flow_frames(tb, module_globals)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ in ("builtins", "flow_api.exceptions") else f"{cls.__module__}.{cls.__qualname__}"
    args = list(exc.args) if all(isinstance(a, (str, int, float, bool, type(None))) for a in exc.args) else []
    args = [shorten(a) if isinstance(a, str) else a for a in args]
    return ErrorInfo(name, shorten(str(exc)), shorten(text), args if len(repr(args)) <= MAX_TEXT else [])


def _from_flow_frames(tb: TracebackType | None, module_globals: dict[str, Any]) -> TracebackType | None:
    start = tb
    while start is not None and start.tb_frame.f_globals is not module_globals:
        start = start.tb_next
    return start or tb


def rebuild_error(info: ErrorInfo, module_globals: dict[str, Any] | None = None) -> Exception:
    """The recorded exception as an instance of its original type where that type is a
    builtin, a flow_api error, defined in the flow (``module_globals``) or already
    imported; else ``flow_api.EngineException``."""
    cls = _find_class(info.type, module_globals)
    if cls is None:
        exc: Exception = flow_api.EngineException(f"{info.type}: {info.message}")
    else:
        exc = cls.__new__(cls)
        Exception.__init__(exc, *(info.args or [info.message]))
    exc.recorded_traceback = info.traceback  # type: ignore[attr-defined]
    return exc


def _find_class(name: str, module_globals: dict[str, Any] | None = None) -> type[Exception] | None:
    module_name, _, qualname = name.rpartition(".")
    if not module_name:
        found = getattr(flow_api, name, None) or getattr(builtins, name, None)
    elif module_globals is not None and module_globals.get("__name__") == module_name:
        found = module_globals.get(qualname)
    else:
        module = sys.modules.get(module_name)
        found = getattr(module, qualname, None) if module else None
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return None


class EngineError(Exception):
    """A user-facing error outside any flow (unknown id, bad flow file...): the message
    says what happened and what to do. The CLI prints it on one line."""


class NotFoundError(EngineError):
    """What an id or name refers to does not exist (the API answers 404)."""
