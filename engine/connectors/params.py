"""Connection parameters: merging stored and inline values, resolving ``${env:NAME}`` references.

The intended order is: ``merge_params`` (stored connection, then inline overrides), record
``masking.mask_secrets`` of the result, then ``resolve_env`` just before the connector runs, so
resolved secrets never reach the history.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from engine.connectors.base import ConnectorError
from engine.connectors.masking import ENV_NAME, ENV_REF


def merge_params(stored: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge inline parameters over a stored connection's parameters.

    Inline values win. When both sides hold a dict under the same key (``headers``, ``env``), the
    two dicts are merged one level deep instead of replaced. Neither input is modified.

    Args:
        stored: Parameters saved with a named connection.
        overrides: Parameters passed inline to ``this.connect``.

    Returns:
        A new dict.
    """
    merged = dict(stored)
    for key, value in overrides.items():
        base = merged.get(key)
        if isinstance(base, Mapping) and isinstance(value, Mapping):
            merged[key] = {**base, **value}
        else:
            merged[key] = value
    return merged


def resolve_env(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace every ``${env:NAME}`` in strings, recursively through dicts, lists and tuples.

    Args:
        value: A parameter value or a whole parameter dict.
        environ: Variables to read; ``os.environ`` by default.

    Returns:
        A copy of ``value`` with references replaced; other values are returned as they are.

    Raises:
        ConnectorError: Not retryable, naming a variable that is unset or badly written.
    """
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        return ENV_REF.sub(lambda match: _lookup(match.group(1), env), value)
    if isinstance(value, Mapping):
        return {key: resolve_env(item, env) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(resolve_env(item, env) for item in value)
    return value


def _lookup(name: str, env: Mapping[str, str]) -> str:
    if not ENV_NAME.fullmatch(name):
        raise ConnectorError(
            f"invalid environment reference ${{env:{name}}}: a variable name is letters, digits "
            "and underscores, not starting with a digit; fix the connection parameters",
            retryable=False,
            details={"variable": name},
        )
    try:
        return env[name]
    except KeyError:
        raise ConnectorError(
            f"environment variable {name} is not set but the connection parameters use "
            f"${{env:{name}}}; set it in the environment of the worker process",
            retryable=False,
            details={"variable": name},
        ) from None
