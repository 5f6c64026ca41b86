"""``engine serve`` (the HTTP API and webhooks), ``engine tokens`` and ``engine webhooks``
(who may call it). Thin: each command calls one function of ``engine.server``."""

from __future__ import annotations

import logging
import shlex

import click

from cli.app import CONCURRENCY, cli, git_source, git_sync_options, json_option, pass_engine
from cli.render import echo_json, format_time, print_table
from engine.api import Engine
from engine.server import keys


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 makes the API reachable from other machines.")
@click.option("--port", type=click.IntRange(0, 65535), default=8321, show_default=True, help="Port (0: a free one).")
@click.option("--no-worker", is_flag=True, help="Serve only; `engine worker` processes run the executions.")
@click.option("--concurrency", type=CONCURRENCY, default=16, show_default=True,
              help="Activations the embedded worker runs at once.")
@pass_engine
def serve(engine: Engine, host: str, port: int, no_worker: bool, concurrency: int) -> None:
    """Serve the JSON API (/api, described at /api/openapi.json), webhooks and Prometheus
    metrics (/metrics), with an embedded worker, until Ctrl-C or SIGTERM.

    API calls need `Authorization: Bearer TOKEN` (`engine tokens create NAME`); the
    login link printed at start (it works once) logs a browser in.
    """
    from engine.server.metrics import (
        Metrics,  # loads the web framework only for this command
    )
    from engine.server.run import serve as run_server

    logging.getLogger("engine.server.access").setLevel(logging.INFO)

    def ready(url: str, link: str) -> None:
        click.echo(f"engine serve: {url} on {engine.store.path}" + ("" if no_worker else
                   f", with a worker ({concurrency} at once)"))
        click.echo(f"API: {url}/api (see {url}/api/openapi.json); send `Authorization: Bearer TOKEN`")
        click.echo(f"log in a browser with (works once): {link}")
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo(f"warning: listening on {host}: other machines can reach this plain-HTTP server; put it behind "
                       "a TLS proxy", err=True)

    metrics = Metrics(engine.store)
    worker = None if no_worker else engine.worker(concurrency=concurrency, observer=metrics)
    run_server(engine, host, port, worker=worker, on_ready=ready, metrics=metrics)
    click.echo("engine serve stopped")


# -- tokens ------------------------------------------------------------------------------


@cli.group()
def tokens() -> None:
    """API tokens for `engine serve` (stored hashed; shown once)."""


@tokens.command("create")
@click.argument("name")
@pass_engine
def tokens_create(engine: Engine, name: str) -> None:
    """Create the API token NAME and print it (only this once)."""
    token = keys.create_token(engine, name)
    click.echo(token)
    click.echo(f"API token {name!r} created; it is shown only now: send it as `Authorization: Bearer TOKEN`", err=True)


@tokens.command("ls")
@json_option
@pass_engine
def tokens_ls(engine: Engine, as_json: bool) -> None:
    """List API tokens (names only)."""
    rows = keys.list_tokens(engine)
    if as_json:
        echo_json(rows)
        return
    print_table(["name", "created", "revoked"],
                [[t.name, format_time(t.created_at), format_time(t.revoked_at) if t.revoked_at else ""] for t in rows])


@tokens.command("revoke")
@click.argument("name")
@pass_engine
def tokens_revoke(engine: Engine, name: str) -> None:
    """Revoke the API token NAME: requests with it are refused from now on."""
    keys.revoke_token(engine, name)
    click.echo(f"revoked API token {name!r}")


# -- webhooks ----------------------------------------------------------------------------


@cli.group()
def webhooks() -> None:
    """Webhooks: POST /webhooks/NAME with the key starts a flow (or syncs flows from git)."""


@webhooks.command("create")
@click.argument("name")
@click.option("--flow", help="The flow each call starts.")
@git_sync_options
@click.option("--url", "base", default="http://127.0.0.1:8321", show_default=True,
              help="Where `engine serve` is reached, for the printed URL.")
@json_option
@pass_engine
def webhooks_create(engine: Engine, name: str, flow: str | None, git_repo: str | None, git_ref: str | None,
                    git_path: str | None, base: str, as_json: bool) -> None:
    """Create the webhook NAME that starts FLOW (or, with --git-sync, registers the flows
    of the newest commit: call it from the repository's post-receive hook); prints its
    URL and key (the key only this once)."""
    key, hook = keys.create_webhook(engine, name, flow, git_source(flow, git_repo, git_ref, git_path))
    url = f"{base.rstrip('/')}/webhooks/{name}"
    if as_json:
        echo_json({"name": name, "flow": flow, "git": hook.git, "url": url, "key": key})
        return
    header = shlex.quote('X-Engine-Webhook-Key: ' + key)
    click.echo(f"webhook {name}: {hook.action}")
    click.echo(f"url: {url}")
    click.echo(f"key: {key}  (shown only now; send it as the X-Engine-Webhook-Key header)")
    if hook.git is None:
        click.echo(f"try: curl -X POST -H {header} -H 'Content-Type: application/json' -d '{{}}' '{url}?wait=30'")
    else:
        click.echo(f"in the repository's hooks/post-receive: curl -fsS -X POST -H {header} '{url}'")


@webhooks.command("ls")
@json_option
@pass_engine
def webhooks_ls(engine: Engine, as_json: bool) -> None:
    """List webhooks (never their keys), with how the last git sync of each that syncs ended."""
    rows = keys.list_webhooks(engine)
    if as_json:
        echo_json(rows)
        return
    print_table(["name", "action", "created", "last sync"],
                [[w.name, w.action, format_time(w.created_at), w.last_sync_summary or "-"] for w in rows])


@webhooks.command("rm")
@click.argument("name")
@pass_engine
def webhooks_rm(engine: Engine, name: str) -> None:
    """Delete the webhook NAME: calls to it are refused from now on."""
    keys.remove_webhook(engine, name)
    click.echo(f"removed webhook {name!r}")
