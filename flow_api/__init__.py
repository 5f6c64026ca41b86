"""What flow scripts import: ``import flow_api``.

A flow script defines ``def handler(system: flow_api.System, this: flow_api.Execution,
inputs: dict)``. Every call on ``system`` and ``this`` is recorded in the execution's
event log, so the handler can be replayed after a restart.
"""

from flow_api.exceptions import (
    DependencyFailedError,
    DependencyTimeoutError,
    EngineException,
    ExecutionEnd,
    InvalidInputError,
    LifecycleSignal,
    MessageResponseTimeoutError,
    MissingInputError,
    NondeterminismError,
    ResourceNotFoundError,
    SuspensionSwallowedError,
    WrongThreadError,
)
from flow_api.execution import Execution
from flow_api.resources import Connector, Flow, Setting
from flow_api.runtime import Runtime
from flow_api.system import ReturnWhen, System

__all__ = [
    "Connector",
    "DependencyFailedError",
    "DependencyTimeoutError",
    "EngineException",
    "Execution",
    "ExecutionEnd",
    "Flow",
    "InvalidInputError",
    "LifecycleSignal",
    "MessageResponseTimeoutError",
    "MissingInputError",
    "NondeterminismError",
    "ResourceNotFoundError",
    "ReturnWhen",
    "Runtime",
    "Setting",
    "SuspensionSwallowedError",
    "System",
    "WrongThreadError",
]
