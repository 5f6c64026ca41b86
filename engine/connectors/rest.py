"""REST connector: one HTTP request through the standard library's urllib."""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from typing import Any

import msgspec

from engine.connectors.base import ConnectorError, ParamSpec, excerpt, parse_params
from engine.connectors.masking import mask_secrets

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TEXT_TYPES = ("text/", "application/xml", "application/javascript", "+xml")


class RestParams(ParamSpec):
    """Parameters of the REST connector."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = {}
    params: dict[str, Any] | list[list[Any]] = {}
    json: Any | msgspec.UnsetType = msgspec.UNSET
    data: Any = None  # str, bytes or a dict sent as a form (msgspec has no str | bytes union)
    verify: bool = True


class RestConnector:
    """Send one HTTP request; 2xx/3xx answers are results, other answers are errors.

    Output: ``{"status_code", "url", "headers", "json" | "text" | "content"}`` (secrets in the url
    and headers masked, as ``Set-Cookie``): ``json`` for a
    JSON content type, ``text`` for other text types, ``content`` (bytes) for anything else.
    The header ``Idempotency-Key`` is always sent.
    """

    name = "REST"

    def run(
        self, params: dict[str, Any], *, idempotency_key: str, timeout: float | None
    ) -> dict[str, Any]:
        """Send the request described by ``params``; see the class docstring."""
        spec = parse_params(self.name, params, RestParams)
        method = spec.method.upper()
        url = _with_query(spec.url, spec.params)
        where = f"REST {method} {mask_secrets(url)}"
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectorError(
                f"{where} cannot be sent: the url must be http:// or https:// and name a host",
                retryable=False,
                details={"url": mask_secrets(url)},
            )
        request = urllib.request.Request(url, data=_body(spec, where), method=method)
        request.add_header("Idempotency-Key", idempotency_key)
        if spec.json is not msgspec.UNSET:
            request.add_header("Content-Type", "application/json")
        for name, value in spec.headers.items():
            request.add_header(name, value)
        context = ssl.create_default_context()
        if not spec.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        seconds = DEFAULT_TIMEOUT if timeout is None else timeout
        try:
            with urllib.request.urlopen(request, timeout=seconds, context=context) as response:
                body = response.read()
                status, headers, final_url = response.status, response.headers, response.url
        except urllib.error.HTTPError as exc:
            raise _status_error(where, exc) from None
        except ValueError as exc:  # its text may quote a header value, so it is left out
            raise ConnectorError(
                f"{where} cannot be sent: {type(exc).__name__}, an invalid url, header name or "
                "header value (not retryable); check url and headers for spaces or line breaks",
                retryable=False,
                details={"error": type(exc).__name__},
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _transport_error(where, exc, seconds) from None
        logger.debug("%s -> %d (%d bytes)", where, status, len(body))
        return {
            "status_code": status,
            "url": mask_secrets(final_url),
            "headers": mask_secrets(_plain_headers(headers)),  # Set-Cookie: a session is a secret
            **_decode(body, headers),
        }


def _with_query(url: str, query: dict[str, Any] | list[list[Any]]) -> str:
    if not query:
        return url
    pairs = query.items() if isinstance(query, dict) else [tuple(pair) for pair in query]
    encoded = urllib.parse.urlencode(list(pairs), doseq=True)
    return f"{url}{'&' if '?' in url else '?'}{encoded}"


def _body(spec: RestParams, where: str) -> bytes | None:
    if spec.json is not msgspec.UNSET:
        if spec.data is not None:
            raise ConnectorError(
                f"{where} cannot be sent: give either json or data, not both",
                retryable=False,
                details={"parameters": ["json", "data"]},
            )
        try:
            return json.dumps(spec.json).encode()
        except (TypeError, ValueError) as exc:
            raise ConnectorError(
                f"{where} cannot be sent: the json parameter is not JSON-serialisable ({exc})",
                retryable=False,
                details={"parameter": "json"},
            ) from None
    if isinstance(spec.data, dict):
        return urllib.parse.urlencode(spec.data, doseq=True).encode()
    if isinstance(spec.data, str):
        return spec.data.encode()
    if spec.data is None or isinstance(spec.data, bytes):
        return spec.data
    raise ConnectorError(
        f"{where} cannot be sent: data must be a str, bytes or a dict (form fields), "
        f"not {type(spec.data).__name__}",
        retryable=False,
        details={"parameter": "data"},
    )


def _status_error(where: str, exc: urllib.error.HTTPError) -> ConnectorError:
    retryable = exc.code in _RETRYABLE_STATUS
    body = excerpt(exc.read() if exc.fp is not None else b"")
    details: dict[str, Any] = {"status_code": exc.code, "body": body}
    if exc.headers.get("Retry-After"):
        details["retry_after"] = exc.headers["Retry-After"]
    if retryable:
        advice = "the server is unavailable or throttling, so the same request may succeed later"
    else:
        advice = "the request was refused; fix the url, parameters or credentials"
    kind = "retryable" if retryable else "not retryable"
    return ConnectorError(
        f"{where} failed: HTTP {exc.code} {exc.reason} ({kind}); {advice}",
        retryable=retryable,
        details=details,
    )


def _transport_error(where: str, exc: BaseException, seconds: float) -> ConnectorError:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLCertVerificationError):
        return ConnectorError(
            f"{where} failed: TLS certificate verification failed ({reason.verify_message}) "
            "(not retryable); fix the server certificate or pass verify=False for a trusted host",
            retryable=False,
            details={"error": "certificate"},
        )
    if isinstance(reason, TimeoutError):
        what, advice = f"timed out after {seconds:g}s", "raise timeout if the server is slow"
    elif isinstance(reason, ConnectionRefusedError):
        what, advice = "connection refused", "check that the server is running"
    elif isinstance(reason, OSError) and "Name or service not known" in str(reason):
        what, advice = "host name could not be resolved", "check the host name in the url"
    else:
        what = f"{type(reason).__name__}: {reason}"
        advice = "check the network and the server"
    return ConnectorError(
        f"{where} failed: {what} (retryable); {advice}",
        retryable=True,
        details={"error": type(reason).__name__},
    )


def _plain_headers(headers: Message) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in headers.items():
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def _decode(body: bytes, headers: Message) -> dict[str, Any]:
    content_type = headers.get_content_type()
    charset = headers.get_content_charset() or "utf-8"
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return {"json": json.loads(body.decode(charset))}
        except (UnicodeDecodeError, LookupError, ValueError):
            logger.warning("response declared %s but is not valid JSON", content_type)
    elif not any(marker in content_type for marker in _TEXT_TYPES) and body:
        return {"content": body}
    try:
        return {"text": body.decode(charset, errors="replace")}
    except LookupError:
        return {"text": body.decode("utf-8", errors="replace")}
