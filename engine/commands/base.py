"""What every command group holds: the journal, the execution it runs, and the runtime
that recorded values are revived against (handles such as ``Execution`` need it)."""

from __future__ import annotations

from typing import Protocol

from engine.journal import Journal, Live
from flow_api.runtime import Runtime


class ExecutionInfo(Protocol):
    """The fields of the execution a context runs (an ``ExecutionRow`` has them)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def flow(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def depth(self) -> int: ...
    @property
    def root_id(self) -> str: ...


class Commands:
    """A group of commands over one journal."""

    def __init__(self, journal: Journal, execution: ExecutionInfo, runtime: Runtime) -> None:
        self.journal = journal
        self.execution = execution
        self.execution_id = execution.id
        self.runtime = runtime

    @property
    def live(self) -> Live:
        """The live backend, for a command the journal did not answer."""
        return self.journal.live_backend
