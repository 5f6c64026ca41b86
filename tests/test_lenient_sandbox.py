"""The lenient replay (behind `engine replay --against` and `check`) runs changed code in a
sandbox that writes nothing. What the sandbox cannot answer without a store stops the
lenient run where it is, with the calls so far; everything else gets a placeholder."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.flows import compile_flow
from engine.lenient import _Sandbox, _Stop, lenient_calls
from engine.probe import END
from store.events import Event, ExecutionStarted, LogRecorded

HISTORY = [
    Event(1, 100.0, ExecutionStarted(1, "f", "v1", {}), 0),
    Event(2, 101.0, LogRecorded("hello", "info"), 2),
]
EXECUTION = SimpleNamespace(id="e1", name=None, flow="f", project="default", depth=0, root_id="e1")


def calls_of(source: str) -> list[tuple[str, str]]:
    flow = compile_flow("f", "v2", source)
    return [(c.command, c.identity) for c in lenient_calls(EXECUTION, HISTORY, flow)]


def test_calls_past_the_history_get_placeholders_and_the_run_reaches_its_end():
    source = (
        "def handler(system, this, inputs):\n"
        "    this.log('hello')\n"
        "    system.setting('s').exists()\n"
        "    this.step(len, 'abc')\n"
    )
    assert calls_of(source) == [("log", ""), ("setting_read", "s"), ("step", "len"), END]


def test_a_wait_for_an_answer_stops_the_lenient_run_there():
    source = (
        "def handler(system, this, inputs):\n"
        "    this.log('hello')\n"
        "    this.message('approve?', 'please', body={'ok': {'element': 'boolean'}}, wait=True)\n"
        "    this.log('after')\n"
    )
    assert calls_of(source) == [("log", ""), ("message", "approve?")]


@pytest.mark.parametrize("call", [
    lambda s: s.message_state("m"), lambda s: s.connector("c"), lambda s: s.remember_params("c", {}),
    lambda s: s.check_lease(),
])
def test_the_sandbox_refuses_what_needs_a_store_in_words(call):
    sandbox = _Sandbox(0.0)
    with pytest.raises(_Stop, match="a lenient replay cannot answer .+ without a store"):
        call(sandbox)
    assert sandbox.stopped
