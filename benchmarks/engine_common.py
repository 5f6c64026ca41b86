"""What the engine's shapes share: running ``benchmarks.engine_proc`` and ``engine worker``
processes, copying crashed databases, marks, and rows.

Every engine measurement runs in fresh processes on a database in the scratch directory,
so no figure depends on what an earlier shape left in memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.engine_proc import MARKS_ENV
from benchmarks.harness import Context, Durability, Row, Stats, parked_process

REPO = Path(__file__).resolve().parent.parent
PROC = (sys.executable, "-m", "benchmarks.engine_proc")
GROUP = "engine"
SUBJECT = "engine"
#: The engine's default durability first.
LEVELS: tuple[Durability, ...] = ("FULL", "NORMAL")


def levels(ctx: Context) -> tuple[Durability, ...]:
    """Levels for the multi-process shapes: FULL only in quick and tiny runs (as the peer)."""
    return ("FULL",) if ctx.quick or ctx.tiny else LEVELS


def engine_command() -> list[str]:
    """The ``engine`` console script beside this interpreter, else the same via ``-c``."""
    script = Path(sys.executable).with_name("engine")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from cli.main import main; main()"]


def _env(marks: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if marks is not None:
        env[MARKS_ENV] = str(marks)
    return env


def _argv(command: str, db: Path | str, sync: str, options: dict[str, Any]) -> list[str]:
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    return [*PROC, command, f"--db={db}", f"--sync={sync}", *flags]


def run_proc(command: str, db: Path | str, sync: str, marks: Path | None = None,
             **options: Any) -> dict[str, Any]:
    """Run one engine_proc command to completion; its RESULT payload."""
    done = subprocess.run(
        _argv(command, db, sync, options), capture_output=True, text=True, cwd=REPO,
        env=_env(marks), timeout=900, check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            payload: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
            return payload
    raise RuntimeError(
        f"engine_proc `{command}` on {db} exited {done.returncode} without a result; "
        f"its stderr ends with:\n{done.stderr[-3000:]}"
    )


def spawn_recover(db: Path | str, sync: str, marks: Path, **options: Any) -> tuple[float, dict[str, Any]]:
    """(time.time() just before the spawn, RESULT) of a fresh ``recover`` worker process."""
    spawned = time.time()
    return spawned, run_proc("recover", db, sync, marks, **options)


def bare_start_ms() -> float:
    """ms from spawning ``python -c "import engine"`` (an empty package), with the same
    interpreter, directory and environment as the engine processes, to its exit."""
    spawned = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import engine"], cwd=REPO, env=_env(None), check=True)
    return (time.perf_counter() - spawned) * 1e3


def spawn_cli_worker(db: Path, sync: str, marks: Path) -> float:
    """Run ``engine worker --until-idle`` on ``db`` to its exit; time.time() before the spawn."""
    argv = [*engine_command(), "--db", str(db), "--synchronous", sync, "worker",
            "--until-idle", "--concurrency", "1", "--poll", "0.005", "--no-supervise"]
    spawned = time.time()
    done = subprocess.run(argv, cwd=REPO, env=_env(marks), capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`engine worker` on {db} exited {done.returncode}: {done.stderr[-2000:]}")
    return spawned


@contextmanager
def parked(command: str, db: Path | str, sync: str, **options: Any) -> Iterator[list[str]]:
    """Run a ``*-prepare`` command until READY, SIGKILL it, yield its earlier lines."""
    with parked_process(_argv(command, db, sync, options), cwd=REPO, env=_env(None),
                        what=f"engine_proc `{command}`") as lines:
        yield lines


@contextmanager
def workers(db: Path | str, sync: str, count: int, *, concurrency: int, poll: float | None = None,
            marks: Path | None = None, warm_cache: bool = True) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` long-running ``engine worker`` processes on ``db`` (a path or a URL;
    ``poll``: the safety-net --poll, else the default; ``warm_cache=False``: --no-warm-cache),
    whose flows write marks to ``marks`` when given; killed on exit."""
    argv = [*engine_command(), "--db", str(db), "--synchronous", sync, "worker",
            "--concurrency", str(concurrency), "--no-supervise", *([] if warm_cache else ["--no-warm-cache"])]
    argv += ["--poll", str(poll)] if poll is not None else []
    procs = [subprocess.Popen(argv, cwd=REPO, env=_env(marks), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def row(bench: str, sync: Durability, metric: str, unit: str, samples: list[float],
        reference: Row | None = None) -> Row:
    """An engine row from samples, with its ratio to ``reference`` when given."""
    return Row.of(bench, SUBJECT, sync, metric, unit, Stats.of(samples), "engine", reference)


def per_second(reference: Row | None) -> Row | None:
    """A µs-per-commit limit row turned into commits per second, for throughput ratios."""
    if reference is None:
        return None
    return Row("limit", reference.subject, reference.durability, "commits/s", "/s",
               1e6 / reference.median, 1e6 / reference.max, 1e6 / reference.min, reference.n,
               "reference")
