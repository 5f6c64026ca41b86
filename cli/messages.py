"""``engine messages``: the messages flows sent to people, and answering them."""

from __future__ import annotations

import json

import click

from cli.app import cli, json_option, parse_pairs, pass_engine
from cli.render import echo_json, format_time, print_table
from engine.api import Engine
from engine.errors import EngineError
from store.model import MessageRow


@cli.group()
def messages() -> None:
    """Messages from executions; answer those that wait for people."""


def _fields(message: MessageRow) -> str:
    return ", ".join(f"{f['name']}{'*' if f['required'] else ''}:{f['type']}" for f in message.form or [])


@messages.command("ls")
@click.option("--all", "show_all", is_flag=True, help="Also answered, expired and informational messages.")
@click.option("--execution", "execution_id", help="Only messages of this execution.")
@json_option
@pass_engine
def messages_ls(engine: Engine, show_all: bool, execution_id: str | None, as_json: bool) -> None:
    """List the messages waiting for an answer (* marks required fields)."""
    rows = engine.store.list_messages(status=None if show_all else "waiting", execution_id=execution_id)
    if as_json:
        echo_json(rows)
        return
    print_table(
        ["id", "execution", "status", "sent", "deadline", "subject", "fields"],
        [[m.id, m.execution_id, m.status, format_time(m.created_at), format_time(m.deadline), m.subject, _fields(m)]
         for m in rows],
    )


@messages.command("show")
@click.argument("message_id")
@json_option
@pass_engine
def messages_show(engine: Engine, message_id: str, as_json: bool) -> None:
    """Show a message, its form and its answer."""
    message = engine.store.get_message(message_id)
    if message is None:
        raise EngineError(f"no message {message_id!r}; `engine messages ls --all` lists them")
    if as_json:
        echo_json(message)
        return
    deadline = f", answer before {format_time(message.deadline)}" if message.deadline is not None else ""
    click.echo(f"{message.subject}  ({message.status}{deadline}; execution {message.execution_id})\n")
    click.echo(f"{message.message}\n")
    for field in message.form or []:
        extra = f" [default {field['default']!r}]" if "default" in field else ""
        extra += f" [one of {field['options']!r}]" if "options" in field else ""
        click.echo(f"  {field['name']}{'*' if field['required'] else ''} ({field['type']}): {field['label']}{extra}")
    if message.response is not None:
        click.echo(f"\nanswer: {json.dumps(message.response)}")


@messages.command("respond")
@click.argument("message_id")
@click.option("-f", "--field", "pairs", multiple=True, metavar="FIELD=VALUE",
              help="One field of the answer; the value is converted to the field's type.")
@click.option("--json", "answer_json", metavar="JSON", help="The whole answer as a JSON object.")
@pass_engine
def messages_respond(engine: Engine, message_id: str, pairs: tuple[str, ...], answer_json: str | None) -> None:
    """Answer a waiting message; its execution continues with the answer.

    A wrong answer is refused with every problem listed (exit status 1); the
    execution keeps waiting.
    """
    answer = engine.respond(message_id, parse_pairs(pairs, answer_json, pair_option="-f", whole_option="--json", json_values=False))
    click.echo(f"answered {message_id}: {json.dumps(answer)}")
