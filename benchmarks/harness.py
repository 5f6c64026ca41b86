"""The benchmark model: rows, statistics, the run context and the registry.

A *benchmark* is a named shape (``limit``, ``record``, ``replay``, ...). Several modules
contribute rows to the same benchmark: the raw-SQLite limit, the engine, and peers such as
DBOS. Each contributor is a function ``fn(ctx: Context) -> list[Row]`` registered with
:func:`register`; its docstring is the method paragraph printed beside its rows in
RESULTS.md. A module adds rows to an existing benchmark simply by registering under the
same name::

    from benchmarks.harness import Context, Row, register

    @register("record", group="engine", kind="engine")
    def engine_record(ctx: Context) -> list[Row]:
        \"\"\"One flow making 1,000 sequential trivial steps; µs per step.\"\"\"
        ...
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

Kind = Literal["reference", "engine", "peer"]
Durability = Literal["FULL", "NORMAL", "n/a"]

#: Table order, and the order engine shapes and peers fill in.
BENCHMARK_ORDER: tuple[str, ...] = (
    "limit",
    "record",
    "replay",
    "wake",
    "children",
    "restart",
    "idle",
    "throughput",
)

#: Within one table, rows of the reference come first, then the engine's, then peers'.
KIND_ORDER: dict[Kind, int] = {"reference": 0, "engine": 1, "peer": 2}


@dataclass(frozen=True)
class Stats:
    """Median, min and max of ``n`` samples."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, samples: list[float]) -> Stats:
        """Summarise samples; raises ValueError on an empty list."""
        if not samples:
            raise ValueError("Stats.of needs at least one sample")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))


def measure(fn: Callable[[], float], runs: int) -> Stats:
    """Call ``fn`` ``runs`` times; each call returns one sample (already per-unit)."""
    return Stats.of([fn() for _ in range(runs)])


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("percentile needs at least one sample")
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Row:
    """One figure of one benchmark table.

    Attributes:
        benchmark: Table it belongs to, e.g. ``"record"``.
        subject: What was measured, e.g. ``"raw sqlite"``, ``"engine"``, ``"dbos (poll 0.01s)"``.
        durability: SQLite ``synchronous`` level the figure was taken at, or ``"n/a"``.
        metric: What the number is, e.g. ``"per step"``.
        unit: ``"µs"``, ``"ms"``, ``"s"``, ...
        median: Median over the runs (or the percentile itself for percentile metrics).
        min: Smallest sample.
        max: Largest sample.
        n: Number of samples behind the figure.
        kind: ``"reference"``, ``"engine"`` or ``"peer"``: orders rows within a table.
        ratio: ``median / reference.median`` when a reference row was given.
        ratio_to: Short label of that reference, e.g. ``"commit FULL"``.
    """

    benchmark: str
    subject: str
    durability: Durability
    metric: str
    unit: str
    median: float
    min: float
    max: float
    n: int
    kind: Kind = "engine"
    ratio: float | None = None
    ratio_to: str | None = None

    @classmethod
    def of(
        cls,
        benchmark: str,
        subject: str,
        durability: Durability,
        metric: str,
        unit: str,
        stats: Stats,
        kind: Kind = "engine",
        reference: Row | None = None,
    ) -> Row:
        """Build a row from :class:`Stats`, with its ratio to ``reference`` if given."""
        row = cls(
            benchmark, subject, durability, metric, unit,
            stats.median, stats.min, stats.max, stats.n, kind,
        )
        return row.against(reference) if reference is not None else row

    def against(self, reference: Row) -> Row:
        """A copy carrying the ratio of this median to the reference's median.

        Raises ValueError when units differ, since the ratio would be meaningless.
        """
        if reference.unit != self.unit:
            raise ValueError(
                f"cannot compare {self.benchmark}/{self.metric} in {self.unit} with "
                f"reference {reference.metric} in {reference.unit}: convert first"
            )
        label = reference.metric if reference.durability == "n/a" else (
            f"{reference.metric} {reference.durability}"
        )
        return replace(self, ratio=self.median / reference.median, ratio_to=label)


