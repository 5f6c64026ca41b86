"""Commands on child executions: create (``this.flow``), start a PAUSED one, cancel,
and wait for executions to end (holding nothing while they run)."""

from __future__ import annotations

from typing import Any

from engine import arguments
from engine.commands.base import Commands, ExecutionInfo
from engine.decision import Suspended
from engine.ids import child_id
from engine.journal import Journal
from flow_api.exceptions import (
    DependencyFailedError,
    DependencyTimeoutError,
    InvalidInputError,
    ResourceNotFoundError,
)
from flow_api.runtime import Runtime
from store import values
from store.events import (
    ChildCancelled,
    ChildCreated,
    ChildStarted,
    WaitCompleted,
    WaitStarted,
)
from store.faults import fault_point
from store.model import ENDED_STATUSES, FAILED_STATUSES, NewExecution, Status, WaitSpec

#: How deep a tree of executions starting executions may grow before it is refused.
MAX_DEPTH = 50

#: How many executions one tree (a top-level execution and all its descendants) may hold:
#: a flow that starts itself twice at every level would otherwise grow without bound.
MAX_TREE_EXECUTIONS = 10_000


class ChildCommands(Commands):
    """``this.flow``, ``execution.run``, ``execution.cancel`` and ``this.wait_for``."""

    def __init__(self, journal: Journal, execution: ExecutionInfo, runtime: Runtime) -> None:
        super().__init__(journal, execution, runtime)
        self._tree_size: int | None = None
        self._flow_versions: dict[str, tuple[str, str] | None] = {}

    def create_child(
        self, flow: str, *, name: str | None, run: bool, inputs: dict[str, Any],
        location_inheritance: str | None, child_type: str,
    ) -> str:
        journal = self.journal
        call_args = [arguments.argument("name", name), arguments.argument("run", run),
                     *arguments.mapping_arguments(inputs, "inputs[{!r}]")]
        body = journal.next(ChildCreated, flow, call_args, command="flow")
        if body is not None:
            return body.child_id
        live, ex = self.live, self.execution
        if ex.depth + 1 > MAX_DEPTH:
            raise journal.fail("flow", flow, InvalidInputError(
                f"execution {ex.id}: starting flow {flow!r} would nest executions {ex.depth + 1} deep, over the "
                f"limit of {MAX_DEPTH}; does the flow start itself without an end condition?"
            ))
        if self._tree_size is None:
            self._tree_size = live.tree_size(ex.root_id) + len(journal.unflushed)
        if self._tree_size >= MAX_TREE_EXECUTIONS:
            raise journal.fail("flow", flow, InvalidInputError(
                f"execution {ex.id}: starting flow {flow!r} would grow the tree of execution {ex.root_id} past "
                f"the limit of {MAX_TREE_EXECUTIONS} executions; does a flow start itself without an end condition?"
            ))
        if flow not in self._flow_versions:
            self._flow_versions[flow] = live.flow_version(flow)
        found = self._flow_versions[flow]
        if found is None:
            raise journal.fail("flow", flow, ResourceNotFoundError(
                f"execution {ex.id}: flow {flow!r} does not exist; register it with `engine flows sync DIR` "
                "or put its file beside the flow that starts it"
            ))
        version, flow_project = found
        try:
            encoded = values.roundtrip(inputs)
        except values.UnrecordableValueError as exc:
            raise journal.fail("flow", flow, InvalidInputError(
                f"execution {ex.id}: inputs for flow {flow!r} cannot be recorded: {exc}"
            )) from None
        project = _location(location_inheritance, ex.project, flow_project)
        new_id = child_id(ex.id, journal.next_seq)
        fault_point("child.created")
        journal.append(ChildCreated(new_id, flow, version, name, run, child_type, call_args))
        created_at = journal.pending[-1].at
        self._tree_size += 1
        journal.create(NewExecution(
            id=new_id, flow=flow, flow_version=version, input_value=encoded,
            status=Status.QUEUED if run else Status.PAUSED, type=child_type, name=name, parent_id=ex.id,
            root_id=ex.root_id, depth=ex.depth + 1,
            project=project, created_at=created_at,
        ))
        return new_id

    def start_child(self, execution_id: str, location_inheritance: str | None = None) -> None:
        if self.journal.next(ChildStarted, execution_id) is not None:
            return
        effects: dict[str, Any] = {"start": [execution_id]}
        if location_inheritance is not None:
            target = self.live.execution_fields(execution_id, ("flow",))
            found = self.live.flow_version(target["flow"]) if target else None
            flow_project = found[1] if found else self.execution.project
            effects["relocate"] = {execution_id: _location(location_inheritance, self.execution.project, flow_project)}
        self.journal.commit(ChildStarted(execution_id), **effects)

    def cancel(self, execution_id: str) -> None:
        if self.journal.next(ChildCancelled, execution_id) is None:
            self.journal.commit(ChildCancelled(execution_id), cancel=[execution_id])

    def wait_for(self, ids: list[str], return_when: str, timeout: float | None) -> list[str]:
        journal = self.journal
        identity = ",".join(ids)
        body = journal.next(WaitStarted, identity)
        if body is None:
            live = self.live
            statuses = live.statuses(ids)
            unknown = sorted(set(ids) - set(statuses))
            if unknown:
                raise journal.fail("wait_for", identity, ResourceNotFoundError(
                    f"execution {self.execution_id}: cannot wait for unknown execution(s) {', '.join(unknown)}"
                ))
            try:
                deadline = None if timeout is None else live.now() + values.check_seconds(timeout, "timeout")
            except values.UnrecordableValueError as exc:
                raise journal.fail("wait_for", identity, InvalidInputError(f"execution {self.execution_id}: wait_for: {exc}")) from None
            paused = [i for i in dict.fromkeys(ids) if statuses[i] == Status.PAUSED and self._is_my_child(i)]
            wait = WaitStarted(list(ids), return_when, deadline, paused)
            body = journal.commit(wait, start=paused) if paused else journal.append(wait)
        done = journal.outcome(body)
        while done is None:  # again after a wake-up of the handler parked here (engine.warm)
            done = self._check_wait(body)
        assert isinstance(done, WaitCompleted)
        return self.wait_result(body, done)

    def _is_my_child(self, execution_id: str) -> bool:
        """Waiting on one's own PAUSED child starts it (a created-but-not-run child that
        nothing else would start); other PAUSED executions wait for `engine start`."""
        fields = self.live.execution_fields(execution_id, ("parent_id",))
        return fields is not None and fields["parent_id"] == self.execution_id

    def _check_wait(self, wait: WaitStarted) -> WaitCompleted | None:
        live = self.live
        statuses = live.statuses(wait.targets)
        ended = {i: statuses[i] for i in dict.fromkeys(wait.targets) if statuses[i] in ENDED_STATUSES}
        failed = [i for i in ended if ended[i] in FAILED_STATUSES]
        targets = set(wait.targets)
        needed = 1 if wait.return_when == "FIRST_ENDED" else len(targets)
        wake_on_failure = wait.return_when == "ALL_SUCCEEDED"
        timed_out = wait.deadline is not None and live.now() >= wait.deadline
        if len(ended) >= needed or (wake_on_failure and failed) or timed_out:
            failures = {i: live.execution_summary(i) for i in failed}
            return self.journal.append(WaitCompleted(ended, timed_out and len(ended) < needed and not failed, failures))
        pending = sorted(targets - set(ended))
        deadlocked = [self.execution_id] if self.execution_id in targets else []
        deadlocked += live.waiting_on(self.execution_id, pending)
        if deadlocked:  # recorded as the wait's outcome: these never end while this one waits
            return self.journal.append(WaitCompleted(ended, False, {i: self._deadlock(i) for i in deadlocked}))
        self.journal.suspend(Suspended(wait=WaitSpec(sorted(targets), needed, wake_on_failure, wait.deadline)))
        return None

    def _deadlock(self, target: str) -> str:
        who = "it is this execution" if target == self.execution_id else "it waits, directly or through others, for it"
        return (
            f"execution {self.execution_id} cannot wait for {target}: {who}, so neither would ever end. "
            "Leave it out of the wait (when the executions come from system.executions, leave out your parent)."
        )

    def wait_result(self, wait: WaitStarted, done: WaitCompleted) -> list[str]:
        """What ``wait_for`` returns (or raises) once ``done`` completed ``wait``."""
        for target in wait.targets:  # a failure always raises with ALL_SUCCEEDED, a deadlock always
            if target in done.failures and (wait.return_when == "ALL_SUCCEEDED" or target not in done.statuses):
                raise DependencyFailedError(done.failures[target], target, done.statuses.get(target, Status.WAITING))
        if done.timed_out:
            raise DependencyTimeoutError(
                f"execution {self.execution_id}: waited for {', '.join(wait.targets)} "
                f"({wait.return_when}) until the timeout; {len(done.statuses)} of them had ended"
            )
        return [t for t in wait.targets if t in done.statuses]


def _location(inheritance: str | None, parent_project: str, flow_project: str) -> str:
    mode = (inheritance or "created_by").lower().replace("-", "_")
    if mode == "created_by":
        return parent_project
    if mode == "default":
        return "default"
    if mode in ("resource", "wrapped_resource"):
        return flow_project
    raise InvalidInputError(
        f"location_inheritance must be created_by, default, resource or wrapped_resource, not {inheritance!r}"
    )
