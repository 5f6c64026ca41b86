"""Connector types by name: the built-ins and plugins from the ``engine.connectors`` entry points.

A plugin package declares, in its ``pyproject.toml``::

    [project.entry-points."engine.connectors"]
    S3 = "my_package.s3:S3Connector"

The object may be a class (instantiated without arguments) or a ready instance; either way it
must have a ``name`` and a ``run`` method as described by ``base.Connector``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.connectors.base import Connector, ConnectorError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "engine.connectors"

#: Built-in types as ``module:class``, imported on first use: a worker that never sends an
#: e-mail does not pay for importing smtplib (it keeps ``import engine`` and restarts fast).
_BUILTINS: dict[str, str] = {
    "COMMAND": "engine.connectors.command:CommandConnector",
    "GIT": "engine.connectors.git:GitConnector",
    "POSTGRES": "engine.connectors.postgres:PostgresConnector",
    "REST": "engine.connectors.rest:RestConnector",
    "SMTP": "engine.connectors.smtp:SmtpConnector",
    "SQLITE": "engine.connectors.sqlite:SqliteConnector",
}


def _builtin(connector_type: str) -> Callable[[], Connector]:
    module, _, name = _BUILTINS[connector_type].partition(":")
    factory: Callable[[], Connector] = getattr(importlib.import_module(module), name)
    return factory


def _plugins() -> dict[str, EntryPoint]:
    """Return the installed plugin entry points by upper-cased name; the first one wins."""
    from importlib.metadata import (
        entry_points,  # slow to import; only needed for plugins
    )

    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        name = entry.name.upper()
        if name in _BUILTINS:
            logger.warning("ignoring plugin %s (%s): a built-in has that name", name, entry.value)
        elif name in found:
            logger.warning(
                "ignoring plugin %s (%s): %s was found first", name, entry.value, found[name].value
            )
        else:
            found[name] = entry
    return found


def known_types() -> list[str]:
    """Return the connector type names that ``get_connector`` accepts, sorted and upper-cased."""
    return sorted({*_BUILTINS, *_plugins()})


def get_connector(connector_type: str) -> Connector:
    """Return a connector for a type name, case-insensitively.

    Built-ins come first; otherwise the entry points of the ``engine.connectors`` group are
    searched at every call, so a plugin installed while the engine runs is found.

    Raises:
        ConnectorError: Not retryable, for an unknown type (listing the known ones) or a plugin
            that cannot be loaded or does not look like a connector.
    """
    name = connector_type.upper()
    if name in _BUILTINS:
        return _builtin(name)()
    plugins = _plugins()
    entry = plugins.get(name)
    if entry is None:
        known = sorted({*_BUILTINS, *plugins})
        raise ConnectorError(
            f"unknown connector type {connector_type!r}; known types are {', '.join(known)}. "
            f"A plugin type needs a package declaring it in the {ENTRY_POINT_GROUP!r} entry "
            "point group",
            retryable=False,
            details={"connector_type": connector_type, "known_types": known},
        )
    where = f"connector plugin {name} ({entry.value})"
    try:
        loaded = entry.load()
        connector = loaded() if isinstance(loaded, type) else loaded
    except Exception as exc:
        raise ConnectorError(
            f"{where} cannot be loaded: {type(exc).__name__}: {exc}; check that its package "
            "is installed correctly in the engine's environment",
            retryable=False,
            details={"connector_type": name, "entry_point": entry.value},
        ) from exc
    if not isinstance(connector, Connector):
        raise ConnectorError(
            f"{where} is not a connector: it needs a name attribute and a run(params, *, "
            "idempotency_key, timeout) method; fix the plugin",
            retryable=False,
            details={"connector_type": name, "entry_point": entry.value},
        )
    return connector
