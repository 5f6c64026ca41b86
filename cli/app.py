"""The ``engine`` click group and what its commands share: the store opener (``--db``),
the error handling that turns domain errors into one line, and shared options and parsers.

Command modules (``cli.main``, ``cli.inspect``, ``cli.control``, ...) import from here and
register their commands on ``cli``; ``cli.main`` imports them all (nothing imports back).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar

import click

from engine import warm
from engine.api import Engine, default_db_path
from engine.errors import EngineError
from store import values
from store.errors import StoreError
from store.git_actions import GitSource


class _OneLineUsageError(click.ClickException):
    """Bad usage said in one line (click's own adds the usage text); exits 2 like click's."""

    exit_code = 2


class EngineGroup(click.Group):
    """Turns engine errors and a command's usage errors into one line on stderr and a
    non-zero exit (2 for usage errors, as click has it)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for arg in args:
            check_text(arg, "command-line argument")
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (EngineError, StoreError) as exc:
            raise click.ClickException(str(exc)) from None
        except click.UsageError as exc:
            path = exc.ctx.command_path.split()[1:] if exc.ctx is not None else []
            where = f"; see `engine {' '.join(path)} --help`" if path else ""
            raise _OneLineUsageError(exc.format_message().rstrip(".") + where) from None


class EngineOpener:
    """The database of this invocation, opened when a command first needs it (so that
    ``engine replay --history FILE`` does not create one)."""

    def __init__(self, path: str, synchronous: str | None) -> None:
        self.path, self.synchronous = path, synchronous
        self._engine: Engine | None = None

    def open(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.path, self.synchronous)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


F = TypeVar("F", bound=Callable[..., Any])


def check_text(text: str, what: str) -> str:
    """``text`` if it is valid UTF-8; else a one-line error (argv that is not UTF-8
    reaches Python as lone surrogates, which cannot be stored)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise click.ClickException(
            f"{what} '{shown}' is not valid UTF-8 text; pass text in UTF-8 (check LANG/LC_ALL and the "
            "encoding of the script that runs engine), or binary data as base64"
        ) from None
    return text


class FiniteRange(click.FloatRange):
    """A float range that also refuses nan and inf (click's range lets nan through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def json_value(text: str, option: str) -> Any:
    """``text`` parsed as JSON (``json.JSONDecodeError`` if it is not JSON); nesting so
    deep that the parser gives up is a one-line error."""
    try:
        return json.loads(text)
    except RecursionError:
        raise click.BadParameter(
            f"the JSON value is nested too deeply; values may nest at most {values.MAX_NESTING} lists or dicts deep",
            param_hint=option,
        ) from None


def pass_engine(f: F) -> F:
    """Pass the opened ``Engine`` as the command's first argument."""

    def new_func(*args: Any, **kwargs: Any) -> Any:
        return f(click.get_current_context().find_object(EngineOpener).open(), *args, **kwargs)  # type: ignore[union-attr]

    return update_wrapper(new_func, f)  # type: ignore[return-value]


pass_opener = click.make_pass_decorator(EngineOpener)


@click.group(cls=EngineGroup)
@click.option("--db", "db_path", envvar="ENGINE_DB", default=None, metavar="PATH|URL",
              help="The database: a SQLite file path or sqlite:///PATH (postgresql:// is not built yet) "
                   "[default: $ENGINE_DB, else ./.engine/engine.db].")
@click.option("--synchronous", type=click.Choice(["FULL", "NORMAL"], case_sensitive=False), default=None,
              envvar="ENGINE_SYNCHRONOUS", help="SQLite durability: FULL (default) survives power loss.")
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine does.")
@click.pass_context
def cli(ctx: click.Context, db_path: str | None, synchronous: str | None, verbose: bool) -> None:
    """Durable execution for Python automations."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warm.size_from_env()  # a bad ENGINE_WARM_CACHE is one line now, not a worker that dies later
    ctx.obj = EngineOpener(db_path or default_db_path(), synchronous)
    ctx.call_on_close(ctx.obj.close)


#: The ranges of the worker's numeric options (``engine worker``, ``engine dev``).
CONCURRENCY = click.IntRange(1, 1024)
LEASE_SECONDS = FiniteRange(0, 86400, min_open=True)
POLL_SECONDS = FiniteRange(0, 60)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON only.")


def parse_pairs(
    pairs: tuple[str, ...], whole: str | None, *, pair_option: str, whole_option: str, json_values: bool = True,
) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (the ``pair_option`` given many times) over one JSON object
    (``whole_option``). With ``json_values`` a VALUE is parsed as JSON where it parses;
    otherwise it stays a string (a form converts it to its field's type)."""
    result: dict[str, Any] = {}
    if whole:
        try:
            result = json_value(whole, whole_option)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint=whole_option) from None
        if not isinstance(result, dict):
            raise click.BadParameter("must be a JSON object", param_hint=whole_option)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=pair_option)
        if json_values:
            try:
                result[key] = json_value(raw, pair_option)
                continue
            except json.JSONDecodeError:
                pass
        result[key] = raw
    return result


def parse_inputs(pairs: tuple[str, ...], inputs_json: str | None) -> dict[str, Any]:
    """``-i KEY=VALUE`` pairs (values parsed as JSON where they parse) over ``--inputs JSON``."""
    return parse_pairs(pairs, inputs_json, pair_option="-i", whole_option="--inputs")


def git_sync_options(f: F) -> F:
    """``--git-sync REPO [--ref REF] [--path DIR]``: a schedule's or webhook's action is
    the git sync of ``engine flows sync --git`` instead of starting ``--flow``."""
    f = click.option("--path", "git_path", metavar="DIR", help="With --git-sync: the flows folder in the repository.")(f)
    f = click.option("--ref", "git_ref", metavar="REF",
                     help="With --git-sync: the branch, tag or commit (default: HEAD, read anew each time).")(f)
    return click.option("--git-sync", "git_repo", metavar="REPO",
                        help="Instead of --flow: register the flows of the newest commit of this git repository "
                             "(a path or URL git can reach), as `engine flows sync --git` does.")(f)


def git_source(flow: str | None, repo: str | None, ref: str | None, path: str | None) -> GitSource | None:
    """The git source of ``--git-sync`` (None with ``--flow``); a usage error unless
    exactly one of them is given."""
    if (flow is None) == (repo is None):
        raise click.UsageError("give --flow FLOW or --git-sync REPO (one of them)")
    if repo is None:
        if ref is not None or path is not None:
            raise click.UsageError("--ref and --path go with --git-sync REPO")
        return None
    return GitSource(repo, ref or "HEAD", path)
