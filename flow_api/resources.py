"""Handles on engine resources that are not executions: flows and settings.

Handles are cheap references; creating one validates nothing (``system.flow('x')``
works whether or not a flow 'x' exists). Passed as inputs to a child execution, a
handle arrives there as a live handle of the same resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flow_api.exceptions import InvalidInputError, ResourceNotFoundError

if TYPE_CHECKING:
    from flow_api.runtime import Runtime

REF_KEY = "__engine_ref__"


class Resource:
    """Base of resource handles: a kind and a name."""

    kind = "resource"

    def __init__(self, runtime: Runtime, name: str) -> None:
        self._runtime = runtime
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resource) and type(other) is type(self) and other.name == self.name

    def __hash__(self) -> int:
        return hash((self.kind, self.name))

    def __engine_ref__(self) -> dict[str, str]:
        return {REF_KEY: self.kind, "name": self.name}


class Flow(Resource):
    """A flow, by name."""

    kind = "flow"

    def exists(self) -> bool:
        """Whether a flow of this name is registered (recorded, so replays agree)."""
        return self._runtime.resources.flow_read(self.name)

    def get(self, field: str) -> Any:
        """``'name'`` of the flow; other fields are not exposed yet."""
        if field == "name":
            return self.name
        raise InvalidInputError(f"flow handles expose 'name' only, not {field!r}")


class Setting(Resource):
    """A named, stored value shared by all executions (``system.setting(name)``)."""

    kind = "setting"

    def exists(self) -> bool:
        return self._runtime.resources.setting_read(self.name)[0]

    def get(self, field: str = "value") -> Any:
        """``'value'``, ``'description'`` or ``'name'`` of the setting."""
        if field == "name":
            return self.name
        exists, value, description = self._runtime.resources.setting_read(self.name)
        if not exists:
            raise ResourceNotFoundError(
                f"setting {self.name!r} does not exist; check .exists() first or save it with .save(value=...)"
            )
        if field == "value":
            return value
        if field == "description":
            return description
        raise InvalidInputError(f"settings have 'value', 'description' and 'name', not {field!r}")

    def load(self, *fields: str) -> Any:
        got = tuple(self.get(f) for f in fields or ("value",))
        return got[0] if len(got) == 1 else got

    def save(self, value: Any = None, description: str | None = None) -> Setting:
        """Create or overwrite the setting (recorded; a replay does not write again)."""
        self._runtime.resources.setting_save(self.name, value, description)
        return self

    def delete(self) -> None:
        self._runtime.resources.setting_delete(self.name)


class Connector(Resource):
    """A stored connector: a connector type and its base parameters (``system.connector(name)``)."""

    kind = "connector"

    def exists(self) -> bool:
        return self._runtime.messages.connector_read(self.name)[0]

    def get(self, field: str = "value") -> Any:
        """``'value'`` (the stored parameters), ``'connector_type'`` or ``'name'``."""
        if field == "name":
            return self.name
        exists, connector_type, value = self._runtime.messages.connector_read(self.name)
        if not exists:
            raise ResourceNotFoundError(f"connector {self.name!r} does not exist; save it with .save(connector_type=..., value={{...}})")
        if field == "value":
            return value
        if field == "connector_type":
            return connector_type
        raise InvalidInputError(f"connectors have 'value', 'connector_type' and 'name', not {field!r}")

    def save(self, connector_type: str, value: dict[str, Any] | None = None) -> Connector:
        """Create or overwrite the connector. Keep secrets out of it: write ``'${env:NAME}'``."""
        self._runtime.messages.connector_save(self.name, connector_type, value or {})
        return self
