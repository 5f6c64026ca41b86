"""``engine connectors``: stored connector configurations (a type and its base parameters)."""

from __future__ import annotations

import json
from typing import Any

import click

from cli.app import cli, json_option, parse_pairs, pass_engine
from cli.render import echo_json, print_table
from engine.api import Engine
from engine.connectors import mask_secrets
from engine.errors import EngineError
from store.model import ConnectorWrite


@cli.group()
def connectors() -> None:
    """Stored connectors: a connector type and its base parameters."""


@connectors.command("set")
@click.argument("name")
@click.option("--type", "connector_type", required=True, help="REST, SQLITE, POSTGRES, GIT, SMTP, COMMAND, ...")
@click.option("-v", "--value", "pairs", multiple=True, metavar="KEY=VALUE",
              help="A parameter (JSON value or string). Reference secrets as '${env:NAME}'.")
@click.option("--json", "value_json", metavar="JSON", help="All parameters as one JSON object.")
@click.option("--description")
@pass_engine
def connectors_set(engine: Engine, name: str, connector_type: str, pairs: tuple[str, ...], value_json: str | None,
                   description: str | None) -> None:
    """Create or replace a stored connector; ``this.connect(NAME, **overrides)`` uses it."""
    value = parse_pairs(pairs, value_json, pair_option="-v", whole_option="--json")
    engine.save_connector(name, connector_type, value, description)
    click.echo(f"saved connector {name} ({connector_type.upper()}): {json.dumps(mask_secrets(value))}")
    if mask_secrets(value) != value:
        click.echo(f"warning: connector {name} holds literal secrets (shown as ***), stored unencrypted in "
                   f"{engine.store.path}; prefer '${{env:NAME}}' references, resolved by the worker", err=True)


def _connector_dict(c: ConnectorWrite) -> dict[str, Any]:
    return {"name": c.name, "connector_type": c.connector_type, "value": mask_secrets(c.value),
            "description": c.description}


@connectors.command("ls")
@json_option
@pass_engine
def connectors_ls(engine: Engine, as_json: bool) -> None:
    """List stored connectors (secrets masked)."""
    rows = [_connector_dict(c) for c in engine.store.list_connectors()]
    if as_json:
        echo_json(rows)
        return
    print_table(["name", "type", "parameters"], [[r["name"], r["connector_type"], json.dumps(r["value"])] for r in rows])


@connectors.command("show")
@click.argument("name")
@pass_engine
def connectors_show(engine: Engine, name: str) -> None:
    """Show one stored connector as JSON (secrets masked)."""
    found = engine.store.get_connector(name)
    if found is None:
        raise EngineError(f"no connector {name!r}; `engine connectors ls` lists them")
    echo_json(_connector_dict(found))
