"""Crash anywhere: kill real workers at random points and compare with an uninterrupted run.

Hypothesis draws a flow program from a small grammar (``crash_grammar.py``: steps with
counted side effects, logs, outputs, settings, durable sleeps, children waited for at
once or started with ``wait=False`` and joined with ``wait_for``/``dependency``, failing
children caught or not, REST connections to a local server) and a kill plan. The program
runs once uninterrupted in this process (the reference), then on a fresh database under
``engine worker`` processes (``--lease 0.5 --poll 0.002``) that are SIGKILLed after
drawn delays (blind, or just after the worker took a lease), some started with
``ENGINE_FAULT=point:N`` so they kill themselves at an exact point (step.ran,
child.created, commit.before, commit.after, connection.sent), some frozen (SIGSTOP)
past their lease and then resumed as zombies, and restarted until every execution has
ended. Then, per execution (named by its path in the tree: ``root``,
``root/crash_n1#0``, ...):

- same final status, output and end message as the reference (ids mapped to paths);
- same sequence of event kinds, except that a CONNECTION's ``attempt`` may repeat;
- seqs gap-free from 1; each child created once (one ``child`` event, one row); no
  execution outside the tree; every execution ended, none left RUNNING/QUEUED/WAITING;
- each step body ran at least once and at most once more per kill or freeze; the
  results the ending activation saw (``runs[...]`` in its end message) are the recorded
  ones;
- each connection's request reached the server, at most once more per kill or freeze.

The CI variant runs ``CRASH_CI_EXAMPLES`` (default 10) small programs, without shrinking
(``CRASH_SHRINK=1`` turns it on). The soak variant (``pytest tests/crash -m soak``) runs
``CRASH_EXAMPLES`` (default 200) bigger programs with more kills and shrinks what fails;
see ``SOAK.md`` for the last figures and the command. ``test_fault_point`` kills a lone
worker at each fault point of a fixed program, so every point is covered in every CI run
whatever hypothesis draws; ``test_checker_sees_a_difference`` keeps the comparison honest.

Reproducing a failure: the report prints the program, the kill plan and the worker logs
(the rendered flow sources are in ``<work dir>/report.txt``, and
``crash_grammar.render(<program>)`` renders them again), and hypothesis prints ``@reproduce_failure(...)`` (the
settings use ``print_blob=True``): paste it above the failing test and run
``pytest tests/crash -p no:randomly -k <test>`` (add ``-m soak`` for the soak test). A
random run can also be repeated with ``--hypothesis-seed=N``; failing examples are kept
in ``.hypothesis/`` and tried first next time. Kill timing is wall-clock, so a replayed
example may need a few runs to hit the same window; hypothesis then reports it as flaky
with the original error.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from crash_grammar import (
    CI_SIZE,
    SOAK_SIZE,
    Child,
    Connect,
    Group,
    Output,
    Program,
    Size,
    Sleep,
    Step,
    programs,
    render,
)
from crash_harness import (
    CrashRun,
    Figures,
    KillPlan,
    compare,
    run_crashing,
    run_reference,
)
from crash_server import CountingServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

CI_EXAMPLES = int(os.environ.get("CRASH_CI_EXAMPLES", "10"))
SOAK_EXAMPLES = int(os.environ.get("CRASH_EXAMPLES", "200"))
#: The uninterrupted run must end within this many seconds.
REFERENCE_TIMEOUT = 60.0
#: A crashed run that does not end within this bound lost work: CRASH_TIMEOUT seconds if
#: set, else 20 s + 10x the uninterrupted run + 2 s per planned kill (leases are 0.5 s).
CRASH_TIMEOUT = os.environ.get("CRASH_TIMEOUT")
#: Shrinking re-runs a failing example many times; each crashed run costs seconds (a hang:
#: the whole bound). On by default in the soak test, off in CI (CRASH_SHRINK=1 turns it on).
SHRINK_CI = os.environ.get("CRASH_SHRINK", "0") == "1"
SHRINK_SOAK = os.environ.get("CRASH_SHRINK", "1") == "1"
#: Keep the work dir (databases, flows, worker logs) of examples that passed too.
KEEP = os.environ.get("CRASH_KEEP", "0") == "1"

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


def _phases(shrink: bool) -> list[Phase]:
    return [p for p in Phase if shrink or p not in (Phase.shrink, Phase.explain)]


def _counts(program: Program) -> dict[str, int]:
    """How often each fault point can be passed at least, for drawing N."""
    counts = {"step.ran": 0, "child.created": 0, "connection.sent": 0}
    todo = [program]
    while todo:
        p = todo.pop()
        for op in p.ops:
            if isinstance(op, Step) and not op.fails:
                counts["step.ran"] += 1
            elif isinstance(op, Connect):
                counts["connection.sent"] += 1
            elif isinstance(op, Child):
                counts["child.created"] += 1
                todo.append(op.program)
            elif isinstance(op, Group):
                for m in op.members:
                    if isinstance(m, Program):
                        counts["child.created"] += 1
                        todo.append(m)
                    else:
                        counts["connection.sent"] += 1
    return counts


@st.composite
def kill_plans(draw: st.DrawFn, program: Program, min_kills: int, max_kills: int, max_faults: int) -> KillPlan:
    counts = _counts(program)
    points = ["commit.before", "commit.after"] + [p for p, n in counts.items() if n]
    faults = []
    for _ in range(draw(st.integers(0, max_faults))):
        point = draw(st.sampled_from(points))
        # commit points: every claim and commit passes them; the others: a worker process
        # sees only part of the tree, so small counts are the ones that fire
        top = min(counts[point], 4) if point in counts else 8
        faults.append(f"{point}:{draw(st.integers(1, max(1, top)))}")
    kills = draw(st.lists(
        st.tuples(
            st.floats(0.0, 0.4).map(lambda s: round(s, 3)), st.integers(0, 2), st.booleans(),
            st.sampled_from(["kill", "kill", "kill", "freeze"]),
        ),
        min_size=min_kills, max_size=max_kills,
    ))
    concurrency = draw(st.sampled_from([1, 4, 16]))
    return KillPlan(kills, faults, workers=draw(st.sampled_from([2, 1, 3])), concurrency=concurrency)


@st.composite
def cases(
    draw: st.DrawFn, size: Size, min_kills: int, max_kills: int, max_faults: int
) -> tuple[Program, KillPlan, int]:
    program = draw(programs(size))
    return program, draw(kill_plans(program, min_kills, max_kills, max_faults)), draw(st.integers(0, 999))


def check(
    case: tuple[Program, KillPlan, int], server: CountingServer, tmp: pytest.TempPathFactory, figures: Figures
) -> CrashRun:
    """Run ``case`` uninterrupted and crashed, and assert that nothing was lost."""
    program, plan, seed = case
    workdir = tmp.mktemp("crash")
    rendered = render(program)
    flows = workdir / "flows"
    rendered.write(flows)
    reference = run_reference(workdir, flows, server, seed, REFERENCE_TIMEOUT)
    assert not reference.problems, _report("the uninterrupted run broke an invariant", reference.problems,
                                           program, plan, workdir, rendered.listing(), reference.summary())
    bound = float(CRASH_TIMEOUT) if CRASH_TIMEOUT else 20 + 10 * reference.elapsed + 2 * (len(plan.kills) + len(plan.faults))
    run = run_crashing(workdir, flows, server, seed, plan, bound)
    crashed = run.outcome
    assert crashed is not None
    problems = run.problems + crashed.problems + compare(reference, crashed)
    figures.add(
        programs=1, failed_programs=int(bool(problems)), flows_in_programs=program.flows(),
        executions=len(crashed.executions),
        connections=sum(e.type == "CONNECTION" for e in crashed.executions.values()),
        harness_kills=run.kills, freezes=run.freezes, leases_held_at_kill=run.leases_at_kill,
        fault_kills=run.fault_kills, fault_kills_by_point=run.fault_points, workers_started=run.spawned,
        step_bodies_run=sum(crashed.step_runs.values()),
        step_reruns=sum(n - 1 for n in crashed.step_runs.values()),
        requests=sum(crashed.requests.values()),
        repeated_requests=sum(n - 1 for n in crashed.requests.values()),
        crashed_seconds=run.elapsed, lost=int(bool(problems)),
    )
    assert not problems, _report(
        f"the crashed run ({run.kills} kills + {run.fault_kills} at fault points + {run.freezes} freezes) differs",
        problems,
        program, plan, workdir, rendered.listing(),
        f"reference:\n{reference.summary()}\ncrashed:\n{crashed.summary()}\nworker logs:\n{run.logs}",
    )
    if not KEEP:
        shutil.rmtree(workdir, ignore_errors=True)  # a soak run would otherwise leave ~1 MB per example
    return run


def _report(what: str, problems: list[str], program: Program, plan: KillPlan, workdir: Path, sources: str, extra: str) -> str:
    """The failure message; the flow sources go to ``<workdir>/report.txt`` with it
    (``crash_grammar.render(<program>)`` renders them again from the program alone)."""
    text = "\n".join([
        f"{what}:", *[f"- {p}" for p in problems],
        f"program: {program!r}", f"kill plan: {plan!r}",
        f"work dir (databases, flows, worker logs, report.txt): {workdir}", extra,
    ])
    (workdir / "report.txt").write_text(f"{text}\nflow sources:\n{sources}")
    return text


@settings(max_examples=CI_EXAMPLES, deadline=None, print_blob=True, suppress_health_check=_SUPPRESS,
          phases=_phases(SHRINK_CI))
@given(case=cases(CI_SIZE, min_kills=2, max_kills=4, max_faults=3))
def test_crash_anywhere(
    case: tuple[Program, KillPlan, int], crash_server: CountingServer,
    tmp_path_factory: pytest.TempPathFactory, crash_figures: Figures,
) -> None:
    check(case, crash_server, tmp_path_factory, crash_figures)


@pytest.mark.soak
@pytest.mark.timeout(SOAK_EXAMPLES * 20 + 900)  # the suite's 300 s cap is for one CI test, not a soak
@settings(max_examples=SOAK_EXAMPLES, deadline=None, print_blob=True, suppress_health_check=_SUPPRESS,
          phases=_phases(SHRINK_SOAK))
@given(case=cases(SOAK_SIZE, min_kills=3, max_kills=8, max_faults=4))
def test_crash_anywhere_soak(
    case: tuple[Program, KillPlan, int], crash_server: CountingServer,
    tmp_path_factory: pytest.TempPathFactory, crash_figures: Figures,
) -> None:
    check(case, crash_server, tmp_path_factory, crash_figures)


# -- every fault point, deterministically -----------------------------------------------

#: A fixed program that passes every fault point: steps, a child waited for, a durable
#: sleep, connections (one failing), a group with a failing member.
FIXED = Program((
    Step(1, ms=3),
    Child(Program((Step(2), Sleep(), Connect(5)), False), caught=False),
    Group((Program((Step(3),), True), Connect(7, fails=True)), "ALL_ENDED"),
    Output(),
))


@pytest.mark.parametrize("fault", ["step.ran:1", "step.ran:3", "child.created:1", "child.created:2",
                                   "commit.before:3", "commit.after:3", "commit.after:6", "connection.sent:1"])
def test_fault_point(
    fault: str, crash_server: CountingServer, tmp_path_factory: pytest.TempPathFactory, crash_figures: Figures
) -> None:
    """One worker armed with ``fault`` dies exactly there; its successor finishes the
    same tree the uninterrupted run did."""
    plan = KillPlan(kills=[], faults=[fault], workers=1, concurrency=4)
    run = check((FIXED, plan, 7), crash_server, tmp_path_factory, crash_figures)
    assert run.fault_kills == 1, f"ENGINE_FAULT={fault} never fired:\n{run.logs}"
    assert run.outcome is not None
    if fault.startswith("step.ran"):
        assert max(run.outcome.step_runs.values()) == 2, run.outcome.step_runs  # ran, killed, ran again
    if fault.startswith("connection.sent"):
        assert max(run.outcome.requests.values()) == 2, run.outcome.requests  # sent, killed, sent again


def test_checker_sees_a_difference(crash_server: CountingServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The comparison is not vacuous: two uninterrupted runs agree, and a lost event,
    a changed output or a repeated child is reported."""
    workdir = tmp_path_factory.mktemp("checker")
    rendered = render(FIXED)
    rendered.write(workdir / "flows")
    first = run_reference(workdir / "a", workdir / "flows", crash_server, 3, REFERENCE_TIMEOUT)
    second = run_reference(workdir / "b", workdir / "flows", crash_server, 3, REFERENCE_TIMEOUT)
    assert first.problems == [] and second.problems == []
    assert compare(first, second) == []
    assert render(FIXED).sources == rendered.sources  # rendering is deterministic
    child = second.executions["root/crash_n1#0"]
    child.kinds.remove("timer_fired")
    child.output = {**child.output, "acc": -1}
    diffs = compare(first, second)
    assert any("event kinds differs" in d for d in diffs) and any("output differs" in d for d in diffs), diffs
    conn = second.executions["root/crash_n1#0/REST#0"]
    conn.kinds.insert(1, "attempt")  # a repeated attempt on a connection is allowed
    assert not any("REST#0" in d for d in compare(first, second))
