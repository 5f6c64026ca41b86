"""Exceptions a flow script can see. ``EngineException`` is the base of every error;
``LifecycleSignal`` is not an error but control flow and derives from ``BaseException``
so that ``except Exception`` in a flow cannot swallow it."""

from __future__ import annotations


class EngineException(Exception):
    """Base of every error the engine raises into a flow script."""


class DependencyFailedError(EngineException):
    """An execution this one waited for ended in error or was cancelled.

    Attributes:
        execution_id: the failed execution.
        status: its final status.
    """

    def __init__(self, message: str, execution_id: str = "", status: str = "") -> None:
        super().__init__(message)
        self.execution_id = execution_id
        self.status = status


class DependencyTimeoutError(EngineException):
    """``wait_for(..., timeout=...)`` ran out before its condition held."""


class MissingInputError(EngineException):
    """A required input was not given."""


class InvalidInputError(EngineException):
    """An argument or input has the wrong type or value, or cannot be recorded."""


class ResourceNotFoundError(EngineException):
    """A flow, setting or execution that was named does not exist."""


class MessageResponseTimeoutError(EngineException):
    """Nobody answered a message within its ``timeout``."""


class NondeterminismError(EngineException):
    """The handler asked for a different command than the history recorded.

    The execution is halted, not ended: its log is intact. Fix the code so that it
    issues the same commands in the same order for executions already in flight,
    then ``engine resume ID``.

    Attributes:
        execution_id: the execution that diverged.
        seq: the recorded event the new code no longer matches.
        recorded: the recorded call (``step('fetch')``, or the end of the handler).
        recorded_line: the script line that made it (0 when unknown).
        new: what the code does now (a call, or the end of the handler).
        new_line: the script line that does it.
        cause: ``changed arguments`` (same call, other arguments), ``changed`` (another
            call) or ``removed`` (the handler ended before the recorded calls did).
        detail: for changed arguments, which one differs and both values, shortened.
    """

    def __init__(
        self, message: str, *, execution_id: str = "", seq: int = 0, recorded: str = "", recorded_line: int = 0,
        new: str = "", new_line: int = 0, cause: str = "", detail: str = "",
    ) -> None:
        super().__init__(message)
        self.execution_id = execution_id
        self.seq = seq
        self.recorded = recorded
        self.recorded_line = recorded_line
        self.new = new
        self.new_line = new_line
        self.cause = cause
        self.detail = detail


class WrongThreadError(EngineException):
    """A flow_api call came from a thread other than the one running the handler.

    Replay answers calls in the order the handler makes them, which threads would make
    vary between runs. For parallel work start child executions
    (``this.flow(..., wait=False)``, then ``this.wait_for``).
    """


class SuspensionSwallowedError(EngineException):
    """The handler caught the engine's suspension (a bare ``except:`` or
    ``except BaseException``) and carried on. Catch ``Exception`` instead, or
    re-raise ``flow_api.LifecycleSignal``."""


class LifecycleSignal(BaseException):
    """Control flow that ends or suspends the handler, never an error.

    If your flow has a bare ``except:`` or ``except BaseException:``, re-raise it::

        except flow_api.LifecycleSignal:
            raise
    """


class ExecutionEnd(LifecycleSignal):
    """Raised by ``this.success()``, ``this.error()`` and ``this.end()``."""

    def __init__(self, status: str, message: str | None) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