@dataclass
class Context:
    """What every contributor gets: sizes, a scratch directory, and reference rows.

    Attributes:
        quick: Smaller sizes and 3 runs per figure instead of 5.
        tiny: Much smaller sizes still, for the smoke test; figures are not meaningful.
        tmp: Scratch directory on the same disk as the repository.
        references: Rows of the ``limit`` benchmark keyed by (metric, durability), so
            later benchmarks can divide by them. Empty until ``limit`` has run.
        notes: Remarks for RESULTS.md (a skipped peer, a trimmed size), see :meth:`note`.
    """

    quick: bool
    tiny: bool
    tmp: Path
    references: dict[tuple[str, str], Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        """Runs behind each figure: 3 when quick or tiny, 5 otherwise."""
        return 3 if self.quick or self.tiny else 5

    def size(self, full: int, quick: int, tiny: int) -> int:
        """Pick the size for the current mode."""
        if self.tiny:
            return tiny
        return quick if self.quick else full

    def reference(self, metric: str, durability: str) -> Row | None:
        """The limit row for (metric, durability), or None when ``limit`` did not run."""
        return self.references.get((metric, durability))

    def note(self, text: str) -> None:
        """Print a remark now and keep it for the RESULTS.md header."""
        print(f"   note: {text}", file=sys.stderr, flush=True)
        self.notes.append(text)

    def scratch(self, name: str) -> Path:
        """A fresh, empty directory under ``tmp`` for one contributor or run."""
        path = self.tmp / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


@dataclass(frozen=True)
class Target:
    """A goal for one row: its median (or its ratio to the limit) against a bound.

    Attributes:
        label: What the goal says, e.g. ``"record per step ≤ 1.3× one raw commit FULL"``.
        benchmark, subject, durability, metric: Which row it reads (exact match).
        bound: The bound on the median, or on the ratio when ``on_ratio``.
        at_least: True for ``value ≥ bound``, else ``value ≤ bound``.
        on_ratio: Compare ``row.ratio`` instead of ``row.median``.
        if_missed: Markdown printed under the table when the target is missed: why, with
            profile evidence, and what would close it.
        per: (benchmark, subject, durability, metric) of another row of the same run to
            divide the median by, when the row itself carries no ratio to it.
        absent: What the Targets table says when ``benchmark`` was not measured in this
            run (e.g. where to find it); empty: the target is left out.
    """

    label: str
    benchmark: str
    subject: str
    durability: str
    metric: str
    bound: float
    at_least: bool = False
    on_ratio: bool = False
    if_missed: str = ""
    per: tuple[str, str, str, str] | None = None
    absent: str = ""

    def find(self, rows: list[Row]) -> Row | None:
        """The row this target reads, if it was measured."""
        for row in rows:
            if (row.subject, row.durability, row.metric) == (
                self.subject, self.durability, self.metric
            ):
                return row
        return None

    def judged(self, row: Row, tables: dict[str, list[Row]]) -> Row:
        """``row``, carrying its ratio to the ``per`` row when one is named and measured."""
        if self.per is None:
            return row
        benchmark, subject, durability, metric = self.per
        for other in tables.get(benchmark, []):
            if (other.subject, other.durability, other.metric) == (subject, durability, metric):
                return row.against(other)
        return replace(row, ratio=None, ratio_to=None)

    def met(self, row: Row) -> bool | None:
        """Whether ``row`` (see :meth:`judged`) meets the target; None when the ratio it
        needs is missing."""
        value = row.ratio if self.on_ratio else row.median
        if value is None:
            return None
        return value >= self.bound if self.at_least else value <= self.bound


#: Targets shown in RESULTS.md's "Targets" section, in registration order.
TARGETS: list[Target] = []


#: Rows read from the ``cost`` section of RESULTS.md (``python -m benchmarks cost``), not run here.
COST = "cost"


def target(label: str, benchmark: str, subject: str, durability: str, metric: str,
           bound: float, *, at_least: bool = False, on_ratio: bool = False,
           if_missed: str = "", per: tuple[str, str, str, str] | None = None,
           absent: str = "") -> Target:
    """Register a :class:`Target`; returns it."""
    if benchmark not in (*BENCHMARK_ORDER, COST):
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARK_ORDER}")
    goal = Target(label, benchmark, subject, durability, metric, bound, at_least, on_ratio,
                  if_missed, per, absent)
    TARGETS.append(goal)
    return goal


Contributor = Callable[[Context], list[Row]]


@dataclass(frozen=True)
class Contribution:
    """One registered contributor to a benchmark.

    Attributes:
        group: Name that selects it on the command line too, e.g. ``"dbos"``.
        kind: Orders its rows in the table; ``--only-peers`` keeps references and peers.
        fn: The contributor.
    """

    group: str
    kind: Kind
    fn: Contributor

    @property
    def method(self) -> str:
        """The contributor's docstring: the method paragraph for RESULTS.md."""
        return " ".join((self.fn.__doc__ or "").split())


#: benchmark name -> contributors, in registration order.
BENCHMARKS: dict[str, list[Contribution]] = {}


def register(benchmark: str, *, group: str, kind: Kind) -> Callable[[Contributor], Contributor]:
    """Decorator adding ``fn`` as a contributor of rows to ``benchmark``.

    Args:
        benchmark: One of :data:`BENCHMARK_ORDER`.
        group: Selection name shared by a module's contributors (``"engine"``, ``"dbos"``).
        kind: ``"reference"``, ``"engine"`` or ``"peer"``.
    """
    if benchmark not in BENCHMARK_ORDER:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARK_ORDER}")

    def decorate(fn: Contributor) -> Contributor:
        BENCHMARKS.setdefault(benchmark, []).append(Contribution(group, kind, fn))
        return fn

    return decorate


@contextmanager
def parked_process(argv: list[str], *, cwd: Path, env: dict[str, str] | None, what: str) -> Iterator[list[str]]:
    """Run ``argv`` until it prints READY, SIGKILL it (the crash being recovered from) and
    yield the lines it printed before READY."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        lines: list[str] = []
        for line in proc.stdout:
            if line.strip() == "READY":
                break
            lines.append(line.strip())
        else:
            proc.wait()
            raise RuntimeError(f"{what} exited {proc.returncode} before READY; "
                               f"its stderr ends with:\n{proc.stderr.read()[-3000:]}")
        proc.kill()
        proc.wait()
        yield lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def copy_db(db: Path, directory: Path) -> Path:
    """Copy a crashed database (file and WAL; SQLite rebuilds the -shm) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        source = db.with_name(db.name + suffix)
        if source.exists():
            shutil.copy2(source, directory / source.name)
    return directory / db.name

