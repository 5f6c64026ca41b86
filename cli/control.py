"""``engine tree/deps`` (how executions relate) and ``engine start/pause/resume/cancel/
retry/fork`` (control by a user). Thin: each command calls one function of
``engine.graph`` or ``engine.control`` and renders its result."""

from __future__ import annotations

import sys

import click
import msgspec

from cli.app import cli, json_option, parse_inputs, pass_engine
from cli.render import echo_json
from engine import control, graph
from engine.api import Engine
from store.model import Status

wait_option = click.option("--wait", is_flag=True, help="Run an embedded worker until the execution ends.")
version_option = click.option(
    "--flow-version", metavar="VERSION",
    help="Pin to this version of the flow: a version hash (or prefix), or 'current'.",
)


def _report(engine: Engine, result: control.ControlResult, as_json: bool, wait: bool = False) -> None:
    """Print what the operation did; with ``wait``, run the execution to its end first
    (exit 1 unless it ends ENDED_SUCCESS, as ``engine run`` does)."""
    final = engine.run_until_ended(result.id) if wait else None
    if as_json:
        data = msgspec.to_builtins(result)
        if final is not None:
            data["final_status"], data["final_message"] = final.status, final.message
        echo_json(data)
    else:
        line = f"{result.id}: {result.before} -> {result.status}" if result.before else f"{result.id}: {result.status}"
        extras = []
        if result.attempt is not None:
            extras.append(f"attempt {result.attempt}")
        if result.flow_version:
            extras.append(f"flow version {result.flow_version[:12]}")
        if result.source:
            extras.append(f"forked from {result.source} at seq {result.at_seq}")
        if result.note:
            extras.append(result.note)
        click.echo(line + (f" ({'; '.join(extras)})" if extras else ""))
        for eid in result.cancelled:
            click.echo(f"cancelled {eid}")
        for eid in result.woken:
            click.echo(f"woke {eid} (it waited for a cancelled execution)")
        for old, new in result.recreated.items():
            click.echo(f"re-created child {old} as {new} (it had not ended at the cut)")
        for eid in result.shared:
            click.echo(f"shares child {eid} read-only (it had ended at the cut)")
        if final is not None:
            click.echo(f"{final.id} {final.status}" + (f": {final.message}" if final.message else ""))
    if final is not None and final.status != Status.ENDED_SUCCESS:
        sys.exit(1)


@cli.command()
@click.argument("execution_id")
@json_option
@pass_engine
def tree(engine: Engine, execution_id: str, as_json: bool) -> None:
    """Show the parent/child tree EXECUTION_ID belongs to, from its root (◀ marks it)."""
    root = graph.execution_tree(engine, execution_id)
    if as_json:
        echo_json(root)
        return
    for line in graph.tree_lines(root):
        click.echo(line)


@cli.command()
@click.argument("execution_id")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid", "json"]), default="text",
              show_default=True, help="text, Graphviz dot (`| dot -Tsvg`), a Mermaid block, or JSON.")
@click.option("--depth", type=click.IntRange(min=1), default=1, show_default=True,
              help="Levels to follow in each direction.")
@json_option
@pass_engine
def deps(engine: Engine, execution_id: str, fmt: str, depth: int, as_json: bool) -> None:
    """Show what EXECUTION_ID waits (or waited) for and what waits (or waited) for it."""
    found = graph.dependency_graph(engine, execution_id, depth)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        echo_json(found)
    elif fmt == "dot":
        click.echo(graph.to_dot(found), nl=False)
    elif fmt == "mermaid":
        click.echo(graph.to_mermaid(found), nl=False)
    else:
        for line in graph.deps_lines(found):
            click.echo(line)


@cli.command()
@click.argument("execution_id")
@wait_option
@json_option
@pass_engine
def start(engine: Engine, execution_id: str, wait: bool, as_json: bool) -> None:
    """Run a PAUSED execution (created with run=False, or paused): it becomes QUEUED."""
    _report(engine, control.start(engine, execution_id), as_json, wait)


@cli.command()
@click.argument("execution_id")
@json_option
@pass_engine
def pause(engine: Engine, execution_id: str, as_json: bool) -> None:
    """Pause a QUEUED or WAITING execution (a RUNNING one at its next commit point)."""
    _report(engine, control.pause(engine, execution_id), as_json)


@cli.command()
@click.argument("execution_id")
@version_option
@wait_option
@json_option
@pass_engine
def resume(engine: Engine, execution_id: str, flow_version: str | None, wait: bool, as_json: bool) -> None:
    """Continue a PAUSED execution, or a HALTED one on the flow's current version
    (after fixing the code that diverged from its history)."""
    _report(engine, control.resume(engine, execution_id, flow_version), as_json, wait)


@cli.command()
@click.argument("execution_id")
@json_option
@pass_engine
def cancel(engine: Engine, execution_id: str, as_json: bool) -> None:
    """Cancel an execution and its descendants that have not ended."""
    _report(engine, control.cancel(engine, execution_id), as_json)


@cli.command()
@click.argument("execution_id")
@version_option
@wait_option
@json_option
@pass_engine
def retry(engine: Engine, execution_id: str, flow_version: str | None, wait: bool, as_json: bool) -> None:
    """Run a failed, cancelled or halted execution again from the top (a new attempt
    of the same execution on the flow's current version; the old history is kept)."""
    _report(engine, control.retry(engine, execution_id, flow_version), as_json, wait)


@cli.command()
@click.argument("execution_id")
@click.option("--at", "at_seq", type=int, required=True, metavar="SEQ", help="Take over the history up to this seq.")
@click.option("-i", "--input", "pairs", multiple=True, metavar="KEY=VALUE",
              help="Change one of the fork's inputs (JSON value or string); not a recorded child's.")
@click.option("--inputs", "inputs_json", metavar="JSON", help="The fork's inputs to change, as one JSON object.")
@click.option("--name", help="A name for the new execution [default: the original's].")
@version_option
@wait_option
@json_option
@pass_engine
def fork(engine: Engine, execution_id: str, at_seq: int, pairs: tuple[str, ...], inputs_json: str | None,
         name: str | None, flow_version: str | None, wait: bool, as_json: bool) -> None:
    """Start a new execution that takes over EXECUTION_ID's history up to SEQ and runs
    live from there (the original is not touched).

    \b
    Children: a child created before SEQ that had not ended by then is created anew
    for the fork (a new id, the same flow version and the inputs recorded when it was
    created) and belongs to the fork's tree; a child that had ended is shared read-only
    (its outcome is part of the copied history). `engine show FORK` lists both.

    \b
    Inputs: -i/--inputs change the fork's own inputs (what its handler reads from
    inputs from SEQ on). A call recorded before SEQ keeps its recorded arguments, so a
    re-created child gets its recorded inputs; to start a child with other inputs,
    fork at a SEQ before the child was created.
    """
    inputs = parse_inputs(pairs, inputs_json)
    result = control.fork(engine, execution_id, at_seq, inputs, flow_version=flow_version, name=name)
    _report(engine, result, as_json, wait)
