"""One activation: run a handler against its history and turn what happened into a
``Decision``. Pure given its inputs; the worker commits the decision."""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Any

from engine.decision import ActivationAborted, Decision, ReplayExhausted, Suspended
from engine.errors import error_info, shorten, text_of
from engine.flows import LoadedFlow
from engine.interrupts import ActivationInterrupted
from engine.replay import ReplayContext
from flow_api import Execution, System
from flow_api.exceptions import ExecutionEnd, NondeterminismError
from store.events import ExecutionEnded
from store.model import Status


def run_handler(ctx: ReplayContext, flow: LoadedFlow) -> Decision:
    """Run ``flow``'s handler once in ``ctx`` and describe the outcome."""
    try:
        return _run(ctx, flow)
    finally:
        if ctx.journal.unwinding:  # the context traced a handler that would not stop
            sys.settrace(None)


def _run(ctx: ReplayContext, flow: LoadedFlow) -> Decision:
    status: str
    try:
        flow.handler(System(ctx), Execution(ctx, ctx.execution_id), ctx.inputs)
        status, message, line = Status.ENDED_SUCCESS, None, 0
    except ExecutionEnd as end:
        status, line = end.status, _flow_line(end.__traceback__, flow.module_globals)
        message = None if end.message is None else shorten(text_of(end.message))
    except Suspended as signal:
        return suspend_decision(ctx, signal)
    except ReplayExhausted:
        return Decision("exhausted")
    except ActivationAborted:
        return Decision("aborted")
    except ActivationInterrupted as stop:  # the worker stopped it: it says why, and commits
        return Decision(
            "interrupted", ctx.journal.pending, creates=ctx.journal.unflushed, output_value=dict(ctx.journal.output),
            line=_flow_line(stop.__traceback__, flow.module_globals),
        )
    except KeyboardInterrupt as exc:
        if threading.current_thread() is threading.main_thread():
            raise  # Ctrl-C of a replay run in the foreground (a worker runs handlers in other threads)
        return _failed(ctx, flow, exc)
    except BaseException as exc:  # a flow error of any kind, SystemExit included, ends the execution
        return _failed(ctx, flow, exc)
    return _ended(ctx, flow, status, message, line, None)


def suspend_decision(ctx: ReplayContext, signal: Suspended) -> Decision:
    """The decision of a handler that must wait: what it recorded, and what wakes it."""
    return Decision(
        "suspend", ctx.journal.pending, creates=ctx.journal.unflushed, wake_at=signal.wake_at, wait=signal.wait,
        message_id=signal.message_id,
    )


def _failed(ctx: ReplayContext, flow: LoadedFlow, exc: BaseException) -> Decision:
    line = _flow_line(exc.__traceback__, flow.module_globals)
    where = f" (line {line})" if line else ""
    message = shorten(f"{type(exc).__name__}: {text_of(exc)}{where}")
    return _ended(ctx, flow, Status.ENDED_ERROR, message, line, exc)


def _ended(
    ctx: ReplayContext, flow: LoadedFlow, status: str, message: str | None, line: int, error: BaseException | None
) -> Decision:
    if ctx.fatal is None:
        ctx.check_end(status, line)
    if ctx.fatal is not None:
        if isinstance(ctx.fatal, NondeterminismError):
            return Decision("halt", [], status=Status.HALTED, message=str(ctx.fatal), error=error_info(ctx.fatal))
        error = ctx.fatal
        status, message = Status.ENDED_ERROR, str(ctx.fatal)
    info = None if error is None else error_info(error, flow.module_globals)
    output = dict(ctx.journal.output)
    ctx.journal.end(ExecutionEnded(status, message, output, info), line)
    return Decision(
        "end", ctx.journal.pending, creates=ctx.journal.unflushed, status=status, message=message, output_value=output, error=info,
        line=line,
    )


def _flow_line(tb: TracebackType | None, module_globals: dict[str, Any]) -> int:
    """The last line of the flow script in a traceback."""
    line = 0
    while tb is not None:
        if tb.tb_frame.f_globals is module_globals:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
