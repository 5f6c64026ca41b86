"""A corpus of deliberately nondeterministic flows (tests/flows/nondeterminism/).

Each case runs ``v1.py`` until it waits on a durable sleep, then makes the execution
run ``v2.py``, as if its code had changed in flight. Executions are pinned to the
content hash of their flow version, so a code change cannot reach them through the
store: the tests simulate it in two ways, (1) a pure replay of the recorded history
against v2 (``ReplayContext(live=None)`` + ``run_handler``) and (2) a real worker whose
``FlowLoader`` compiles v2 for v1's pinned version. ``flip.py`` needs no simulation: it
diverges because it branches on something the engine does not record.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.flows import FlowLoader, LoadedFlow, compile_flow
from flow_api import NondeterminismError
from store.events import ExecutionEnded

CORPUS = Path(__file__).parent / "flows" / "nondeterminism"
#: v1's durable sleep when a worker must wake it again (long enough to see it WAITING first)
SLEEP = 0.3
#: v1's durable sleep when only a pure replay follows
FOREVER = 3600.0

#: case -> (seq of the divergence, what the history recorded, what the code asks for, leftover?)
CASES = {
    "changed_order": (2, "step('fetch')", "step('store')", False),
    "renamed_step": (2, "step('fetch')", "step('fetch_all')", False),
    "renamed_child": (3, "flow('nd_helper_a')", "flow('nd_helper_b')", False),
    "renamed_setting": (2, "setting_save('alpha')", "setting_save('beta')", False),
    "extra_call": (2, "step('fetch')", "log()", False),
    "missing_call": (3, "step('store')", "return this.success", True),
    "changed_args_step": (2, "step('fetch')", "step('fetch')", False),
    "changed_args_child": (2, "flow('nd_helper_a')", "flow('nd_helper_a')", False),
    "changed_args_connection": (2, "connect('SQLITE')", "connect('SQLITE')", False),
    "changed_args_setting": (2, "setting_save('alpha')", "setting_save('alpha')", False),
}

#: case -> which argument changed, as the message names it (the same call, other arguments)
CHANGED_ARGUMENTS = {
    "changed_args_step": "region='us' where the history recorded region='eu'",
    "changed_args_child": "inputs['batch']=[1, 2, 4] where the history recorded inputs['batch']=[1, 2, 3]",
    "changed_args_connection": "query='SELECT 2' where the history recorded query='SELECT 1'",
    "changed_args_setting": "value={'limit': 20} where the history recorded value={'limit': 10}",
}


def line_of(source: str, marker: str) -> int:
    """The 1-based line of the only line of ``source`` carrying ``# marker``."""
    found = [n for n, text in enumerate(source.splitlines(), 1) if f"# {marker}" in text]
    assert len(found) == 1, (marker, found)
    return found[0]


class CodeChanged(FlowLoader):
    """Loads ``source`` in place of the pinned version ``version``: the code changed under it."""

    def __init__(self, store, version: str, source: str) -> None:
        super().__init__(store)
        self.changed_version = version
        self.source = source

    def load(self, version: str) -> LoadedFlow:
        if version != self.changed_version:
            return super().load(version)
        pinned = self._store.get_flow_version(version)
        return compile_flow(pinned.name, version, self.source, pinned.path)


def run_until_waiting(engine, execution_id: str) -> None:
    """Run a real worker until the execution waits (on its sleep); fail if it ends first."""

    def settled() -> bool:
        return engine.store.get_execution(execution_id).status not in ("QUEUED", "RUNNING")

    engine.worker().run(until=settled)
    row = engine.get(execution_id)
    assert row.status == "WAITING", (row.status, row.message)


@pytest.fixture
def waiting_v1(engine):
    """``start(case, sleep)``: register the case's v1 as flow ``nd-<case>``, run it until it waits,
    return (execution id, v1 source, v2 source)."""
    engine.register_flow("nd_helper_a", "def handler(system, this, inputs):\n    pass\n")
    engine.register_flow("nd_helper_b", "def handler(system, this, inputs):\n    pass\n")

    def start(case: str, sleep: float) -> tuple[str, str, str]:
        v1 = (CORPUS / case / "v1.py").read_text()
        v2 = (CORPUS / case / "v2.py").read_text()
        engine.register_flow(f"nd-{case}", v1)
        execution_id = engine.start(f"nd-{case}", {"sleep": sleep})
        run_until_waiting(engine, execution_id)
        return execution_id, v1, v2

    return start


def check_message(message: str, execution_id: str, case: str, v1: str, v2: str) -> None:
    seq, recorded, asked, leftover = CASES[case]
    recorded_line, asked_line = line_of(v1, "recorded"), line_of(v2, "asked")
    assert recorded_line != asked_line  # so the message cannot name the right line by accident
    assert f"execution {execution_id}" in message
    assert f"nondeterminism at seq {seq}:" in message
    if case in CHANGED_ARGUMENTS:
        assert f"nondeterminism at seq {seq}: changed arguments:" in message
        assert f"with {CHANGED_ARGUMENTS[case]}: " in message
        assert "sorted(...)" in message and "this.step" in message
        assert f"engine retry {execution_id}" in message
        return
    if leftover:
        assert f"the handler ended (ENDED_SUCCESS) at line {asked_line} of" in message
        assert f"starting with {recorded} at line {recorded_line} of" in message
    else:
        assert f"the history recorded {recorded} at line {recorded_line} of" in message
        assert f"the code now calls {asked} at line {asked_line} of" in message
    assert f"engine resume {execution_id}" in message


