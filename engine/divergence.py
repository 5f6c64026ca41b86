"""The diagnosis a replay halts with when the handler no longer does what the history
recorded: one ``NondeterminismError`` whose message names the execution, the seq, both
calls and both script lines, the cause and what to do, and whose fields say the same."""

from __future__ import annotations

from flow_api.exceptions import NondeterminismError
from store.events import Event, ExecutionEnded

CHANGED_ARGUMENTS = "changed arguments"

#: What to do about changed arguments.
FIX_ARGUMENTS = (
    "a value the handler computes differs between runs: iterate a sorted sequence (sorted(...)) rather than a set "
    "or a dict filled in varying order, or pass the value through this.step so it is recorded"
)


def line_text(line: int) -> str:
    return f"line {line}" if line else "an unknown line"


def describe(command: str, identity: str) -> str:
    """A call as the diagnosis shows it: ``step('fetch')``."""
    return f"{command}({identity!r})" if identity else f"{command}()"


def recorded_call(event: Event) -> str:
    body = event.body
    if isinstance(body, ExecutionEnded):
        return f"the end of the execution ({body.status})"
    return describe(event.command, body.identity)


def changed_call(
    execution_id: str, event: Event, command: str, identity: str, new_line: int, flow_file: str,
    arguments: str | None = None,
) -> NondeterminismError:
    """The code calls something else at ``event`` (``arguments``: the same call with
    other arguments, described by ``engine.arguments.difference``)."""
    recorded, new = recorded_call(event), describe(command, identity)
    where = f"{line_text(new_line)} of {flow_file}"
    head = f"execution {execution_id}: nondeterminism at seq {event.seq}:"
    if arguments is not None:
        message = (
            f"{head} changed arguments: the history recorded {recorded} at {line_text(event.line)} of the recorded "
            f"run, but the code now calls {new} at {where} with {arguments}: {FIX_ARGUMENTS}. The execution is halted "
            f"with its log intact: fix the code, then `engine retry {execution_id}` to run it again from the top."
        )
        cause = CHANGED_ARGUMENTS
    else:
        message = (
            f"{head} the history recorded {recorded} at {line_text(event.line)} of the recorded run, but the code now calls {new} at {where}. "
            "The flow's code changed while this execution was in flight, or the handler depends on something not "
            "recorded (time, randomness, I/O outside this.step). The execution is halted with its log intact: "
            f"restore the code or make it deterministic, then `engine resume {execution_id}`."
        )
        cause = "changed"
    return NondeterminismError(
        message, execution_id=execution_id, seq=event.seq, recorded=recorded, recorded_line=event.line,
        new=new, new_line=new_line, cause=cause, detail=arguments or "",
    )


def ended_early(
    execution_id: str, event: Event, status: str, line: int, flow_file: str, left: int
) -> NondeterminismError:
    """The handler ended while the history has ``left`` more recorded events from ``event``."""
    recorded = recorded_call(event)
    message = (
        f"execution {execution_id}: nondeterminism at seq {event.seq}: the handler ended ({status}) at "
        f"{line_text(line)} of {flow_file}, but the history has {left} more recorded event(s), starting with "
        f"{recorded} at {line_text(event.line)} of {flow_file}. A call was removed or skipped. The execution is "
        f"halted with its log intact: restore the code, then `engine resume {execution_id}`."
    )
    return NondeterminismError(
        message, execution_id=execution_id, seq=event.seq, recorded=recorded, recorded_line=event.line,
        new=f"the end of the handler ({status})", new_line=line, cause="removed",
    )
