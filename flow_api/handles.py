"""Recorded references to resources (``{REF_KEY: kind, "name": ...}``) turned back into
live handles: ``Flow``, ``Setting``, ``Connector`` and ``Execution``. The engine revives
every recorded value a command hands back to the handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flow_api.execution import Execution
from flow_api.resources import REF_KEY, Connector, Flow, Setting
from flow_api.runtime import Runtime

_HANDLES: dict[str, Callable[[Runtime, str], Any]] = {
    "flow": Flow, "setting": Setting, "connector": Connector, "execution": Execution,
}


def revive(value: Any, runtime: Runtime) -> Any:
    """Turn recorded resource references inside ``value`` back into live handles."""
    if isinstance(value, dict):
        kind = value.get(REF_KEY)
        if kind is not None and len(value) == 2:
            return _HANDLES[kind](runtime, value["name"])
        return {k: revive(v, runtime) for k, v in value.items()}
    if isinstance(value, list):
        return [revive(v, runtime) for v in value]
    return value
