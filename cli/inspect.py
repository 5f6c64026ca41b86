"""Reading, replaying and debugging executions: ``engine ls``, ``show``, ``history``,
``logs``, ``replay``, ``check``, ``debug``, ``export`` and ``dev``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from cli.app import (
    CONCURRENCY,
    EngineOpener,
    cli,
    json_option,
    pass_engine,
    pass_opener,
)
from cli.determinism import echo_findings, strict_option
from cli.inspect_render import (
    check_lines,
    clock_time,
    history_rows,
    replay_lines,
    stream_line,
)
from cli.render import echo_json, echo_lines, format_time, print_table
from engine import debugger, views
from engine import details as details_mod
from engine.api import Engine
from engine.determinism import NondeterministicFlowError, scan_files
from engine.devloop import DevReport, dev_loop
from engine.history_file import event_json, export_history, replay_file
from engine.inspect import (
    check_files,
    file_code,
    pinned_code,
    recorded,
    replay_execution,
)
from engine.views import execution_dict
from store.events import Event, ForkOrigin, LogRecorded
from store.model import STATUSES


def parse_since(text: str) -> float:
    """``10m``, ``2h``, ``1d``, ``1w`` ago, or an ISO date/time (local time unless it says)."""
    try:
        return views.parse_since(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s" if value < 120 else f"{value / 60:.1f} min"


# -- reading ----------------------------------------------------------------------------


@cli.command("ls")
@click.option("--status", type=click.Choice(STATUSES, case_sensitive=False), help="Only executions with this status.")
@click.option("--flow", help="Only executions of this flow.")
@click.option("--project", help="Only executions in this project.")
@click.option("--parent", "parent_id", help="Only children of this execution.")
@click.option("--since", help="Only executions created since: 10m, 2h, 1d, or an ISO date.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="At most this many (0: all).")
@json_option
@pass_engine
def ls(engine: Engine, status: str | None, flow: str | None, project: str | None, parent_id: str | None,
       since: str | None, limit: int, as_json: bool) -> None:
    """List executions, newest first."""
    rows = engine.store.list_executions(
        status=status.upper() if status else None, flow=flow, project=project, parent_id=parent_id,
        since=parse_since(since) if since else None, limit=limit or None,
    )
    if as_json:
        echo_json([execution_dict(r) for r in rows])
        return
    print_table(
        ["id", "flow", "status", "created", "duration", "message"],
        [[r.id, r.flow, r.status, format_time(r.created_at),
          _seconds(None if r.ended_at is None else r.ended_at - r.created_at), r.message or ""] for r in rows],
        page=True,
    )


@cli.command()
@click.argument("execution_id")
@json_option
@pass_engine
def show(engine: Engine, execution_id: str, as_json: bool) -> None:
    """Show one execution: fields, flow version, timings, children, dependencies."""
    d = details_mod.details(engine, execution_id)
    if as_json:
        echo_json(views.details_dict(d))
        return
    for key, value in execution_dict(d.execution).items():
        if key.endswith("_at"):
            value = format_time(value)
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, default=repr)
        click.echo(f"{key:13} {value if value is not None else '-'}")
    v, t = d.version, d.timings
    if d.execution.type == "CONNECTION":
        click.echo(f"{'connector':13} {d.execution.input_value.get('connector_type')} (a connection runs no flow script)")
    else:
        state = "the flow's current version" if v.current == v.version else (
            f"the flow is now at {v.current[:12]}; this execution stays on its own version" if v.current
            else "the flow is no longer registered")
        click.echo(f"{'version':13} {v.version[:12]} ({state})" + (f", from {v.path}" if v.path else "")
                   + (f", git commit {v.git_commit}" if v.git_commit else ""))
    click.echo(f"{'timings':13} queued {_seconds(t.queued)} · running {_seconds(t.running)} · waiting "
               f"{_seconds(t.waiting)} ({t.timers} timer(s), {t.waits} wait(s)) · total {_seconds(t.total)} · {t.events} events")
    if d.fork is not None:
        _show_fork(engine, d.fork)
    for title, rows in (("children", [[c.id, c.flow, c.status, format_time(c.created_at)] for c in d.children]),
                        ("waits for", [[x.id, x.flow or "?", x.status or "?", format_time(x.since)] for x in d.waits_for]),
                        ("waited for by", [[x.id, x.flow or "?", x.status or "?", format_time(x.since)] for x in d.waited_by])):
        if rows:
            click.echo(f"\n{title}:")
            print_table(["id", "flow", "status", "since" if title != "children" else "created"], rows)


def _show_fork(engine: Engine, fork: ForkOrigin) -> None:
    """Where a fork came from and which children it owns or shares."""
    click.echo(f"{'forked from':13} {fork.source} at seq {fork.at_seq}")

    def row(eid: str) -> list[str]:
        found = engine.store.get_execution(eid)
        return [found.flow, found.status] if found else ["?", "?"]

    if fork.recreated:
        click.echo("\nchildren re-created for the fork (they had not ended at the cut):")
        print_table(["original -> fork's child", "flow", "status"],
                    [[f"{old} -> {new}", *row(new)] for old, new in fork.recreated.items()])
    if fork.shared:
        click.echo("\nchildren shared read-only with the original (they had ended at the cut):")
        print_table(["id", "flow", "status"], [[eid, *row(eid)] for eid in fork.shared])


@cli.command()
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True, help="Full payloads: [{seq, kind, at, line, data}] (JSON lines with --follow).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events until the execution ends.")
@pass_engine
def history(engine: Engine, execution_id: str, as_json: bool, follow: bool) -> None:
    """Show an execution's event log: each call, its result, and the script line that made it."""
    rec = recorded(engine, execution_id)
    if as_json and not follow:
        echo_json([event_json(e) for e in rec.events])
        return
    rows = history_rows(rec.events, rec.source_lines())
    if not follow:
        print_table(["seq", "time", "kind", "call", "result", "line"], rows, page=True)
        return
    _emit(rec.events, rows, as_json)
    last = rec.events[-1].seq if rec.events else 0
    for events in details_mod.follow(engine, rec.id, last):
        fresh = recorded(engine, rec.id)
        _emit(events, history_rows(events, fresh.source_lines()), as_json)
    if not as_json:
        row = engine.get(rec.id)
        click.echo(f"execution {row.id} is {row.status}" + (f": {row.message}" if row.message else ""))


