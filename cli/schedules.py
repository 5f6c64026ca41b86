"""``engine schedules``: start a flow, or sync flows from git, at the slots of a cron
expression. Thin: each command calls one function of ``engine.schedules``."""

from __future__ import annotations

import time

import click

from cli.app import cli, git_source, git_sync_options, json_option, parse_inputs, pass_engine
from cli.render import echo_json, print_table
from engine import schedules as sched
from engine.api import Engine


@cli.group()
def schedules() -> None:
    """Schedules: start a flow, or sync flows from git, at each slot of a cron expression
    (fired by every worker and `engine serve`, exactly once per slot)."""


@schedules.command("add")
@click.argument("name")
@click.option("--flow", help="The flow each slot starts.")
@git_sync_options
@click.option("--cron", required=True, metavar="EXPR",
              help="Cron expression: 5 fields (minute hour day month weekday), or 6 (the sixth: seconds).")
@click.option("-i", "--input", "pairs", multiple=True, metavar="KEY=VALUE", help="An input (JSON value or string).")
@click.option("--inputs", "inputs_json", metavar="JSON", help="All inputs as one JSON object.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the cron expression.")
@click.option("--catch-up", type=click.Choice(sched.CATCH_UP), default="latest", show_default=True,
              help="Slots missed while no worker ran: fire the latest, all (at most 100), or none.")
@click.option("--start", metavar="ISO-DATE", help="First slot at or after this date (default: now); "
              "an earlier one fires missed slots as --catch-up says.")
@json_option
@pass_engine
def schedules_add(engine: Engine, name: str, flow: str | None, git_repo: str | None, git_ref: str | None,
                  git_path: str | None, cron: str, pairs: tuple[str, ...], inputs_json: str | None, timezone: str,
                  catch_up: str, start: str | None, as_json: bool) -> None:
    """Create the schedule NAME that starts FLOW (or syncs flows from git) at each slot of EXPR."""
    git = git_source(flow, git_repo, git_ref, git_path)
    info = sched.add(engine.store, name, flow, cron, git=git, inputs=parse_inputs(pairs, inputs_json),
                     timezone=timezone, catch_up=catch_up, start=start, now=time.time())
    if as_json:
        echo_json(info)
        return
    click.echo(f"schedule {name}: {info.action} at {cron!r} ({timezone}); next slot {info.next_slot}")


@schedules.command("ls")
@json_option
@pass_engine
def schedules_ls(engine: Engine, as_json: bool) -> None:
    """List schedules with their next and last slots, and what the last one did (the
    execution it started, or the commit and flows its git sync registered)."""
    rows = sched.listing(engine.store)
    if as_json:
        echo_json(rows)
        return
    print_table(["name", "action", "cron", "timezone", "catch-up", "next slot", "last slot", "last result"], [
        [s.name, s.action, s.cron, s.timezone, s.catch_up, "paused" if s.paused else s.next_slot, s.last_slot or "-",
         s.last_sync_summary or s.last_execution or "-"] for s in rows])


@schedules.command("rm")
@click.argument("name")
@pass_engine
def schedules_rm(engine: Engine, name: str) -> None:
    """Delete the schedule NAME (the executions it started stay)."""
    sched.remove(engine.store, name)
    click.echo(f"removed schedule {name!r}")


@schedules.command("pause")
@click.argument("name")
@pass_engine
def schedules_pause(engine: Engine, name: str) -> None:
    """Pause the schedule NAME: no slot fires until it is resumed."""
    sched.set_paused(engine.store, name, True, time.time())
    click.echo(f"paused schedule {name!r}")


@schedules.command("resume")
@click.argument("name")
@pass_engine
def schedules_resume(engine: Engine, name: str) -> None:
    """Resume the schedule NAME from its next slot (slots while it was paused do not fire)."""
    sched.set_paused(engine.store, name, False, time.time())
    click.echo(f"resumed schedule {name!r}")
