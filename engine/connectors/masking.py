"""What counts as a secret in connection parameters, and how it is masked.

One rule set serves everything that is recorded, shown or logged: connection inputs and
errors, stored connectors in ``engine connectors ls/show``, connector reads in a log.

A *secret name* (``is_secret_key``) contains auth, token, key, secret, passw(ord|d),
session, signature, credential or cookie, or has sig, pw, pwd, pass or sid as a word
(``DB_PASS``, ``sig``; not ``bypass``), or is listed in a ``secrets=[...]`` parameter
beside it. Masked as ``***``, at any depth:

- values under a secret name: dict keys, so HTTP headers and env variables too;
- in strings: URL passwords (``https://user:***@host``, and a token alone as userinfo),
  ``name=value`` pairs (query strings, ``PGPASSWORD=...``, ``--token=...``),
  ``"name": "value"`` (JSON text), ``Name: value`` lines and quoted strings (``-H 'X-Auth: ...'``),
  the word after a secret option (``--password X``, ``-p X``, ``--api-key X``) and the
  password of ``-u user:pw`` / ``--user user:pw``;
- in lists (command arguments): the element after a secret option, the password part
  of the element after ``-u``/``--user``.

A ``${env:NAME}`` reference holds no secret and is kept wherever it stands alone (or
after a scheme word, as in ``Bearer ${env:TOKEN}``); the worker resolves it when the
connector runs. To keep a positional value out of the record, write it as a reference.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.connectors.base import ConnectorError

MASK = "***"

#: ``${env:NAME}``; group 1 is the name as written (``ENV_NAME`` says whether it is valid).
ENV_REF = re.compile(r"\$\{env:([^}]*)\}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: The parameter that names more secret names: ``this.connect(..., secrets=["X-Tenant"])``.
SECRETS_PARAM = "secrets"

_SECRET_PARTS = ("auth", "token", "key", "secret", "passw", "session", "signature", "credential", "cookie")
_SECRET_NAMES = frozenset({"sig", "pw", "pwd", "pass", "sid"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_PASSWORD_OPTIONS = frozenset({"-p"})
_USER_OPTIONS = frozenset({"-u", "--user"})
#: What may surround ``${env:NAME}`` in a secret value and still be recorded: ``Bearer ${env:T}``.
_SCHEME_ONLY = re.compile(r"\s*(?:(?:bearer|basic|token|bot|digest|apikey)\s+)?[\s:]*", re.IGNORECASE)

_VALUE = r"""'[^']*'|"[^"]*"|[^&\s;,'"]+"""
_USERINFO = re.compile(r"(://)([^/@:\s]*)(?::([^@\s/?#]*))?@")
_PAIR = re.compile(r"(?<![\w.\-\[\]])([\w.\-\[\]]+)(=)(" + _VALUE + ")")
_JSON_PAIR = re.compile(r'"([^"\\]+)"(\s*:\s*)"((?:[^"\\]|\\.)*)"')
_HEADER_LINE = re.compile(r"^([ \t]*[A-Za-z][\w-]*)([ \t]*:[ \t]*)(\S.*?)[ \t]*$", re.MULTILINE)
_QUOTED_HEADER = re.compile(r"""(?<=['"])([A-Za-z][\w-]*)([ \t]*:[ \t]*)([^'"\n]+)""")
_OPTION = re.compile(r"(?<!\S)(-{1,2}[A-Za-z][\w-]*)([ \t]+)('[^']*'|\"[^\"]*\"|\S+)")
_USER_VALUE = re.compile(r"(?<!\S)(-u[ \t]*|--user[ \t=]+)('[^':]*:[^']*'|\"[^\":]*:[^\"]*\"|[^\s:]*:\S*)")
_TOKEN_LIKE = re.compile(r"(?=.*\d)[\w.~-]{16,}")


def is_secret_key(name: object, names: Iterable[str] = ()) -> bool:
    """Tell whether a parameter, header, query or option name looks like it holds a secret.

    Case-insensitive; leading dashes are ignored (``--api-key``). ``names`` adds names
    (from a ``secrets=[...]`` parameter) that count as secret too.
    """
    if _secret_name(str(name)):
        return True
    if names == ():  # the rules alone (every recorded argument's name): nothing more to compare
        return False
    text = str(name).strip().lstrip("-").lower()
    return any(text == str(extra).strip().lstrip("-").lower() for extra in names)


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    """Whether ``name`` is a secret name by the rules alone; cached, since the same
    parameter names come again with every recorded call."""
    raw = name.strip().lstrip("-")
    text = raw.lower()
    if any(part in text for part in _SECRET_PARTS):
        return True
    return any(word.lower() in _SECRET_NAMES for word in _WORD.findall(raw))  # DB_PASS, xSig, but not bypass


