"""The event log's vocabulary: one closed, tagged union of frozen msgspec Structs.

Every recorded outcome of a flow_api command is one of these bodies. Changes are
additive only (new kinds, new fields with defaults); ``FORMAT_VERSION`` is written
into each execution's first event. Golden histories under ``tests/histories/``
catch accidental changes to the encoding.
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

import msgspec

FORMAT_VERSION = 1


class ErrorInfo(msgspec.Struct, frozen=True):
    """A failure as data (never a pickle): exception type name, message, traceback text,
    and its ``args`` and ``attributes`` as plain values (``attributes`` None: only the
    message was recorded, as before they were, or because they were not plain)."""

    type: str
    message: str
    traceback: str = ""
    args: list[Any] = []
    attributes: dict[str, Any] | None = None


class Arg(msgspec.Struct, frozen=True, array_like=True):
    """One argument of a recorded call: its name (a parameter, ``#2``, an input key),
    a digest of its canonical encoding (what replay compares) and a shortened form
    (what a diagnosis shows)."""

    name: str
    digest: str
    shown: str


class Body(msgspec.Struct, frozen=True, tag_field="kind", array_like=True):
    """Base of every event body. ``command`` names the flow_api call it records
    (empty for events that are not commands), ``identity`` its key argument.

    Bodies of commands that take arguments end with ``args: list[Arg] | None``: None
    in logs written before arguments were recorded (a replay then checks no arguments).
    """

    command: ClassVar[str] = ""
    #: For a command that waits (a sleep, a wait, a message with ``wait``): the event that
    #: records its outcome. Declared here once; replay, the lenient replay, ``engine show``
    #: and fork cut points all read it.
    completed_by: ClassVar[type[Body] | None] = None

    @property
    def identity(self) -> str:
        return ""

    @property
    def waits(self) -> bool:
        """Whether this event opens a wait whose outcome a later ``completed_by`` event records."""
        return self.completed_by is not None


# -- lifecycle -----------------------------------------------------------------


class ExecutionStarted(Body, tag="started", frozen=True):
    format_version: int
    flow: str
    flow_version: str
    input_value: Any
    parent_id: str | None = None
    name: str | None = None


class ExecutionEnded(Body, tag="ended", frozen=True):
    status: str
    message: str | None = None
    output_value: Any = None
    error: ErrorInfo | None = None


class ExecutionCancelled(Body, tag="cancelled", frozen=True):
    """Written by whoever cancelled the execution (a parent, the CLI)."""

    reason: str = ""


# -- pure commands (no effect outside the execution) -----------------------------


class LogRecorded(Body, tag="log", frozen=True):
    command: ClassVar[str] = "log"
    message: str
    level: str = "info"


class OutputSet(Body, tag="output", frozen=True):
    command: ClassVar[str] = "set_output"
    values: dict[str, Any]
    replace: bool = False


class NowRecorded(Body, tag="now", frozen=True):
    command: ClassVar[str] = "now"
    value: float


class RandomRecorded(Body, tag="random", frozen=True):
    command: ClassVar[str] = "random"
    value: float


class UuidRecorded(Body, tag="uuid", frozen=True):
    command: ClassVar[str] = "uuid"
    value: str


# -- durable commands --------------------------------------------------------------


class StepCompleted(Body, tag="step", frozen=True):
    command: ClassVar[str] = "step"
    name: str
    result: Any
    args: list[Arg] | None = None

    @property
    def identity(self) -> str:
        return self.name


class CommandFailed(Body, tag="failed", frozen=True):
    """A command that raised (a step's function, an unknown flow...). Replay re-raises it."""

    failed_command: str
    failed_identity: str
    error: ErrorInfo
    args: list[Arg] | None = None

    @property
    def identity(self) -> str:
        return self.failed_identity


class TimerFired(Body, tag="timer_fired", frozen=True):
    at: float


class SleepStarted(Body, tag="sleep", frozen=True):
    command: ClassVar[str] = "sleep"
    completed_by: ClassVar[type[Body] | None] = TimerFired
    seconds: float
    due_at: float


class ChildCreated(Body, tag="child", frozen=True):
    """A child execution: a flow (``this.flow``) or a connection (``this.connect``)."""

    child_id: str
    flow: str
    flow_version: str
    name: str | None
    run: bool
    child_type: str = "FLOW"
    args: list[Arg] | None = None

    @property
    def command(self) -> str:  # type: ignore[override]
        return "connect" if self.child_type == "CONNECTION" else "flow"

    @property
    def identity(self) -> str:
        return self.flow


class ChildStarted(Body, tag="child_run", frozen=True):
    """A PAUSED child started later with ``.run()``."""

    command: ClassVar[str] = "run"
    child_id: str

    @property
    def identity(self) -> str:
        return self.child_id


class ChildCancelled(Body, tag="child_cancel", frozen=True):
    command: ClassVar[str] = "cancel"
    child_id: str

    @property
    def identity(self) -> str:
        return self.child_id


class WaitCompleted(Body, tag="wait_done", frozen=True):
    """Which targets had ended when the wait was satisfied, and how."""

    statuses: dict[str, str]
    timed_out: bool = False
    failures: dict[str, str] = {}


class WaitStarted(Body, tag="wait", frozen=True):
    """A wait on executions; ``started`` are the waiter's own PAUSED children it started."""

    command: ClassVar[str] = "wait_for"
    completed_by: ClassVar[type[Body] | None] = WaitCompleted
    targets: list[str]
    return_when: str
    deadline: float | None = None
    started: list[str] = []

    @property
    def identity(self) -> str:
        return ",".join(self.targets)


class ExecutionRead(Body, tag="read", frozen=True):
    command: ClassVar[str] = "read"
    target: str
    fields: dict[str, Any]

    @property
    def identity(self) -> str:
        return self.target


class SettingRead(Body, tag="setting_read", frozen=True):
    command: ClassVar[str] = "setting_read"
    setting: str
    exists: bool
    value: Any = None
    description: str | None = None

    @property
    def identity(self) -> str:
        return self.setting


class SettingSaved(Body, tag="setting_save", frozen=True):
    command: ClassVar[str] = "setting_save"
    setting: str
    value: Any
    description: str | None = None
    args: list[Arg] | None = None

    @property
    def identity(self) -> str:
        return self.setting


class SettingDeleted(Body, tag="setting_delete", frozen=True):
    command: ClassVar[str] = "setting_delete"
    setting: str

    @property
    def identity(self) -> str:
        return self.setting


class FlowRead(Body, tag="flow_read", frozen=True):
    command: ClassVar[str] = "flow_read"
    flow: str
    exists: bool
    version: str | None = None

    @property
    def identity(self) -> str:
        return self.flow


class ExecutionsQueried(Body, tag="query", frozen=True):
    command: ClassVar[str] = "executions"
    filter: Any
    ids: list[str]


# -- messages and connections ------------------------------------------------------


class MessageAnswered(Body, tag="message_answered", frozen=True):
    response: Any = None
    timed_out: bool = False


class MessageSent(Body, tag="message", frozen=True):
    """A message to people; with a ``form`` and ``wait`` the execution waits for an answer."""

    command: ClassVar[str] = "message"
    completed_by: ClassVar[type[Body] | None] = MessageAnswered
    message_id: str
    subject: str
    message: str
    form: Any = None
    wait: bool = False
    deadline: float | None = None
    args: list[Arg] | None = None

    @property
    def identity(self) -> str:
        return self.subject

    @property
    def waits(self) -> bool:
        return self.wait


class ConnectionAttempt(Body, tag="attempt", frozen=True):
    """One try of a connection (on the CONNECTION execution's own log). A failure that
    will be retried records its backoff: ``delay`` (seconds, jitter included) and
    ``retry_at``, when the next attempt is due; the connection waits on that timer."""

    attempt: int
    ok: bool
    seconds: float
    error: ErrorInfo | None = None
    retryable: bool = False
    delay: float | None = None
    retry_at: float | None = None


class ConnectorSaved(Body, tag="connector_save", frozen=True):
    command: ClassVar[str] = "connector_save"
    connector: str
    connector_type: str
    value: Any
    args: list[Arg] | None = None

    @property
    def identity(self) -> str:
        return self.connector


class ConnectorRead(Body, tag="connector_read", frozen=True):
    command: ClassVar[str] = "connector_read"
    connector: str
    exists: bool
    connector_type: str | None = None
    value: Any = None

    @property
    def identity(self) -> str:
        return self.connector


# -- control by a user (engine start/pause/resume/retry/fork) -------------------


class AttemptStarted(Body, tag="attempt_started", frozen=True):
    """``engine retry``: the execution runs again from the top on ``flow_version``.

    The old attempts stay in the log; a replay sees only the events after the last
    ``AttemptStarted`` (see ``replay_history``).
    """

    attempt: int
    flow_version: str
    previous_status: str = ""


class ForkOrigin(msgspec.Struct, frozen=True):
    """Where a fork came from: the execution and seq it copied, the children of that
    history it re-created as its own (original id -> the fork's id) and those it shares
    read-only (they had ended at the cut)."""

    source: str
    at_seq: int
    recreated: dict[str, str] = {}
    shared: list[str] = []


class ExecutionControlled(Body, tag="control", frozen=True):
    """A user changed the execution: ``start``, ``pause``, ``resume``
    (``flow_version`` set when it was re-pinned), ``fork`` (``detail`` names the source,
    ``fork`` says what the fork took over). Not a command: a replay skips it."""

    action: str
    from_status: str
    to_status: str
    flow_version: str | None = None
    detail: str = ""
    fork: ForkOrigin | None = None


EventBody = Union[
    ExecutionStarted,
    ExecutionEnded,
    ExecutionCancelled,
    LogRecorded,
    OutputSet,
    NowRecorded,
    RandomRecorded,
    UuidRecorded,
    StepCompleted,
    CommandFailed,
    SleepStarted,
    TimerFired,
    ChildCreated,
    ChildStarted,
    ChildCancelled,
    WaitStarted,
    WaitCompleted,
    ExecutionRead,
    SettingRead,
    SettingSaved,
    SettingDeleted,
    FlowRead,
    ExecutionsQueried,
    MessageSent,
    MessageAnswered,
    ConnectionAttempt,
    ConnectorSaved,
    ConnectorRead,
    AttemptStarted,
    ExecutionControlled,
]

ALL_BODIES: tuple[type[Body], ...] = EventBody.__args__  # type: ignore[attr-defined]

#: The events that record the outcome of a waiting command (``Body.completed_by``).
COMPLETIONS: frozenset[type[Body]] = frozenset(b.completed_by for b in ALL_BODIES if b.completed_by is not None)


class Event(msgspec.Struct, frozen=True):
    """One row of an execution's log."""

    seq: int
    at: float
    body: EventBody
    line: int = 0

    @property
    def kind(self) -> str:
        return kind_of(self.body)

    @property
    def command(self) -> str:
        body = self.body
        return body.failed_command if isinstance(body, CommandFailed) else body.command


def kind_of(body: Body) -> str:
    return type(body).__struct_config__.tag  # type: ignore[return-value]


_encoder = msgspec.msgpack.Encoder()
_body_decoder = msgspec.msgpack.Decoder(EventBody)


def encode_body(body: Body) -> bytes:
    return _encoder.encode(body)


def decode_body(data: bytes) -> EventBody:
    body: EventBody = _body_decoder.decode(data)
    return body


def body_to_builtins(body: Body) -> dict[str, Any]:
    """The body as a JSON-ready dict (named fields, ``kind`` first) for the CLI."""
    out: dict[str, Any] = {"kind": kind_of(body)}
    for field in body.__struct_fields__:
        out[field] = msgspec.to_builtins(getattr(body, field))
    return out


def replay_history(events: list[Event]) -> list[Event]:
    """The part of a log a replay of the current attempt sees: ``ExecutionStarted``,
    then the events after the last ``AttemptStarted``, without control markers.

    Seqs keep their gaps; whoever appends continues after the log's last seq.
    """
    start = 0
    for i, event in enumerate(events):
        if type(event.body) is AttemptStarted:
            start = i
    return events[:1] + [e for e in events[start + 1:] if type(e.body) not in _NOT_REPLAYED]


_NOT_REPLAYED = (AttemptStarted, ExecutionControlled)
