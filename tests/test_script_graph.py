"""The script visualisation: the calls a flow's handler makes, read from its source
(never run), with their lines, in call order; drawn as text, DOT and Mermaid, and by
``engine flows graph``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from engine.errors import EngineError
from engine.script_graph import CallNode, script_graph, to_dot, to_mermaid, to_text

FLOWS = Path(__file__).parent / "flows"
DRAWN = FLOWS / "script" / "drawn.py"


def calls(path: Path) -> list[tuple[str, str, int, str]]:
    graph = script_graph(path.stem, path.read_text())
    return [(c.kind, c.label, c.line, c.detail) for c in graph.calls]


def test_every_kind_of_call_is_a_node_with_its_line_in_call_order() -> None:
    assert calls(DRAWN) == [
        ("flow", "make-report", 15, "wait=False"),
        ("step", "fetch", 16, ""),
        ("connector", "crm", 17, ""),
        ("connector", "connector_type=REST", 18, ""),
        ("wait", "wait_for", 19, "report, crm"),
        ("wait", "sleep", 20, "5"),
        ("flow", "archive", 21, "run=False"),
        ("wait", "dependency", 22, "later"),
        ("flow", "cleanup", 23, "handle"),
        ("message", "Approve?", 25, "asks"),
        ("message", "f'done for {who}'", 11, ""),  # inside notify(), called from the handler
    ]


@pytest.mark.parametrize(("flow", "expected"), [
    ("seed_wait_for_multiple", [("flow", "flow_1", 4, "wait=False"), ("flow", "sync_flow", 5, "wait=False"),
                                ("wait", "wait_for", 7, "async_child_1, async_child_2")]),
    ("seed_dependency_explicit", [("flow", "another-flow", 4, "run=False"), ("wait", "dependency", 8, "child_execution")]),
    ("seed_connect_git", [("connector", "connector_type=GIT", 4, "")]),
    ("Messenger", [("message", "Message", 8, "")]),
    ("seed_passing_values", [("flow", "Calculator", 6, ""), ("flow", "Messenger", 12, "")]),
    ("seed_validate_flow_exists", [("flow", "example_flow_name", 4, "handle")]),
    ("seed_asynchronous_execution", [("flow", "async_flow", 4, "wait=False")]),
    ("Calculator", []),
])
def test_the_seed_flows_are_drawn_from_their_source(flow: str, expected: list[tuple[str, str, int, str]]) -> None:
    assert calls(FLOWS / "seed" / f"{flow}.py") == expected


def test_a_recursive_helper_is_read_once_per_call_path() -> None:
    source = ("def again(this, n):\n    this.sleep(n)\n    again(this, n - 1)\n\n"
              "def handler(system, this, inputs):\n    again(this, 3)\n")
    assert script_graph("loop", source).calls == [CallNode("wait", "sleep", 2, "n")]


def test_a_source_that_cannot_be_drawn_is_one_line() -> None:
    with pytest.raises(EngineError, match=r"^flow 'broken' cannot be drawn: line 1: .*fix its source"):
        script_graph("broken", "def handler(:\n")
    with pytest.raises(EngineError, match="defines no `def handler"):
        script_graph("empty", "x = 1\n")


def test_dot_and_mermaid_join_the_calls_in_order_and_quote_labels() -> None:
    graph = script_graph("q", 'def handler(system, this, inputs):\n    this.flow(\'say "hi"\')\n    this.sleep(1)\n')
    dot = to_dot(graph)
    assert 'label="flow say \\"hi\\"\\nline 2"' in dot and "n0 -> n1;" in dot and "n1 -> n2;" in dot
    mermaid = to_mermaid(graph)
    assert "#quot;hi#quot;" in mermaid and "n1 --> n2" in mermaid
    assert to_text(graph) == ["flow q", '  line 2: flow say "hi"', "  line 3: wait sleep (1)"]
    if shutil.which("dot"):
        drawn = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True)
        assert "<svg" in drawn.stdout


def test_engine_flows_graph_draws_a_registered_flow(run_cli: Callable[..., Result]) -> None:
    assert run_cli("flows", "sync", str(DRAWN.parent)).exit_code == 0
    text = run_cli("flows", "graph", "drawn")
    assert text.exit_code == 0 and text.stdout.splitlines()[:3] == [
        "flow drawn", "  line 15: flow make-report (wait=False)", "  line 16: step fetch"]
    assert run_cli("flows", "graph", "drawn", "--format", "dot").stdout.startswith("digraph script {")
    assert run_cli("flows", "graph", "drawn", "--format", "mermaid").stdout.startswith("graph TD\n")
    missing = run_cli("flows", "graph", "nope")
    assert missing.exit_code == 1 and "flow 'nope' is not registered" in missing.stderr
