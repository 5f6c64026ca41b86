"""The ``engine`` command: run flows and workers, and register flows.

``main`` is the entry point; importing this module registers every command on
``cli.app.cli`` (the command modules import ``cli.app``, never this module).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli import connectors as _connectors  # noqa: F401  (engine connectors)
from cli import control as _control  # noqa: F401  (start, pause, resume, cancel, retry, fork)
from cli import db as _db  # noqa: F401  (engine db backup, engine db check)
from cli import inspect as _inspect  # noqa: F401  (ls, show, history, logs, replay, check, debug, export, dev)
from cli import messages as _messages  # noqa: F401  (engine messages)
from cli import schedules as _schedules  # noqa: F401  (engine schedules)
from cli import serve as _serve  # noqa: F401  (engine serve, tokens, webhooks)
from cli.app import (
    CONCURRENCY,
    LEASE_SECONDS,
    POLL_SECONDS,
    FiniteRange,
    cli,
    json_option,
    parse_inputs,
    pass_engine,
)
from cli.determinism import report_findings, strict_option
from cli.inspect_render import check_lines
from cli.render import echo_json, print_table
from cli.supervise import child_argv, leave, run_in_process, supervise, supervise_option
from engine import git_sync
from engine.activity import DEFAULT_ACTIVATION_TIMEOUT
from engine.api import Engine
from engine.attempts import DEFAULT_MAX_ATTEMPTS
from engine.determinism import scan_directory, scan_file, scan_flow
from engine.errors import EngineError
from engine.inspect import check_synced
from engine.script_graph import script_graph, to_dot, to_mermaid, to_text
from engine.views import execution_dict
from engine.worker import DEFAULT_POLL_INTERVAL
from store.errors import StoreError
from store.flow_origins import FlowOrigins
from store.git_actions import GitSource
from store.model import Status

__all__ = ["cli", "main"]


@cli.command()
@click.argument("target")
@click.option("-i", "--input", "pairs", multiple=True, metavar="KEY=VALUE", help="An input (JSON value or string).")
@click.option("--inputs", "inputs_json", metavar="JSON", help="All inputs as one JSON object.")
@click.option("--flows", "flows_dir", type=click.Path(file_okay=False), help="Register the flows in this folder first.")
@click.option("--name", help="A name for the execution.")
@click.option("--detach", is_flag=True, help="Only create the execution and print its id.")
@json_option
@strict_option
@supervise_option
@pass_engine
def run(engine: Engine, target: str, pairs: tuple[str, ...], inputs_json: str | None, flows_dir: str | None,
        name: str | None, detach: bool, as_json: bool, strict: bool, supervise: bool) -> None:
    """Run TARGET (a flow file or a registered flow's name) until it ends.

    A .py TARGET registers every flow in its folder (so sibling flows resolve) and
    runs the one in TARGET. Exits 0 only if the execution ends ENDED_SUCCESS.
    Calls in TARGET's source that differ between runs are warned about first.
    """
    inputs = parse_inputs(pairs, inputs_json)
    if flows_dir:
        engine.sync_flows(flows_dir)
    flow = target
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise EngineError(f"flow file {target} does not exist")
        report_findings(scan_file(path), strict, "nothing was registered or started")
        flow = engine.register_file(path).name  # first: a bad TARGET is an error, a bad sibling a warning
        engine.sync_flows(path.parent, keep_projects=True)
    else:
        report_findings(scan_flow(engine.store, flow), strict, "the execution was not started")
    execution_id = engine.start(flow, inputs, name=name)
    if detach:
        click.echo(json.dumps({"id": execution_id}) if as_json else execution_id)
        return
    if supervise:
        code = _supervised(engine, ["--until-ended", execution_id], DEFAULT_MAX_ATTEMPTS,
                           lambda: engine.get(execution_id).ended)
        row = engine.get(execution_id)
        if _unfinished(row):
            sys.exit(code or 1)
        _show_result(row, as_json)
        sys.exit(0 if row.status == Status.ENDED_SUCCESS else 1)
    w = engine.worker()
    row, stopped = run_in_process(w, lambda: engine.run_until_ended(execution_id, on_message=_hint_answer, worker=w))
    if stopped and _unfinished(row):
        leave(w, 130)
    _show_result(row, as_json)
    leave(w, 0 if row.status == Status.ENDED_SUCCESS else 1)


def _supervised(engine: Engine, worker_args: list[str], max_attempts: int, done: Callable[[], bool]) -> int:
    return supervise(engine, child_argv(click.get_current_context(), engine, worker_args), max_attempts, done)


def _unfinished(row: Any) -> bool:
    """Whether the worker stopped before the execution ended or halted (and say so)."""
    if row.ended or row.status == Status.HALTED:
        return False
    click.echo(f"engine: stopped before execution {row.id} ended; it is {row.status}: "
               f"`engine worker` runs it on, `engine cancel {row.id}` drops it", err=True)
    return True


def _show_result(row: Any, as_json: bool) -> None:
    if as_json:
        echo_json(execution_dict(row))
    else:
        click.echo(f"{row.id} {row.status}" + (f": {row.message}" if row.message else ""), err=row.status != Status.ENDED_SUCCESS)
        if row.output_value:
            click.echo(json.dumps(row.output_value, indent=2, default=repr))


@cli.command()
@click.option("--concurrency", type=CONCURRENCY, default=16, show_default=True, help="Activations run at once.")
@click.option("--until-idle", is_flag=True, help="Exit when nothing is queued, running or on a timer.")
@click.option("--lease", "lease_seconds", type=LEASE_SECONDS, default=15.0, show_default=True, help="Lease length in seconds.")
@click.option("--poll", "poll_interval", type=POLL_SECONDS, default=DEFAULT_POLL_INTERVAL, show_default=True,
              help="Safety net: seconds between looks for work that no wake-up notice announced.")
@click.option("--max-attempts", default=DEFAULT_MAX_ATTEMPTS, show_default=True, type=click.IntRange(min=1),
              help="Activations of one execution that may die in a row (worker killed, flow exited) before it ends ENDED_ERROR.")
@click.option("--activation-timeout", default=DEFAULT_ACTIVATION_TIMEOUT, show_default=True, metavar="SECONDS",
              type=FiniteRange(0, min_open=True),
              help="How long one activation may run before it is stopped (a flow's TIMEOUT = SECONDS overrides it).")
@supervise_option
@click.option("--until-ended", metavar="ID", hidden=True, help="Run until this execution ends (what `engine run` runs).")
@pass_engine
def worker(engine: Engine, concurrency: int, until_idle: bool, lease_seconds: float, poll_interval: float,
           max_attempts: int, activation_timeout: float, supervise: bool, until_ended: str | None) -> None:
    """Run executions from the database until stopped (Ctrl-C)."""
    options = dict(concurrency=concurrency, lease_seconds=lease_seconds, poll_interval=poll_interval,
                   max_attempts=max_attempts, activation_timeout=activation_timeout)
    if supervise:
        args = ["--concurrency", str(concurrency), "--lease", str(lease_seconds), "--poll", str(poll_interval),
                "--max-attempts", str(max_attempts), "--activation-timeout", str(activation_timeout)]
        sys.exit(_supervised(engine, args + ["--until-idle"] * until_idle, max_attempts, lambda: False))
    w = engine.worker(**options)
    try:
        if until_ended:
            _, stopped = run_in_process(w, lambda: engine.run_until_ended(until_ended, on_message=_hint_answer, worker=w))
        else:
            _, stopped = run_in_process(w, lambda: w.run(until_idle=until_idle, max_store_failures=3 if until_idle else None))
    except StoreError as exc:
        raise EngineError(str(exc)) from None
    leave(w, 130 if stopped else 0)


@cli.group()
def flows() -> None:
    """Register and list flows."""


@flows.command("sync")
@click.argument("directory", type=click.Path(), required=False)
@click.option("--git", "repo", metavar="REPO", help="Register the flows of one commit of this git repository "
              "(a path or URL git can reach) instead of DIRECTORY.")
@click.option("--ref", default="HEAD", show_default=True, help="With --git: the branch, tag or commit.")
@click.option("--path", "folder", metavar="DIR", help="With --git: the flows folder inside the repository.")
@json_option
@strict_option
@pass_engine
def flows_sync(engine: Engine, directory: str | None, repo: str | None, ref: str, folder: str | None, as_json: bool,
               strict: bool) -> None:
    """Register every flow script in DIRECTORY (sub-folders are projects), or in one
    commit of a git repository (--git); each version from git records its commit.

    Calls in their source that differ between runs are warned about first."""
    if (directory is None) == (repo is None):
        raise click.UsageError("give a DIRECTORY or --git REPO (one of them)")
    def scan(folder: str | Path) -> None:
        report_findings(scan_directory(folder), strict, "no flow was registered")

    if repo is None:
        assert directory is not None
        scan(directory)
        synced, commit = engine.sync_flows(directory), None
    else:
        commit, synced = git_sync.sync_commit(engine.store, GitSource(repo, ref, folder), check=scan)
    for check in check_synced(engine, synced):
        for line in check_lines(check, after_sync=True):
            click.echo(line, err=True)
    if as_json:
        echo_json([{"name": s.name, "project": s.project, "version": s.version, "changed": s.changed}
                   | ({"git_commit": commit} if commit else {}) for s in synced])
        return
    for s in synced:
        click.echo(f"{'updated' if s.changed else 'unchanged':9} {s.project}/{s.name} {s.version[:12]}"
                   + (f" (git {commit[:12]})" if commit else ""))


@flows.command("ls")
@json_option
@pass_engine
def flows_ls(engine: Engine, as_json: bool) -> None:
    """List registered flows and their current versions (with the git commit of those synced from git)."""
    commits = FlowOrigins(engine.store).commits()
    rows = [{"name": f.name, "project": f.project, "version": f.version, "path": f.path,
             "git_commit": commits.get(f.version)} for f in engine.store.list_flows()]
    if as_json:
        echo_json(rows)
    else:
        print_table(["name", "project", "version", "path", "git commit"],
                    [[f.name, f.project, f.version[:12], f.path, (commits.get(f.version) or "-")[:12]]
                     for f in engine.store.list_flows()])


@flows.command("graph")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid"]), default="text", show_default=True,
              help="text: one line per call; dot: Graphviz (pipe to `dot -Tsvg`); mermaid: a Mermaid block.")
@pass_engine
def flows_graph(engine: Engine, name: str, fmt: str) -> None:
    """Draw the calls flow NAME's current version makes (child flows, connectors, waits,
    messages, steps), read from its source without running it, with their lines."""
    flow = engine.store.get_flow(name)
    if flow is None:
        raise EngineError(f"flow {name!r} is not registered; `engine flows ls` lists them (`engine flows sync DIR` adds more)")
    graph = script_graph(flow.name, flow.source)
    click.echo({"dot": to_dot, "mermaid": to_mermaid}[fmt](graph) if fmt != "text" else "\n".join(to_text(graph)), nl=fmt == "text")


def _hint_answer(message: Any) -> None:
    fields = " ".join(f"-f {f['name']}=..." for f in message.form or []) or "--json '{}'"
    click.echo(
        f"execution {message.execution_id} waits for an answer to {message.subject!r}: "
        f"engine messages respond {message.id} {fields}",
        err=True,
    )


def main() -> None:
    cli(prog_name="engine")

