"""``Execution``: the running execution (``this``) and handles on other executions."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flow_api.exceptions import ExecutionEnd, InvalidInputError
from flow_api.resources import REF_KEY, Flow

if TYPE_CHECKING:
    from flow_api.runtime import Runtime

RETURN_WHEN = ("ALL_SUCCEEDED", "ALL_ENDED", "FIRST_ENDED")


class Execution:
    """An execution. As ``this`` it is the running one; otherwise a handle on another.

    Every method is a recorded command: on replay it is answered from the log, and
    checked to be the same call with the same arguments (else ``NondeterminismError``).
    Call it from the handler's own thread only (else ``WrongThreadError``): for parallel
    work start child executions with ``this.flow(..., wait=False)`` and ``this.wait_for``.
    """

    kind = "execution"

    def __init__(self, runtime: Runtime, execution_id: str) -> None:
        self._runtime = runtime
        self.id = execution_id

    def __repr__(self) -> str:
        return f"<execution {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Execution) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __engine_ref__(self) -> dict[str, str]:
        return {REF_KEY: "execution", "name": self.id}

    @property
    def _is_self(self) -> bool:
        return self.id == self._runtime.execution_id

    # -- fields ------------------------------------------------------------------

    def get(self, field: str) -> Any:
        """One field: ``input_value``, ``output_value``, ``status``, ``message``, ``name``, ..."""
        if self._is_self:
            return self._runtime.pure.own_field(field)
        return self._runtime.resources.read_execution(self.id, (field,))[field]

    def load(self, *fields: str) -> Any:
        """Several fields at once; one field gives its value, several a tuple."""
        if not fields:
            raise InvalidInputError("load() needs at least one field name, e.g. load('output_value')")
        if self._is_self:
            got = tuple(self._runtime.pure.own_field(f) for f in fields)
        else:
            values = self._runtime.resources.read_execution(self.id, fields)
            got = tuple(values[f] for f in fields)
        return got[0] if len(got) == 1 else got

    # -- this: output, log, lifecycle --------------------------------------------

    def log(self, *args: Any, level: str = "info", **kwargs: Any) -> None:
        """Record a log line: the arguments joined by spaces, keyword arguments as k=v."""
        parts = [a if isinstance(a, str) else repr(a) for a in args]
        parts += [f"{k}={v!r}" for k, v in kwargs.items()]
        self._runtime.pure.log(" ".join(parts), level)

    def set_output(self, *args: Any, **kwargs: Any) -> None:
        """Set output fields: ``set_output(result=1)`` or ``set_output('result', 1)``."""
        if args:
            if len(args) != 2:
                raise InvalidInputError("set_output takes (key, value) or keyword arguments")
            kwargs = {args[0]: args[1], **kwargs}
        self._runtime.pure.set_output(kwargs, False)

    def save(self, output_value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """``this.save(output_value={...})`` replaces the whole output."""
        if kwargs:
            raise InvalidInputError(f"save() supports output_value only, not {sorted(kwargs)}")
        if output_value is not None:
            if not isinstance(output_value, dict):
                raise InvalidInputError("output_value must be a dict")
            self._runtime.pure.set_output(output_value, True)

    def success(self, message: str | None = None) -> None:
        """End this execution successfully (``return this.success('done')``)."""
        raise ExecutionEnd("ENDED_SUCCESS", message)

    def error(self, message: str | None = None) -> None:
        """End this execution with an error."""
        raise ExecutionEnd("ENDED_ERROR", message)

    def end(self, status: str = "success", message: str | None = None) -> None:
        """End with ``status`` 'success'/'error'/'cancelled' (or ENDED_* names)."""
        normal = status.upper()
        normal = normal if normal.startswith("ENDED_") else f"ENDED_{normal}"
        if normal not in ("ENDED_SUCCESS", "ENDED_ERROR", "ENDED_CANCELLED"):
            raise InvalidInputError(f"end() status must be success, error or cancelled, not {status!r}")
        raise ExecutionEnd(normal, message)

    # -- determinism helpers ---------------------------------------------------------

    def now(self) -> float:
        """Current time (epoch seconds), recorded: a replay sees the first run's value."""
        return self._runtime.pure.now()

    def random(self) -> float:
        """A random float in [0, 1), recorded."""
        return self._runtime.pure.random()

    def uuid(self) -> str:
        """A random UUID string, recorded."""
        return self._runtime.pure.uuid()

    def step(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once and record its result (or its failure).

        On replay the recorded result is returned (or the failure re-raised as the same
        class with the same args and attributes) and ``fn`` is not called. Use it for
        anything that touches the outside world. The arguments (and the plain values a
        lambda or nested ``fn`` holds) are part of the call's identity: a replay that
        passes others halts with ``NondeterminismError`` (changed arguments). An error
        whose args or attributes are not plain values is refused when it is recorded.
        """
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
        if isinstance(fn, functools.partial):
            name = getattr(fn.func, "__qualname__", repr(fn.func))
        return self._runtime.steps.step(fn, args, kwargs, name)

    def sleep(self, seconds: float) -> None:
        """A durable timer: the execution waits holding no process, then continues.

        ``seconds`` must be a finite number from 0 to 10 years; anything else raises
        ``InvalidInputError`` (recorded, so a replay raises it again).
        """
        self._runtime.steps.sleep(float(seconds))

    # -- children and dependencies ---------------------------------------------------

    def flow(
        self,
        flow: str | Flow,
        name: str | None = None,
        run: bool = True,
        wait: bool = True,
        inputs: dict[str, Any] | None = None,
        location_inheritance: str | None = None,
        **input_kwargs: Any,
    ) -> Execution:
        """Create a child execution of ``flow``; extra keyword arguments are its inputs.

        ``run=False`` creates it PAUSED; ``wait=False`` starts it and returns at once;
        otherwise this execution waits for it, and a failed child raises
        ``DependencyFailedError`` here.
        """
        flow_name = flow.name if isinstance(flow, Flow) else flow
        if not isinstance(flow_name, str) or not flow_name:
            raise InvalidInputError(f"flow must be a flow name or handle, not {flow!r}")
        merged = {**(inputs or {}), **input_kwargs}
        child_id = self._runtime.children.create_child(
            flow_name, name=name, run=run, inputs=merged,
            location_inheritance=location_inheritance, child_type="FLOW",
        )
        child = Execution(self._runtime, child_id)
        if run and wait:
            self._runtime.children.wait_for([child_id], "ALL_SUCCEEDED", None)
        return child

    def connect(
        self,
        connector: str | None = None,
        connector_type: str | None = None,
        name: str | None = None,
        run: bool = True,
        wait: bool = True,
        return_when: str = "ALL_SUCCEEDED",
        **params: Any,
    ) -> Execution:
        """Create a CONNECTION child that talks to another system, run by a worker outside
        this handler: ``this.connect(connector_type='REST', url=...)`` or
        ``this.connect('stored-connector', **overrides)``. Its result is the child's
        ``output_value``; on replay nothing is sent again. A failed connection raises
        ``DependencyFailedError`` unless ``return_when='ALL_ENDED'``.
        """
        if connector is None and connector_type is None:
            raise InvalidInputError("connect() needs a stored connector name or connector_type=...")
        child_id = self._runtime.messages.create_connection(connector, connector_type, name=name, run=run, params=params)
        child = Execution(self._runtime, child_id)
        if run and wait:
            self._runtime.children.wait_for([child_id], _return_when(return_when), None)
        return child

    def message(
        self,
        subject: str = "",
        message: str = "",
        body: dict[str, Any] | None = None,
        request: str | None = None,
        wait: bool | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send a message (markdown) to people. With a ``body`` form or ``request`` text,
        wait (holding nothing) until someone answers (``engine messages respond``) and
        return the answer dict; ``timeout`` seconds raise ``MessageResponseTimeoutError``;
        ``wait=False`` only records it. Returns the message id when not waiting.
        """
        return self._runtime.messages.message(subject, message, body, request, wait, timeout)

    def run(self, wait: bool = True, location_inheritance: str | None = None) -> Execution:
        """Start this PAUSED execution; with ``wait`` the caller waits for it to end.

        ``location_inheritance`` sets the project the execution belongs to: ``created_by``
        (the caller's), ``default``, ``resource`` or ``wrapped_resource`` (its flow's).
        """
        self._runtime.children.start_child(self.id, location_inheritance)
        if wait:
            self._runtime.children.wait_for([self.id], "ALL_SUCCEEDED", None)
        return self

    def run_async(self) -> Execution:
        return self.run(wait=False)

    def wait(self, return_when: str = "ALL_SUCCEEDED", timeout: float | None = None) -> Execution:
        """Wait for this execution to end (a failure raises ``DependencyFailedError``
        unless ``return_when='ALL_ENDED'``)."""
        self._runtime.children.wait_for([self.id], _return_when(return_when), timeout)
        return self

    def cancel(self) -> None:
        """Cancel this execution and its children (recorded)."""
        self._runtime.children.cancel(self.id)

    def wait_for(
        self, *executions: Execution, return_when: str = "ALL_SUCCEEDED", timeout: float | None = None
    ) -> list[Execution]:
        """Wait for several executions; returns those that had ended, in the given order.

        ``return_when``: ALL_SUCCEEDED (default; a failure raises
        ``DependencyFailedError``), ALL_ENDED, or FIRST_ENDED. ``timeout`` (seconds)
        raises ``DependencyTimeoutError``.
        """
        ids = [_execution_id(e) for e in _flatten(executions)]
        if not ids:
            return []
        ended = set(self._runtime.children.wait_for(ids, _return_when(return_when), timeout))
        return [Execution(self._runtime, i) for i in ids if i in ended]

    def dependency(self, *executions: Execution) -> None:
        """Wait for each execution in turn; raise as soon as one has failed."""
        for execution in _flatten(executions):
            self._runtime.children.wait_for([_execution_id(execution)], "ALL_SUCCEEDED", None)


def _flatten(items: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.extend(item)
        else:
            out.append(item)
    return out


def _execution_id(item: Any) -> str:
    if isinstance(item, Execution):
        return item.id
    if isinstance(item, str):
        return item
    raise InvalidInputError(f"expected an execution handle, got {item!r}")


def _return_when(value: str) -> str:
    normal = str(value).upper().replace("-", "_")
    if normal not in RETURN_WHEN:
        raise InvalidInputError(f"return_when must be one of {', '.join(RETURN_WHEN)}, not {value!r}")
    return normal