@pytest.mark.parametrize("case", sorted(CASES))
def test_replay_against_changed_code_names_the_divergence(case, engine, waiting_v1, pure_replay):
    execution_id, v1, v2 = waiting_v1(case, FOREVER)
    history = engine.history(execution_id)

    # the unchanged code replays its own history cleanly up to the wait
    assert pure_replay(execution_id).decision.kind == "exhausted"

    replay = pure_replay(execution_id, source=v2)
    decision = replay.decision
    assert decision.kind == "halt", decision
    assert decision.status == "HALTED"
    assert decision.events == []
    assert isinstance(replay.ctx.fatal, NondeterminismError)
    # the error says the same in its fields
    fatal = replay.ctx.fatal
    seq, recorded, asked, leftover = CASES[case]
    assert (fatal.execution_id, fatal.seq, fatal.recorded) == (execution_id, seq, recorded)
    assert (fatal.recorded_line, fatal.new_line) == (line_of(v1, "recorded"), line_of(v2, "asked"))
    if leftover:
        assert (fatal.cause, fatal.new) == ("removed", "the end of the handler (ENDED_SUCCESS)")
    else:
        assert (fatal.cause, fatal.new) == ("changed arguments" if case in CHANGED_ARGUMENTS else "changed", asked)
    assert fatal.detail == CHANGED_ARGUMENTS.get(case, "")
    assert decision.error.type == "NondeterminismError"
    check_message(decision.message, execution_id, case, v1, v2)
    # the recorded event named by the message really is the one at that seq
    assert history[CASES[case][0] - 1].line == line_of(v1, "recorded")


@pytest.mark.parametrize("case", sorted(CASES))
def test_worker_halts_changed_code_and_keeps_the_log(case, engine, waiting_v1, run_cli):
    execution_id, v1, v2 = waiting_v1(case, SLEEP)
    before = engine.history(execution_id)
    row = engine.get(execution_id)

    halted = engine.run_until_ended(execution_id, loader=CodeChanged(engine.store, row.flow_version, v2))

    assert halted.status == "HALTED"
    assert halted.ended_at is None
    check_message(halted.message, execution_id, case, v1, v2)
    assert engine.history(execution_id) == before
    assert not any(isinstance(e.body, ExecutionEnded) for e in before)
    # a halted execution is not picked up again by other workers
    result = run_cli("worker", "--until-idle")
    assert result.exit_code == 0, result.stderr
    assert engine.get(execution_id).status == "HALTED"
    assert engine.history(execution_id) == before


def test_branching_on_an_unrecorded_input_halts_through_the_worker(engine, flows_root, tmp_path, run_cli):
    """No code change at all: the flow reads a file outside any step. The first run takes
    one branch; after the file appears the replay takes the other and is stopped."""
    source = (CORPUS / "flip.py").read_text()
    engine.register_flow("flip", source)
    flag = tmp_path / "flag"
    execution_id = engine.start("flip", {"flag": str(flag), "sleep": SLEEP})
    run_until_waiting(engine, execution_id)
    before = engine.history(execution_id)
    assert [e.kind for e in before] == ["started", "step", "sleep"]

    flag.write_text("now the branch flips")
    row = engine.run_until_ended(execution_id)

    assert row.status == "HALTED"
    assert f"execution {execution_id}: nondeterminism at seq 2:" in row.message
    assert f"the history recorded step('right') at line {line_of(source, 'recorded')} of" in row.message
    assert f"the code now calls step('left') at line {line_of(source, 'asked')} of" in row.message
    assert engine.history(execution_id) == before
    shown = run_cli("show", execution_id, "--json")
    assert '"status": "HALTED"' in shown.stdout


def test_a_new_version_does_not_break_a_waiting_execution(engine):
    """Executions are pinned to their flow version: registering v2 under the same name
    leaves a v1 execution that is waiting finishing on v1, and new executions use v2."""
    v1 = (CORPUS / "changed_order" / "v1.py").read_text()
    v2 = (CORPUS / "changed_order" / "v2.py").read_text()
    v1_version = engine.register_flow("pinned", v1)
    old = engine.start("pinned", {"sleep": SLEEP})
    run_until_waiting(engine, old)

    v2_version = engine.register_flow("pinned", v2)
    assert v2_version != v1_version
    new = engine.start("pinned", {"sleep": 0})

    old_row = engine.run_until_ended(old)
    new_row = engine.run_until_ended(new)
    assert (old_row.status, old_row.message, old_row.flow_version) == ("ENDED_SUCCESS", "v1 done", v1_version)
    assert (new_row.status, new_row.message, new_row.flow_version) == ("ENDED_SUCCESS", "v2 done", v2_version)
    assert [e.body.name for e in engine.history(old) if e.kind == "step"] == ["fetch", "store"]
    assert [e.body.name for e in engine.history(new) if e.kind == "step"] == ["store", "fetch"]
    assert {v.version for v in engine.store.flow_versions("pinned")} == {v1_version, v2_version}
