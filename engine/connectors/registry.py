"""Connector types by name: the built-ins and plugins from the ``engine.connectors`` entry points.

A plugin package declares, in its ``pyproject.toml``::

    [project.entry-points."engine.connectors"]
    S3 = "my_package.s3:S3Connector"

The object may be a class (instantiated without arguments) or a ready instance; either way it
must have a ``name`` and a ``run`` method as described by ``base.Connector``.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable

from engine.connectors.base import Connector, ConnectorError
from engine.connectors.command import CommandConnector
from engine.connectors.git import GitConnector
from engine.connectors.postgres import PostgresConnector
from engine.connectors.rest import RestConnector
from engine.connectors.smtp import SmtpConnector
from engine.connectors.sqlite import SqliteConnector

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "engine.connectors"

_BUILTINS: dict[str, Callable[[], Connector]] = {
    "COMMAND": CommandConnector,
    "GIT": GitConnector,
    "POSTGRES": PostgresConnector,
    "REST": RestConnector,
    "SMTP": SmtpConnector,
    "SQLITE": SqliteConnector,
}


def _plugins() -> dict[str, importlib.metadata.EntryPoint]:
    """Return the installed plugin entry points by upper-cased name; the first one wins."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
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
    builtin = _BUILTINS.get(name)
    if builtin is not None:
        return builtin()
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