def _emit(events: list[Event], rows: list[list[Any]], as_json: bool) -> None:
    for event, row in zip(events, rows):
        click.echo(json.dumps(event_json(event), default=repr) if as_json else stream_line(row))


@cli.command()
@click.argument("execution_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new entries until the execution ends.")
@json_option
@pass_engine
def logs(engine: Engine, execution_id: str, follow: bool, as_json: bool) -> None:
    """Show what the execution logged with this.log."""
    row, entries = details_mod.logs(engine, execution_id)
    data = [_log_item(e) for e in entries]
    if as_json and not follow:
        echo_json(data)
        return
    for item in data:
        click.echo(json.dumps(item) if as_json else _log_line(item))
    if follow:
        for events in details_mod.follow(engine, row.id, row.last_seq):
            for item in (_log_item(e) for e in events if isinstance(e.body, LogRecorded)):
                click.echo(json.dumps(item) if as_json else _log_line(item))


def _log_item(event: Event) -> dict[str, Any]:
    body = event.body
    assert isinstance(body, LogRecorded)
    return {"seq": event.seq, "at": event.at, "level": body.level, "message": body.message, "line": event.line}


def _log_line(item: dict[str, Any]) -> str:
    colour = {"error": "red", "warning": "yellow", "debug": "bright_black"}.get(item["level"])
    level = click.style(f"{item['level']:<7}", fg=colour)
    return f"{clock_time(item['at'])}  {level}  {item['message']}" + (f"  (line {item['line']})" if item["line"] else "")


# -- replay, what-if, debug --------------------------------------------------------------


@cli.command()
@click.argument("execution_id", required=False)
@click.option("--flow-file", type=click.Path(exists=True, dir_okay=False), help="Replay against this file instead of the pinned version.")
@click.option("--history", "history_file", type=click.Path(exists=True, dir_okay=False), help="Replay an exported history file instead.")
@json_option
@pass_opener
def replay(opener: EngineOpener, execution_id: str | None, flow_file: str | None, history_file: str | None,
           as_json: bool) -> None:
    """Re-run the handler against the recorded history, with no side effects.

    Prints "consistent", or the first divergence: seq, recorded call and new call,
    both source lines, and the likely cause. Exits 0 only when consistent.
    """
    if bool(execution_id) == bool(history_file):
        raise click.UsageError("give an execution ID or --history FILE (exactly one)")
    if history_file:
        result = replay_file(history_file, flow_file)
    else:
        result = replay_execution(opener.open(), str(execution_id), flow_file)
    if as_json:
        echo_json(result)
    else:
        echo_lines(replay_lines(result))
    if not result.consistent:
        sys.exit(1)


