"""Commands that reach outside the engine: messages to people, connections to other
systems, and stored connectors.

Like every command, each is answered from the log on replay; a refused call (a bad
form, an unknown connector) is recorded as ``CommandFailed`` so a handler that catches
the error replays the same way.
"""

from __future__ import annotations

from typing import Any

from engine import arguments
from engine.commands.base import Commands
from engine.connection_runner import connection_spec
from engine.connectors import ConnectorError, get_connector, mask_secrets
from engine.decision import Suspended
from engine.forms import FormError, normalise_form
from engine.ids import child_id
from flow_api.exceptions import (
    InvalidInputError,
    MessageResponseTimeoutError,
    ResourceNotFoundError,
)
from flow_api.handles import revive
from store import values
from store.events import (
    Arg,
    ChildCreated,
    ConnectorRead,
    ConnectorSaved,
    MessageAnswered,
    MessageSent,
)
from store.model import ConnectorWrite, NewExecution, NewMessage, Status


class MessageCommands(Commands):
    """``this.message``, ``this.connect`` and ``system.connector`` for the replay context."""

    def message(
        self, subject: str, message: str, body: Any, request: str | None, wait: bool | None, timeout: float | None
    ) -> Any:
        subject, message = str(subject), "" if message is None else str(message)
        try:  # refused before it is recorded: the subject is the command's identity in the log
            _text(subject, "its subject")
        except values.UnrecordableValueError as exc:
            raise InvalidInputError(f"execution {self.execution_id}: message refused: {exc}") from None
        call_args = [arguments.argument(name, value) for name, value in
                     (("message", message), ("body", body), ("request", request), ("wait", wait), ("timeout", timeout))]
        sent = self.journal.next(MessageSent, subject, call_args)
        if sent is None:
            sent = self._send_message(subject, message, body, request, wait, timeout, call_args)
        if not sent.wait:
            return sent.message_id
        answer = self.journal.outcome(sent)
        while answer is None:  # again after a wake-up of the handler parked here (engine.warm)
            answer = self._answer(sent)
        assert isinstance(answer, MessageAnswered)
        if answer.timed_out:
            raise MessageResponseTimeoutError(
                f"execution {self.execution_id}: nobody answered message {sent.message_id} ({subject!r}) in time"
            )
        return revive(answer.response, self.runtime)

    def _answer(self, sent: MessageSent) -> MessageAnswered | None:
        """Record the answer (or the timeout) of ``sent``, or wait for it."""
        state = self.live.message_state(sent.message_id)
        if state is not None and state.status == "answered":
            return self.journal.append(MessageAnswered(state.response))
        if sent.deadline is not None and (
            self.live.now() >= sent.deadline or (state is not None and state.status == "expired")
        ):
            return self.journal.append(MessageAnswered(None, True))
        # wait holding nothing: an answer (or the deadline) makes the execution runnable
        self.journal.suspend(Suspended(wake_at=sent.deadline, message_id=sent.message_id))
        return None

    def _send_message(
        self, subject: str, message: str, body: Any, request: str | None, wait: bool | None, timeout: float | None,
        call_args: list[Arg],
    ) -> MessageSent:
        try:
            form = normalise_form(body, request)
            if timeout is not None:
                timeout = values.check_seconds(timeout, "timeout")
            form = values.roundtrip(form)
            _text(message, "its text")
        except (FormError, values.UnrecordableValueError) as exc:
            raise self.journal.fail("message", subject, InvalidInputError(
                f"execution {self.execution_id}: message {subject!r}: {exc}"
            )) from None
        waits = form is not None if wait is None else bool(wait)
        if waits and form is None:
            form = []  # an acknowledgement: an empty answer will do
        deadline = self.live.now() + timeout if waits and timeout is not None else None
        seq = self.journal.next_seq
        message_id = child_id(self.execution_id, seq)
        sent = MessageSent(message_id, subject, message, form, waits, deadline, call_args)
        self.journal.commit(sent, messages=[NewMessage(message_id, seq, subject, message, form, waits, deadline)])
        return sent

    def create_connection(
        self, connector: str | None, connector_type: str | None, *, name: str | None, run: bool,
        params: dict[str, Any],
    ) -> str:
        identity = connector or connector_type or ""
        call_args = [arguments.argument("name", name), arguments.argument("run", run),
                     *arguments.mapping_arguments(mask_secrets(params))]
        created = self.journal.next(ChildCreated, identity, call_args, command="connect")
        if created is not None:
            return created.child_id
        stored_value: dict[str, Any] = {}
        if connector is not None:
            stored = self.live.connector(connector)
            if stored is None:
                raise self.journal.fail("connect", identity, ResourceNotFoundError(
                    f"execution {self.execution_id}: connector {connector!r} does not exist; save it with "
                    f"`engine connectors set {connector} --type TYPE` or system.connector(name).save(...)"
                ))
            connector_type, stored_value = connector_type or stored.connector_type, stored.value
        seq = self.journal.next_seq
        new_id = child_id(self.execution_id, seq)
        try:
            get_connector(str(connector_type))
            spec, unmasked = connection_spec(
                str(connector_type), connector, stored_value, params, f"{self.execution_id}:{seq}"
            )
            spec = values.roundtrip(spec)
        except (ConnectorError, values.UnrecordableValueError) as exc:
            raise self.journal.fail("connect", identity, InvalidInputError(
                f"execution {self.execution_id}: connection {identity!r}: {exc}"
            )) from None
        if "secrets" in spec:  # literal secrets are not recorded: hand them to this worker in memory
            self.live.remember_params(new_id, unmasked)
        ex = self.execution
        new = NewExecution(
            id=new_id, flow=identity, flow_version="", input_value=spec, status=Status.QUEUED if run else Status.PAUSED,
            type="CONNECTION", name=name, parent_id=ex.id, root_id=ex.root_id, depth=ex.depth + 1,
            project=ex.project,
        )
        self.journal.commit(ChildCreated(new_id, identity, "", name, run, "CONNECTION", call_args), creates=[new])
        return new_id

    def connector_read(self, name: str) -> tuple[bool, str | None, Any]:
        read = self.journal.next(ConnectorRead, name)
        if read is None:
            found = self.live.connector(name)
            body = ConnectorRead(name, False) if found is None else ConnectorRead(
                name, True, found.connector_type, mask_secrets(found.value)
            )
            read = self.journal.append(body)
        return read.exists, read.connector_type, revive(read.value, self.runtime)

    def connector_save(self, name: str, connector_type: str, value: dict[str, Any]) -> None:
        call_args = [arguments.argument("connector_type", connector_type),
                     arguments.argument("value", mask_secrets(value))]
        if self.journal.next(ConnectorSaved, name, call_args) is not None:
            return
        try:
            if not isinstance(connector_type, str) or not isinstance(value, dict):
                raise ConnectorError("save(connector_type='REST', value={...}) takes a type name and a dict",
                                     retryable=False)
            get_connector(connector_type)
            encoded = values.roundtrip(value)
        except (ConnectorError, values.UnrecordableValueError) as exc:
            raise self.journal.fail("connector_save", name, InvalidInputError(
                f"execution {self.execution_id}: connector {name!r}: {exc}"
            )) from None
        self.journal.commit(
            ConnectorSaved(name, connector_type.upper(), mask_secrets(encoded), call_args),
            connectors=[ConnectorWrite(name, connector_type.upper(), encoded)],
        )


def _text(text: str, what: str) -> None:
    try:
        values.encode(text)
    except values.UnrecordableValueError as exc:
        raise values.UnrecordableValueError(f"{what}: {exc}") from None
