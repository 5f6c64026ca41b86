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
