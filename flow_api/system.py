"""``System``: access to resources shared by all executions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flow_api.execution import Execution
from flow_api.resources import Connector, Flow, Setting

if TYPE_CHECKING:
    from flow_api.runtime import Runtime


class ReturnWhen:
    """Names for ``wait_for(return_when=...)``: ``system.return_when.ALL_ENDED``."""

    ALL_SUCCEEDED = "ALL_SUCCEEDED"
    ALL_ENDED = "ALL_ENDED"
    FIRST_ENDED = "FIRST_ENDED"


class System:
    """The ``system`` argument of a handler."""

    return_when = ReturnWhen

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def flow(self, name: str) -> Flow:
        """A handle on flow ``name`` (does not check that it exists; see ``.exists()``)."""
        return Flow(self._runtime, name)

    def setting(self, name: str) -> Setting:
        """A handle on setting ``name`` (``.exists()``, ``.get('value')``, ``.save()``, ``.delete()``)."""
        return Setting(self._runtime, name)

    def connector(self, name: str) -> Connector:
        """A handle on stored connector ``name`` (``.save(connector_type=..., value={...})``)."""
        return Connector(self._runtime, name)

    def execution(self, execution_id: str) -> Execution:
        """A handle on another execution by id."""
        return Execution(self._runtime, execution_id)

    def executions(self, filter_: Any = None, **kwargs: Any) -> list[Execution]:
        """Executions matching a filter, oldest first (the result is recorded); the
        calling execution itself is never among them. ``filter_=...`` means no filter.

        ``filter_`` (or ``filter``): ``{'field': 'name', 'op': 'eq', 'value': 'x'}``
        with ops eq, ne, like, in, lt, gt; combine with ``{'and': [...]}``/``{'or': [...]}``.
        """
        if "filter" in kwargs:
            filter_ = kwargs.pop("filter")
        if kwargs:
            raise TypeError(f"executions() got unexpected arguments {sorted(kwargs)}")
        if filter_ is Ellipsis:
            filter_ = None
        return [Execution(self._runtime, i) for i in self._runtime.resources.query_executions(filter_)]
