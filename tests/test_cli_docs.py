"""Every ``engine`` command explains itself (``--help``) and is in the README, as
sqlite-utils checks its own commands against its docs; and the cli modules import
each other in one direction only."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import click

from cli.main import cli

ROOT = Path(__file__).resolve().parent.parent


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    """(``"flows sync"``, command) for every visible command and group, recursively."""
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        yield " ".join((*path, name)), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def documented(readme: str) -> set[str]:
    """The command paths the README names: ``engine X Y`` anywhere, and each alternative of
    a line of the CLI summary (``engine show ID | history ID`` names ``show`` and ``history``;
    ``engine messages ls | respond ID`` names ``messages ls`` and ``messages respond``)."""
    found = set(re.findall(r"engine ((?:[a-z][a-z-]* ?)+)", readme))
    for line in readme.splitlines():
        if line.startswith("engine "):
            alternatives = [a.strip() for a in line.removeprefix("engine ").split("|")]
            group = alternatives[0].split()[0]
            found.update(alternatives)
            found.update(f"{group} {a}" for a in alternatives[1:])
    return found


def test_every_command_has_help_text():
    missing = [name for name, command in commands() if not (command.help or command.short_help or "").strip()]
    assert missing == [], f"commands without help text: {missing}"


def test_every_command_is_in_the_readme():
    names = documented((ROOT / "README.md").read_text(encoding="utf-8"))
    missing = [
        name for name, command in commands()
        if not isinstance(command, click.Group) and not any(n == name or n.startswith(name + " ") for n in names)
    ]
    assert missing == [], f"commands the README does not name: {missing}"


def test_the_readme_check_reads_the_summary_forms():
    names = documented("engine start | pause | cancel ID\nengine messages ls | respond ID\nsee `engine db check`.\n")
    assert {"start", "pause", "cancel ID", "messages ls", "messages respond ID", "db check"} <= {n.strip() for n in names}


def test_cli_modules_import_each_other_without_cycles():
    imports: dict[str, set[str]] = {}
    for path in (ROOT / "cli").glob("*.py"):
        found = imports.setdefault(f"cli.{path.stem}", set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "cli":
                found.update(f"cli.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cli."):
                found.add(node.module)

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in imports.get(start, set()) - seen:
            if nxt == target or reaches(nxt, target, seen | {nxt}):
                return True
        return False

    cycles = sorted(module for module in imports if reaches(module, module, set()))
    assert cycles == [], f"cli modules in an import cycle: {cycles}"