def listed_names(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The names listed by the ``secrets=[...]`` parameter of ``params`` (none if absent).

    Raises:
        ConnectorError: Not retryable, when it is not a list of strings.
    """
    listed = params.get(SECRETS_PARAM, [])
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        raise ConnectorError(
            f"secrets must be a list of parameter, header or option names to mask, not {type(listed).__name__}; "
            "write secrets=['X-Tenant', ...]",
            retryable=False,
            details={"parameter": SECRETS_PARAM},
        )
    return tuple(listed)


def mask_secrets(value: Any, names: Iterable[str] = ()) -> Any:
    """Return a copy of ``value`` safe to record, show or log (the rules are in the module
    docstring). ``names``: more secret names; a mapping's own ``secrets`` list adds to them
    for its contents (the list itself, names and not values, is kept)."""
    return _mask(value, tuple(names), False)


def _mask(value: Any, names: tuple[str, ...], secret: bool) -> Any:
    if isinstance(value, Mapping):
        listed = value.get(SECRETS_PARAM)
        if isinstance(listed, list) and all(isinstance(n, str) for n in listed):
            names = (*names, *listed)
        return {
            key: item if key == SECRETS_PARAM and item is listed else _mask(item, names, secret or is_secret_key(key, names))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [_mask(item, names, secret) for item in value]
        if not secret:
            _mask_option_values(value, items, names)
        return type(value)(items)
    if secret:
        return _masked_value(value)
    if isinstance(value, str):
        return _mask_text(value, names)
    return value


def _masked_value(value: Any) -> Any:
    """A value known to be secret: ``***``, unless empty or only ``${env:NAME}`` references."""
    if value is None or value == "":
        return value
    if isinstance(value, str) and ENV_REF.search(value):
        literal = ENV_REF.sub(lambda m: "" if ENV_NAME.fullmatch(m.group(1)) else m.group(0), value)
        if _SCHEME_ONLY.fullmatch(literal):
            return value
    return MASK


def _mask_option_values(raw: list[Any] | tuple[Any, ...], items: list[Any], names: tuple[str, ...]) -> None:
    """Command arguments: mask the element after a secret option (``--password X``) and
    the password in the element after ``-u``/``--user``."""
    for i, option in enumerate(raw[:-1]):
        if not isinstance(option, str) or not isinstance(raw[i + 1], str):
            continue
        if option in _USER_OPTIONS:
            user, colon, password = raw[i + 1].partition(":")
            if colon:
                items[i + 1] = f"{user}:{_masked_value(password)}"
        elif _is_secret_option(option, names):
            items[i + 1] = _masked_value(raw[i + 1])


def _is_secret_option(word: str, names: tuple[str, ...]) -> bool:
    if not word.startswith("-") or "=" in word:
        return False
    return word in _PASSWORD_OPTIONS or (len(word.lstrip("-")) > 1 and is_secret_key(word, names))


def _mask_text(text: str, names: tuple[str, ...]) -> str:
    """Secrets written inside a string: URLs, pairs, JSON, header lines, command lines."""

    def by_name(name_group: int, value_group: int) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            if not is_secret_key(match.group(name_group).strip(), names):
                return match.group(0)
            return _replaced(match, value_group, _masked_value(match.group(value_group)))

        return replace

    def option(match: re.Match[str]) -> str:
        if not _is_secret_option(match.group(1), names):
            return match.group(0)
        return _replaced(match, 3, _masked_value(match.group(3)))

    def user(match: re.Match[str]) -> str:
        quoted = match.group(2)[:1] if match.group(2)[:1] in "'\"" else ""
        name, _, password = match.group(2).strip("'\"").partition(":")
        return f"{match.group(1)}{quoted}{name}:{_masked_value(password)}{quoted}"

    text = _USERINFO.sub(_userinfo, text)
    text = _PAIR.sub(by_name(1, 3), text)
    text = _JSON_PAIR.sub(by_name(1, 3), text)
    text = _HEADER_LINE.sub(by_name(1, 3), text)
    text = _QUOTED_HEADER.sub(by_name(1, 3), text)
    text = _USER_VALUE.sub(user, text)
    return _OPTION.sub(option, text)


def _userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match.group(1), match.group(2), match.group(3)
    if password is not None:
        return f"{scheme}{user}:{_masked_value(password)}@"
    if _TOKEN_LIKE.fullmatch(user):  # https://ghp_0123...@github.com: the token is the user
        return f"{scheme}{_masked_value(user)}@"
    return match.group(0)


def _replaced(match: re.Match[str], group: int, new: str) -> str:
    """``match``'s text with ``group`` replaced by ``new``."""
    start, end = match.span(group)
    whole = match.group(0)
    offset = match.start(0)
    return whole[: start - offset] + new + whole[end - offset:]
