"""SMTP connector: send one e-mail through smtplib."""

from __future__ import annotations

import email.utils
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import msgspec

from engine.connectors.base import ConnectorError, ParamSpec, parse_params

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
_NOT_IN_MESSAGE_ID = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


class SmtpParams(ParamSpec):
    """Parameters of the SMTP connector (``from_`` is accepted for ``from``)."""

    sender: str = msgspec.field(name="from")
    to: str | list[str]
    host: str = "localhost"
    port: int | None = None
    cc: str | list[str] = []
    bcc: str | list[str] = []
    subject: str = ""
    body: str = ""
    html: str | None = None
    use_tls: bool = False
    starttls: bool = False
    login: str | None = None
    password: str | None = None


class SmtpConnector:
    """Send a message; output ``{"accepted": [...], "refused": {...}, "message_id": str}``.

    ``use_tls`` connects with implicit TLS (default port 465), ``starttls`` upgrades a plain
    connection (default port 587); otherwise port 25. The ``Message-ID`` is derived from the
    idempotency key, so a message sent twice by a retry carries the same id and receivers can
    recognise the duplicate. Network failures and 4xx replies are retryable; 5xx replies and
    authentication failures are not.
    """

    name = "SMTP"

    def run(
        self, params: dict[str, Any], *, idempotency_key: str, timeout: float | None
    ) -> dict[str, Any]:
        """Build and send the message described by ``params``."""
        raw = dict(params)
        if "from_" in raw and "from" not in raw:
            raw["from"] = raw.pop("from_")
        spec = parse_params(self.name, raw, SmtpParams)
        port = spec.port or (465 if spec.use_tls else 587 if spec.starttls else 25)
        where = f"SMTP {spec.host}:{port}"
        try:
            message, recipients = _message(spec, idempotency_key)
        except ValueError as exc:
            raise ConnectorError(
                f"SMTP parameters are invalid: {exc}; check from, to, cc and subject",
                retryable=False,
            ) from None
        seconds = DEFAULT_TIMEOUT if timeout is None else timeout
        try:
            refused = _send(spec, port, seconds, message, recipients)
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectorError(
                f"{where}: login as {spec.login} was refused ({exc.smtp_code}) (not retryable); "
                "check login and password",
                retryable=False,
                details={"smtp_code": exc.smtp_code},
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {addr: code for addr, (code, _) in exc.recipients.items()}
            retryable = all(400 <= code < 500 for code in codes.values())
            raise ConnectorError(
                f"{where}: every recipient was refused ({codes}); check the addresses",
                retryable=retryable,
                details={"refused": codes},
            ) from None
        except smtplib.SMTPResponseException as exc:
            retryable = 400 <= exc.smtp_code < 500
            error = exc.smtp_error
            reply = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
            raise ConnectorError(
                f"{where}: the server replied {exc.smtp_code} {reply} "
                f"({'retryable' if retryable else 'not retryable'})",
                retryable=retryable,
                details={"smtp_code": exc.smtp_code},
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectorError(
                f"{where}: {exc} (not retryable); check use_tls/starttls against the server",
                retryable=False,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            what = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
            raise ConnectorError(
                f"{where}: sending failed: {what or type(exc).__name__} (retryable); check that "
                "the mail server is running and reachable",
                retryable=True,
                details={"error": type(exc).__name__},
            ) from None
        accepted = [address for address in recipients if address not in refused]
        logger.debug("%s accepted %d of %d recipients", where, len(accepted), len(recipients))
        return {
            "accepted": accepted,
            "refused": {address: reply[0] for address, reply in refused.items()},
            "message_id": str(message["Message-ID"]),  # a header object, not a plain str
        }


def _addresses(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _message(spec: SmtpParams, idempotency_key: str) -> tuple[EmailMessage, list[str]]:
    message = EmailMessage()
    message["From"] = spec.sender
    message["To"] = ", ".join(_addresses(spec.to))
    if spec.cc:
        message["Cc"] = ", ".join(_addresses(spec.cc))
    message["Subject"] = spec.subject
    message["Date"] = email.utils.formatdate(localtime=True)
    domain = email.utils.parseaddr(spec.sender)[1].rpartition("@")[2] or "localhost"
    local = _NOT_IN_MESSAGE_ID.sub(".", idempotency_key).strip(".") or "message"
    message["Message-ID"] = f"<engine.{local}@{domain}>"
    message["X-Idempotency-Key"] = idempotency_key
    message.set_content(spec.body)
    if spec.html is not None:
        message.add_alternative(spec.html, subtype="html")
    everyone = _addresses(spec.to) + _addresses(spec.cc) + _addresses(spec.bcc)
    recipients = [address for _, address in email.utils.getaddresses(everyone) if address]
    if not recipients:
        raise ConnectorError(
            "SMTP parameters are invalid: no recipient address in to, cc or bcc",
            retryable=False,
            details={"parameter": "to"},
        )
    return message, recipients


def _send(
    spec: SmtpParams, port: int, timeout: float, message: EmailMessage, recipients: list[str]
) -> dict[str, tuple[int, bytes]]:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if spec.use_tls:
        client = smtplib.SMTP_SSL(spec.host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(spec.host, port, timeout=timeout)
    with client:
        if spec.starttls:
            client.starttls(context=context)
        if spec.login is not None:
            client.login(spec.login, spec.password or "")
        sender = email.utils.parseaddr(spec.sender)[1] or spec.sender
        return client.send_message(message, from_addr=sender, to_addrs=recipients)
