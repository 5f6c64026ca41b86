"""What the command mixins of the replay context use of ``ReplayContext``, declared for
the type checker (at run time the mixins derive from ``object``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.decision import Suspended
    from engine.replay import ExecutionInfo, Live
    from store.events import Arg, Body, Event, EventBody

    class _Host:
        """What these commands use of ``ReplayContext``, declared for the type checker."""

        execution_id: str
        execution: ExecutionInfo
        live: Live | None
        next_seq: int

        def _recorded(self, command: str, identity: str = "", args: list[Arg] | None = None) -> Body | None: ...
        def _outcome(self, started: Body) -> Body | None: ...
        def _append(self, body: EventBody, line: int | None = None) -> Event: ...
        def _commit(self, body: EventBody, **effects: Any) -> EventBody: ...
        def _fail(self, command: str, identity: str, error: Exception) -> Exception: ...
        def _suspend(self, signal: Suspended) -> None: ...
        def _write(self, **effects: Any) -> None: ...
else:
    _Host = object


