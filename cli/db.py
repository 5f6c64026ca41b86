"""``engine db backup``, ``engine db check`` and ``engine db copy``: looking after the database.
Thin: each command calls one method of the store and renders its result."""

from __future__ import annotations

import os

import click

from cli.app import EngineOpener, cli, json_option, pass_opener
from cli.render import echo_json
from engine.errors import EngineError
from store.copy import copy_store
from store.open import file_of


@cli.group()
def db() -> None:
    """Look after the database: back it up, check it, copy it to another."""


def _existing(opener: EngineOpener) -> EngineOpener:
    """``opener``, unless it names a database file that is not there (opening would make it)."""
    path = file_of(opener.path)
    if path is not None and not os.path.exists(path):
        raise EngineError(f"database {path} does not exist; pass --db PATH or set ENGINE_DB")
    return opener


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@pass_opener
def db_backup(opener: EngineOpener, path: str) -> None:
    """Copy the database to the new file PATH (mode 0600), safe while workers run.

    Uses SQLite's online backup: the copy is one consistent moment of the database.
    Restore by stopping every worker and putting the copy in place of the database file
    (with no -wal or -shm file beside it).
    """
    _existing(opener).open().store.backup(path)
    click.echo(f"backed up {opener.path} to {path} ({os.path.getsize(path)} bytes)")


@db.command("check")
@json_option
@pass_opener
def db_check(opener: EngineOpener, as_json: bool) -> None:
    """Check the engine's invariants (and a SQLite file's integrity); exit 1 if anything is wrong.

    Invariants: each execution's events are seqs 1..N without gaps; an ended execution has
    exactly one end event (in its current attempt), with its status, and nothing after it;
    only RUNNING executions hold a lease. One line per problem. Safe while workers run:
    everything is read in one snapshot. On PostgreSQL the server checks its own storage
    (amcheck); this checks what the engine wrote.
    """
    store = _existing(opener).open().store
    problems = store.check()
    if as_json:
        echo_json({"database": store.path, "ok": not problems, "problems": problems})
    else:
        for problem in problems:
            click.echo(problem)
    if problems:
        raise EngineError(
            f"database {store.path}: {len(problems)} problem(s) found; stop the workers and restore the last good "
            "backup (`engine db backup` of a SQLite file, pg_dump of PostgreSQL), or keep this database for a post-mortem"
        )
    if not as_json:
        click.echo(f"database {store.path}: ok")


@db.command("copy")
@click.argument("src", metavar="SRC")
@click.argument("dst", metavar="DST")
@json_option
def db_copy(src: str, dst: str, as_json: bool) -> None:
    """Copy every flow, execution, event, wait, timer, message, setting, connector,
    token, webhook and schedule from database SRC into the empty database DST, then
    verify the copy (row counts, and each execution's state and event log).

    SRC and DST are --db values: SQLite paths or postgresql:// URLs, either way round.
    Stop every worker on SRC first (the copy refuses while one holds a lease; one that
    starts meanwhile waits until the copy is done). Executions waiting on children,
    timers or messages go on in DST once workers run there.
    """
    report = copy_store(src, dst)
    if as_json:
        echo_json({"source": report.source, "target": report.target, "copied": report.copied,
                   "verified": report.verified})
    else:
        click.echo(report.summary())
