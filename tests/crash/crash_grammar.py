"""Random flow programs for the crash-anywhere test: a small grammar, hypothesis
strategies that draw from it, and a renderer that turns a program into flow scripts.

A ``Program`` is the body of one flow: a list of operations, then the end (success, or
an uncaught ``Boom``). Operations that start children carry the children's programs,
so a drawn root program is a whole tree. Rendering gives every program in the tree its
own flow file (``crash_root.py``, ``crash_n1.py``, ...), numbered in depth-first order,
so the same program always renders to the same files.

What the rendered handlers do, and why:

- ``acc`` threads a value through every operation (step results, children's outputs,
  connection answers, setting reads). It ends in the execution's output and its end
  message, so a step answered with the wrong recorded value, a child read at the wrong
  time or a lost write changes what the test compares with the uninterrupted run.
- A step appends one byte to ``<effects>/<key>`` (one file per step) and returns
  ``{"v": value derived from its args, "n": how often it has run, "k": key}``. The
  handler folds ``v`` into ``acc`` and collects ``n`` in ``runs``; the end message
  carries ``runs[<flow>]=<n.n.n>``. The message is computed by the activation that
  ends the execution, so it shows what that activation's replay saw: it must equal the
  ``n`` recorded in the log's step events (recorded results are used, never re-run).
- Every branch the handler takes depends only on recorded values, so the uninterrupted
  run and the crashed one take the same path. Races the engine does not promise to
  order (which of two children ends first) never reach ``acc``: FIRST_ENDED adds a
  constant and is followed by an ALL_ENDED join; a group joined with ALL_SUCCEEDED and
  left uncaught has at most one member that fails, so the failure that is raised is
  the same in every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

MOD = 1_000_003

# -- the grammar -------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """``this.step(effect, ...)``: a recorded side effect; ``fails`` raises (caught)."""

    k: int
    fails: bool = False
    ms: int = 0  # how long the step goes on after its side effect (a window for kills)


@dataclass(frozen=True)
class Log:
    """``this.log(...)``."""


@dataclass(frozen=True)
class Output:
    """``this.set_output(o<i>=acc)``."""


@dataclass(frozen=True)
class SettingSave:
    """``system.setting(<flow>_s<i>).save(value=acc)``."""

    slot: int


@dataclass(frozen=True)
class SettingRead:
    """``system.setting(<flow>_s<i>)``: ``exists()`` and ``get('value')`` into ``acc``."""

    slot: int


@dataclass(frozen=True)
class Sleep:
    """``this.sleep(0.005)``: a durable timer."""


@dataclass(frozen=True)
class Connect:
    """``this.connect(connector_type='REST', url=...)`` to the test's HTTP server;
    ``fails`` asks for an HTTP 422 (the connection ends ENDED_ERROR)."""

    x: int
    fails: bool = False
    caught: bool = True


@dataclass(frozen=True)
class Child:
    """``this.flow(<child>, inputs=...)`` (wait=True), then read its output."""

    program: Program
    caught: bool = True


#: How a group is joined; ``none`` starts the members and never waits for them (they
#: may outlive the parent, and must still end).
JOINS = ("ALL_SUCCEEDED", "ALL_ENDED", "FIRST_ENDED", "dependency", "none")


@dataclass(frozen=True)
class Group:
    """Members started with ``wait=False`` (flows or connections), then joined with
    ``this.wait_for(..., return_when=join)`` or ``this.dependency(...)``, or not at all."""

    members: tuple[Program | Connect, ...]
    join: str
    caught: bool = True


Op = Step | Log | Output | SettingSave | SettingRead | Sleep | Connect | Child | Group


@dataclass(frozen=True)
class Program:
    """One flow: ``ops`` in order, then success, or ``Boom`` when ``raises``."""

    ops: tuple[Op, ...]
    raises: bool = False

    @property
    def fails(self) -> bool:
        """Whether an execution of this program ends ENDED_ERROR."""
        return self.raises or any(_op_fails(op) for op in self.ops)

    def flows(self) -> int:
        """How many flow programs the tree holds (this one included)."""
        return 1 + sum(p.flows() for p in _children(self))


def _member_fails(member: Program | Connect) -> bool:
    return member.fails


def _op_fails(op: Op) -> bool:
    """Whether ``op`` raises out of the handler (an uncaught failure)."""
    if isinstance(op, Connect):
        return op.fails and not op.caught
    if isinstance(op, Child):
        return op.program.fails and not op.caught
    if isinstance(op, Group):
        return not op.caught and op.join in ("ALL_SUCCEEDED", "dependency") and any(
            _member_fails(m) for m in op.members
        )
    return False


def _children(program: Program) -> list[Program]:
    out: list[Program] = []
    for op in program.ops:
        if isinstance(op, Child):
            out.append(op.program)
        elif isinstance(op, Group):
            out.extend(m for m in op.members if isinstance(m, Program))
    return out


# -- strategies --------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """How big drawn programs may get."""

    max_depth: int = 2
    min_root_ops: int = 4
    max_ops: int = 7
    max_members: int = 3
    max_flows: int = 7


CI_SIZE = Size()
SOAK_SIZE = Size(max_depth=3, min_root_ops=4, max_ops=10, max_members=3, max_flows=14)

_leaf_ops = st.one_of(
    st.builds(Step, k=st.integers(0, 99), ms=st.sampled_from([0, 0, 3, 20])),
    st.builds(Step, k=st.integers(0, 99), ms=st.sampled_from([0, 0, 3, 20])),
    st.builds(Step, k=st.integers(0, 99), fails=st.just(True)),
    st.just(Log()),
    st.just(Output()),
    st.builds(SettingSave, slot=st.integers(0, 1)),
    st.builds(SettingRead, slot=st.integers(0, 1)),
    st.just(Sleep()),
    st.builds(Connect, x=st.integers(0, 99), fails=st.booleans(), caught=st.booleans()),
)


@st.composite
def programs(draw: st.DrawFn, size: Size = CI_SIZE) -> Program:
    """A root program whose tree has at most ``size.max_flows`` flows."""
    budget = [size.max_flows - 1]  # flows still allowed below the root
    return draw(_program(size, size.max_depth, budget, size.min_root_ops))


@st.composite
def _program(draw: st.DrawFn, size: Size, depth: int, budget: list[int], min_ops: int = 1) -> Program:
    n = draw(st.integers(min_ops, size.max_ops))
    ops: list[Op] = []
    for _ in range(n):
        nested = depth > 0 and budget[0] > 0 and draw(st.integers(0, 2)) == 0
        if not nested:
            ops.append(draw(_leaf_ops))
            continue
        if draw(st.booleans()):
            budget[0] -= 1
            ops.append(Child(draw(_program(size, depth - 1, budget)), caught=draw(st.booleans())))
            continue
        join = draw(st.sampled_from(JOINS))
        caught = draw(st.booleans())
        members: list[Program | Connect] = []
        for _ in range(draw(st.integers(1, size.max_members))):
            if budget[0] > 0 and draw(st.integers(0, 3)) > 0:
                budget[0] -= 1
                members.append(draw(_program(size, depth - 1, budget)))
            else:
                members.append(Connect(draw(st.integers(0, 99)), fails=draw(st.booleans())))
        if join == "ALL_SUCCEEDED" and not caught and sum(_member_fails(m) for m in members) > 1:
            caught = True  # which of two failures is raised would be a race
        ops.append(Group(tuple(members), join, caught))
    raises = draw(st.integers(0, 4)) == 0
    return Program(tuple(ops), raises)


# -- rendering ---------------------------------------------------------------------

ROOT = "crash_root"

_HEADER = '''"""Generated by tests/crash/crash_grammar.py: flow {name}."""

import os
import time

import flow_api


class StepRefused(Exception):
    """Raised by a step that was drawn to fail."""


class Boom(Exception):
    """The end of a program drawn to fail."""


def effect(effects, key, k, acc, fail, ms=0):
    """A side effect the test can count: one byte appended to <effects>/<key> per run."""
    path = os.path.join(effects, key)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
    time.sleep(ms / 1000)
    if fail:
        raise StepRefused("step " + key + " refused k=" + str(k))
    return {{"v": (acc * 31 + k + 7) % {mod}, "n": os.path.getsize(path), "k": key}}


def fold(acc, value):
    return (acc * 17 + value) % {mod}


def _fold_kids(kids):
    """Statuses and outputs of ended children, folded (each read is recorded)."""
    total = 0
    for kid in kids:
        status, output = kid.load("status", "output_value")
        total = total * 7 + len(status)
        if status == "ENDED_SUCCESS":
            total = total * 7 + (output["acc"] if "acc" in output else output["json"]["value"])
    return total % 1000


def handler(system, this, inputs):
    effects, base = inputs["effects"], inputs["base"]
    acc = inputs["seed"]
    runs = []
'''


@dataclass
class Rendered:
    """The flow files of one program tree: name -> source, and the programs by name."""

    sources: dict[str, str] = field(default_factory=dict)
    programs: dict[str, Program] = field(default_factory=dict)

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, source in self.sources.items():
            (folder / f"{name}.py").write_text(source)

    def listing(self) -> str:
        """All sources, for a failure report."""
        return "\n".join(f"# ---- {name}.py\n{src}" for name, src in self.sources.items())


def render(root: Program) -> Rendered:
    """Render ``root`` and every program below it as flow scripts."""
    out = Rendered()
    counter = [0]

    def name_of(program: Program) -> str:
        counter[0] += 1
        name = f"crash_n{counter[0]}"
        emit(name, program)
        return name

    def emit(name: str, program: Program) -> None:
        out.programs[name] = program
        out.sources[name] = ""  # reserve the depth-first position
        lines = [_HEADER.format(name=name, mod=MOD)]
        body: list[str] = []
        for i, op in enumerate(program.ops):
            body.append(f"# op {i}: {type(op).__name__}")
            body.extend(_render_op(name, i, op, name_of))
        body.append("this.set_output(acc=acc)")
        body.append(f'marker = "runs[{name}]=<" + ".".join(str(n) for n in runs) + ">"')
        if program.raises:
            body.append('raise Boom("boom acc=" + str(acc) + " " + marker)')
        else:
            body.append('return this.success("acc=" + str(acc) + " " + marker)')
        lines.extend("    " + line for line in body)
        out.sources[name] = "\n".join(lines) + "\n"

    emit(ROOT, root)
    return out


def _child_inputs() -> str:
    return 'inputs={"effects": effects, "base": base, "seed": acc}'


def _url(c: Connect) -> str:
    return f'base + "/{"fail" if c.fails else "echo"}?x={c.x}"'


def _guard(lines: list[str], caught: bool, bump: int) -> list[str]:
    """Wrap ``lines`` in ``try/except flow_api.DependencyFailedError`` when caught."""
    if not caught:
        return lines
    return (
        ["try:"] + ["    " + line for line in lines]
        + ["except flow_api.DependencyFailedError as exc:",
           f'    acc = fold(acc, {bump} + len(type(exc).__name__))']
    )


def _render_op(name: str, i: int, op: Op, name_of: object) -> list[str]:
    key = f"{name}.{i}"
    if isinstance(op, Step):
        if op.fails:
            return [
                "try:",
                f'    this.step(effect, effects, "{key}", {op.k}, acc, True)',
                "    acc = fold(acc, 999999)  # never: the step raises",
                "except StepRefused as exc:",
                "    acc = fold(acc, len(str(exc)))",
            ]
        return [
            f'r = this.step(effect, effects, "{key}", {op.k}, acc, False, {op.ms})',
            'acc = fold(acc, r["v"])',
            'runs.append(r["n"])',
        ]
    if isinstance(op, Log):
        return [f'this.log("{key} acc=" + str(acc))']
    if isinstance(op, Output):
        return [f"this.set_output(o{i}=acc)"]
    if isinstance(op, SettingSave):
        return [f'system.setting("{name}_s{op.slot}").save(value=acc)']
    if isinstance(op, SettingRead):
        return [
            f's = system.setting("{name}_s{op.slot}")',
            'acc = fold(acc, s.get("value") if s.exists() else 5)',
        ]
    if isinstance(op, Sleep):
        return ["this.sleep(0.005)"]
    if isinstance(op, Connect):
        lines = [
            f'c = this.connect(connector_type="REST", url={_url(op)})',
            'acc = fold(acc, c.get("output_value")["json"]["value"])',
        ]
        return _guard(lines, op.caught, 2000)
    if isinstance(op, Child):
        child = name_of(op.program)  # type: ignore[operator]
        lines = [
            f'c = this.flow("{child}", {_child_inputs()})',
            'acc = fold(acc, c.get("output_value")["acc"])',
        ]
        return _guard(lines, op.caught, 1000)
    if isinstance(op, Group):
        starts = []
        for member in op.members:
            if isinstance(member, Program):
                starts.append(f'this.flow("{name_of(member)}", wait=False, {_child_inputs()})')  # type: ignore[operator]
            else:
                starts.append(f'this.connect(connector_type="REST", url={_url(member)}, wait=False)')
        lines = ["kids = [" + ", ".join(starts) + "]"]
        if op.join == "none":
            lines += ["acc = fold(acc, len(kids))"]
        elif op.join == "dependency":
            lines += ["this.dependency(*kids)", "acc = fold(acc, _fold_kids(kids))"]
        elif op.join == "FIRST_ENDED":
            lines += [
                'first = this.wait_for(*kids, return_when="FIRST_ENDED")',
                "acc = fold(acc, 3 if first else 4)",
                'this.wait_for(*kids, return_when="ALL_ENDED")',
                "acc = fold(acc, _fold_kids(kids))",
            ]
        else:
            lines += [
                f'this.wait_for(*kids, return_when="{op.join}")',
                "acc = fold(acc, _fold_kids(kids))",
            ]
        return _guard(lines, op.caught, 3000)
    raise AssertionError(f"unknown op {op!r}")

