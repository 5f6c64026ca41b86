"""JSON in and out of the API: msgspec-encoded bodies, request bodies read with a size
limit and decoded into Structs, and errors as ``{"error": "one line"}``."""

from __future__ import annotations

import math
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from engine.errors import EngineError, NotFoundError
from engine.server.keys import KeyRefusedError
from store import values

T = TypeVar("T")

#: The largest request body the API and webhooks accept.
MAX_BODY = 1024 * 1024
#: The longest ``wait`` a request may ask for, in seconds.
MAX_WAIT = 3600.0


class Error(msgspec.Struct):
    """Every error the API answers: one line saying what happened and what to do."""

    error: str


class ApiError(Exception):
    """Answer ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _fallback(value: Any) -> str:
    return repr(value)


_encoder = msgspec.json.Encoder(enc_hook=_fallback)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``data`` (builtins or Structs) as a JSON response."""
    return Response(_encoder.encode(data), status, headers, media_type="application/json")


def encode(data: Any) -> bytes:
    return _encoder.encode(data)


def error_response(status: int, message: str) -> Response:
    return json_response(Error(message.replace("\n", " ")), status)


def engine_error(exc: EngineError, status: int = 400) -> ApiError:
    """The API error for an engine error: 404 for unknown things, 401 for refused keys,
    else ``status`` (409 for operations the execution's state refuses)."""
    code = 404 if isinstance(exc, NotFoundError) else 401 if isinstance(exc, KeyRefusedError) else status
    return ApiError(code, str(exc))


async def read_body(request: Request) -> bytes:
    """The request body, refused (413) beyond ``MAX_BODY`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, f"the request body is larger than {MAX_BODY} bytes ({declared}); send less")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, f"the request body is larger than {MAX_BODY} bytes; send less")
    return bytes(body)


async def read_json(request: Request, type_: type[T], *, empty_ok: bool = False) -> T:
    """The JSON body decoded as ``type_``: 400 when it is not JSON, 422 when it does not fit."""
    body = await read_body(request)
    if not body.strip() and empty_ok:
        body = b"{}"
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise ApiError(422, f"the request body does not fit: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc}); send a JSON object") from None
    except RecursionError:
        raise ApiError(422, f"the JSON body is nested too deeply; values may nest at most {values.MAX_NESTING} "
                            "lists or dicts deep") from None


def wait_seconds(text: str | None) -> float | None:
    """A ``?wait=SECONDS`` value: a number from 0 to ``MAX_WAIT``, or None when absent."""
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ApiError(422, f"?wait= must be a number of seconds from 0 to {MAX_WAIT:g}, not {text!r}") from None
    check_wait(seconds)
    return seconds


def check_wait(seconds: float | None) -> None:
    if seconds is not None and not (math.isfinite(seconds) and 0 <= seconds <= MAX_WAIT):
        raise ApiError(422, f"wait must be a number of seconds from 0 to {MAX_WAIT:g}, not {seconds!r}")


def query_int(request: Request, name: str, default: int, minimum: int = 0) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.strip().isdigit() or int(text) < minimum:
        raise ApiError(422, f"?{name}= must be a whole number of at least {minimum}, not {text!r}")
    return int(text)