@cli.command()
@click.argument("flow_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@json_option
@strict_option
@pass_engine
def check(engine: Engine, flow_files: tuple[str, ...], as_json: bool, strict: bool) -> None:
    """What-if: would changed FLOW_FILEs break executions in flight?

    Replays every execution of each flow (named after the file) that has not ended
    against the file's code, before anything is deployed. Exits 1 if any would break.
    Calls in the files that differ between runs are warned about (on stderr).
    """
    findings = scan_files(flow_files)
    echo_findings(findings)
    checks = check_files(engine, list(flow_files))
    if as_json:
        echo_json([{**msgspec.to_builtins(c), "ok": c.ok} for c in checks])
    else:
        for c in checks:
            echo_lines(check_lines(c))
    if strict and findings:
        raise NondeterministicFlowError(findings, "the check fails")
    if not all(c.ok for c in checks):
        sys.exit(1)


@cli.command()
@click.argument("execution_id")
@click.option("--at", "at_seq", type=int, metavar="SEQ", help="Stop just before the command with this seq.")
@click.option("--flow-file", type=click.Path(exists=True, dir_okay=False), help="Step through this file's code instead.")
@pass_engine
def debug(engine: Engine, execution_id: str, at_seq: int | None, flow_file: str | None) -> None:
    """Step through an execution's handler under pdb, with its recorded values.

    Every command is answered from the log: no step runs, no child is created,
    nothing touches the outside world. Works on ended executions too.
    """
    rec = recorded(engine, execution_id)
    code = file_code(flow_file) if flow_file else pinned_code(rec)
    where = debugger.plan(rec, code, at_seq)
    click.echo(f"Debugging execution {rec.id} (flow {rec.flow}, {rec.status}) against {code.label}.")
    click.echo("Every command is answered from the recorded history; nothing runs live.")
    if where.note:
        click.echo(where.note)
    target = f"seq {where.seq}, {where.call}, line {where.line}" if where.seq else where.call
    click.echo(f"Stopping at {target}. `next` runs a line with its recorded results, `continue` runs on, `quit` stops.")
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    outcome = debugger.run(rec, code, where, None if interactive else sys.stdin, None if interactive else sys.stdout)
    if outcome.kind == "ended":
        click.echo(f"\nreplay ended {outcome.status}" + (f": {outcome.message}" if outcome.message else ""))
    elif outcome.kind == "exhausted":
        click.echo(f"\nreplay reached the end of the recorded history (seq {outcome.seq}); the execution is {outcome.status} there")
    elif outcome.kind == "diverged":
        click.echo(f"\nreplay diverged: {outcome.message}")
    else:
        click.echo("\ndebugger quit")


# -- export and the edit loop ----------------------------------------------------------------


@cli.command()
@click.argument("execution_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@pass_engine
def export(engine: Engine, execution_id: str, output: str | None) -> None:
    """Write a portable history (fields, events, flow source) as JSON; `engine replay --history` reads it."""
    text = json.dumps(export_history(engine, execution_id), indent=2, default=repr, ensure_ascii=False)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


@cli.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--concurrency", type=CONCURRENCY, default=4, show_default=True, help="Activations the embedded worker runs at once.")
@click.option("--exit-after", type=int, hidden=True, help="Stop after this many saves (for tests).")
@strict_option
@pass_engine
def dev(engine: Engine, directory: str, concurrency: int, exit_after: int | None, strict: bool) -> None:
    """Watch DIRECTORY: sync each saved flow, run a worker, report what the change breaks.

    After each save, lists the in-flight executions of the changed flow that could not
    be moved to the new version (they keep running on the version they started with),
    and the calls in its source that differ between runs (--strict: the save is not synced).
    """

    def report(r: DevReport) -> None:
        echo_findings(r.findings)
        if r.error:
            click.echo(click.style(f"error: {r.error}", fg="red"), err=True)
        elif r.first:
            click.echo(f"watching {directory}: {len(r.synced)} flow(s) registered; a worker runs queued executions. Ctrl-C stops.")
        for s in [] if r.first else r.synced:
            click.echo(f"{s.project}/{s.name}: new version {s.version[:8]}")
        for c in r.checks:
            lines = check_lines(c, after_sync=True)
            echo_lines(lines or [f"  {c.checked} in-flight execution(s) on older versions: all could be moved"])

    try:
        dev_loop(engine, directory, report, max_rounds=exit_after, worker_options={"concurrency": concurrency},
                 strict=strict)
    except NondeterministicFlowError as exc:
        echo_findings(exc.findings)
        raise
    except KeyboardInterrupt:
        click.echo("stopped")
