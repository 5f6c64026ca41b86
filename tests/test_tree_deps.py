"""``engine tree`` and ``engine deps`` on the flow documentation's own examples
(tests/flows/control/seed/), run for real on a fresh SQLite file."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from engine.api import Engine

SEED = Path(__file__).parent / "flows" / "control" / "seed"


@pytest.fixture
def eng(db_url: str) -> Iterator[Engine]:
    engine = Engine(db_url)
    engine.sync_flows(SEED)
    try:
        yield engine
    finally:
        engine.close()


def run(eng: Engine, flow: str, **inputs: object) -> str:
    execution_id = eng.start(flow, dict(inputs))
    row = eng.run_until_ended(execution_id)
    assert row.status == "ENDED_SUCCESS", row.message
    return execution_id


def children(eng: Engine, execution_id: str) -> dict[str, str]:
    """flow name -> id of the children of ``execution_id``."""
    return {row.flow: row.id for row in eng.store.children(execution_id)}


def test_tree_of_the_wait_for_multiple_example(eng: Engine, invoke: Callable[..., Result]) -> None:
    parent = run(eng, "wait_multiple")
    kids = children(eng, parent)
    assert set(kids) == {"flow_1", "sync_flow"}

    out = invoke("tree", parent)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith(f"{parent}  wait_multiple  ENDED_SUCCESS") and lines[0].endswith("◀")
    assert lines[1].startswith(f"├── {kids['flow_1']}  flow_1  ENDED_SUCCESS")  # in creation order
    assert lines[2].startswith(f"└── {kids['sync_flow']}  sync_flow  ENDED_SUCCESS")
    assert len(lines) == 3

    from_child = invoke("tree", kids["sync_flow"][:10]).output.splitlines()  # a prefix works too
    assert from_child[0].startswith(parent) and not from_child[0].endswith("◀")  # still drawn from the root
    assert from_child[2].endswith("◀")

    data = json.loads(invoke("tree", parent, "--json").output)
    assert data["id"] == parent and data["selected"] is True and data["duration"] >= 0
    assert [(c["flow"], c["status"], c["children"]) for c in data["children"]] == [
        ("flow_1", "ENDED_SUCCESS", []), ("sync_flow", "ENDED_SUCCESS", [])]


def test_deps_of_the_wait_for_multiple_example(eng: Engine, invoke: Callable[..., Result]) -> None:
    parent = run(eng, "wait_multiple")
    kids = children(eng, parent)
    assert invoke("deps", parent).output.splitlines() == [
        f"{parent}  wait_multiple  ENDED_SUCCESS",
        "waits for:",
        f"├── {kids['flow_1']}  flow_1  ENDED_SUCCESS",
        f"└── {kids['sync_flow']}  sync_flow  ENDED_SUCCESS",
        "waited for by: nothing",
    ]
    assert invoke("deps", kids["flow_1"]).output.splitlines() == [
        f"{kids['flow_1']}  flow_1  ENDED_SUCCESS",
        "waits for: nothing",
        "waited for by:",
        f"└── {parent}  wait_multiple  ENDED_SUCCESS",
    ]
    data = json.loads(invoke("deps", parent, "--json").output)
    assert data["center"] == parent and data["depth"] == 1
    assert {(e["waiter"], e["target"]) for e in data["edges"]} == {(parent, kids["flow_1"]), (parent, kids["sync_flow"])}
    assert data["nodes"][kids["sync_flow"]]["flow"] == "sync_flow"


def test_run_false_then_run_wait_creates_the_dependency(eng: Engine, invoke: Callable[..., Result]) -> None:
    parent = run(eng, "run_later")
    child = children(eng, parent)["another-flow"]
    assert eng.store.dependencies(parent)[0][0][0] == child
    lines = invoke("deps", child).output.splitlines()
    assert lines[-2:] == ["waited for by:", f"└── {parent}  run_later  ENDED_SUCCESS"]
    tree = invoke("tree", parent).output.splitlines()
    assert tree[1].startswith(f"└── {child}  another-flow  ENDED_SUCCESS")


def test_explicit_dependency_on_a_child_created_with_run_false(eng: Engine, invoke: Callable[..., Result]) -> None:
    parent = run(eng, "explicit_dependency")
    child = children(eng, parent)["another-flow"]
    assert invoke("deps", parent).output.splitlines()[1:3] == [
        "waits for:", f"└── {child}  another-flow  ENDED_SUCCESS"]


def test_dependency_on_executions_found_by_system_executions(eng: Engine, invoke: Callable[..., Result]) -> None:
    found = [run(eng, "flow_1"), run(eng, "flow_1")]
    waiter = run(eng, "depend_on_found")
    tree = invoke("tree", waiter).output.splitlines()
    assert len(tree) == 1 and tree[0].startswith(f"{waiter}  depend_on_found")  # they are not its children
    lines = invoke("deps", waiter).output.splitlines()
    assert lines[1] == "waits for:"
    assert {line.split()[1] for line in lines[2:4]} == set(found)
    for other in found:
        assert invoke("deps", other).output.splitlines()[-1] == f"└── {waiter}  depend_on_found  ENDED_SUCCESS"


def test_depth_follows_dependencies_further(eng: Engine, invoke: Callable[..., Result]) -> None:
    a = run(eng, "chain_a")
    b = children(eng, a)["chain_b"]
    leaf = children(eng, b)["flow_1"]
    one = invoke("deps", a).output
    assert b in one and leaf not in one
    two = invoke("deps", a, "--depth", "2").output.splitlines()
    assert two[2].startswith(f"└── {b}") and two[3].startswith(f"    └── {leaf}")
    up = invoke("deps", leaf, "--depth", "3").output.splitlines()
    assert up[-2:] == [f"└── {b}  chain_b  ENDED_SUCCESS", f"    └── {a}  chain_a  ENDED_SUCCESS"]


def test_mermaid_and_dot(eng: Engine, invoke: Callable[..., Result], tmp_path: Path) -> None:
    parent = run(eng, "wait_multiple")
    mermaid = invoke("deps", parent, "--format", "mermaid").output.splitlines()
    assert mermaid[0] == "graph TD"
    assert f'  x0["wait_multiple<br/>{parent[:8]}<br/>ENDED_SUCCESS"]' in mermaid
    assert sum("-->|waits for|" in line for line in mermaid) == 2
    dot = invoke("deps", parent, "--format", "dot").output
    assert dot.startswith("digraph dependencies {") and dot.count('[label="waits for"]') == 2
    assert f'label="wait_multiple\\n{parent[:8]}\\nENDED_SUCCESS"' in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (apt-get install graphviz)")
def test_dot_renders_with_graphviz(eng: Engine, invoke: Callable[..., Result]) -> None:
    parent = run(eng, "wait_multiple")
    dot = invoke("deps", parent, "--format", "dot").output
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=30)
    assert svg.returncode == 0, svg.stderr
    assert "<svg" in svg.stdout and "waits for" in svg.stdout and "sync_flow" in svg.stdout


def test_unknown_id_is_a_clear_error(invoke: Callable[..., Result]) -> None:
    for command in ("tree", "deps"):
        out = invoke(command, "feedfacefeedface")
        assert out.exit_code != 0
        assert "no execution 'feedfacefeedface'" in out.output
