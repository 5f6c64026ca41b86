"""The same result after any replay (issue 10, items 1-3): a call's arguments are part
of its identity, flow_api is called from the handler's thread only, and a step's
failure replays as the same exception the handler saw live.

Replays that matter happen in another process, with another ``PYTHONHASHSEED``: each
test runs a real ``engine worker`` process until the execution waits for a message,
answers it, and lets a second worker process with another hash seed finish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from store.events import MessageSent

FLOWS = Path(__file__).parent / "flows" / "identity"
NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


def set_order(items: list[str], seed: int) -> list[str]:
    """The order ``set(items)`` iterates in a process with this hash seed."""
    code = "import json, sys; print(json.dumps(list(set(json.loads(sys.argv[1])))))"
    out = subprocess.run([sys.executable, "-c", code, json.dumps(items)], env={**os.environ, "PYTHONHASHSEED": str(seed)},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def seeds_that_reorder(items: list[str]) -> tuple[int, int]:
    """Two hash seeds under which ``set(items)`` iterates in different orders."""
    first = set_order(items, 1)
    other = next(seed for seed in range(2, 50) if set_order(items, seed) != first)
    return 1, other


def worker_process(engine_argv, seed: int) -> None:
    """``engine worker --until-idle`` in a new process with this hash seed."""
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    done = subprocess.run(engine_argv("worker", "--until-idle"), env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()


def answer_waiting_message(engine, execution_id: str) -> None:
    (sent,) = [e.body for e in engine.history(execution_id) if isinstance(e.body, MessageSent)]
    engine.respond(sent.message_id, {})


def run_across_seeds(engine, run_cli, engine_argv, flow: str, seeds: tuple[int, int], **inputs: object):
    """Run ``flow`` in a worker process with ``seeds[0]`` until it waits for its message,
    answer it, and finish in a worker process with ``seeds[1]``; the final row."""
    started = run_cli("run", str(FLOWS / flow), "--inputs", json.dumps(inputs), "--detach")
    assert started.exit_code == 0, started.stderr
    execution_id = started.stdout.strip()
    worker_process(engine_argv, seeds[0])
    assert engine.get(execution_id).status == "WAITING"
    answer_waiting_message(engine, execution_id)
    worker_process(engine_argv, seeds[1])
    return engine.get(execution_id)


def test_steps_over_a_set_replayed_with_another_hash_seed_halt_instead_of_mixing_results(engine, run_cli, engine_argv):
    seeds = seeds_that_reorder(NAMES)
    row = run_across_seeds(engine, run_cli, engine_argv, "set_steps.py", seeds, names=NAMES)

    # before: ENDED_SUCCESS with most names holding another name's result
    assert row.status == "HALTED", (row.status, row.message, row.output_value)
    first_recorded = set_order(NAMES, seeds[0])[0]
    assert f"execution {row.id}: nondeterminism at seq 2: changed arguments:" in row.message
    assert f"where the history recorded name={first_recorded!r}" in row.message
    assert "sorted(...)" in row.message and "this.step" in row.message
    assert row.ended_at is None  # halted, its log intact

    # `engine replay` with the second seed says the same
    env = {**os.environ, "PYTHONHASHSEED": str(seeds[1])}
    replayed = subprocess.run(engine_argv("replay", row.id, "--json"), env=env, capture_output=True, text=True, check=False)
    divergence = json.loads(replayed.stdout)["divergence"]
    assert (replayed.returncode, divergence["seq"], divergence["cause"]) == (1, 2, "changed arguments")
    assert divergence["detail"].endswith(f"where the history recorded name={first_recorded!r}")


def test_steps_over_a_set_replayed_with_the_same_hash_seed_end_right(engine, run_cli, engine_argv):
    seeds = seeds_that_reorder(NAMES)
    row = run_across_seeds(engine, run_cli, engine_argv, "set_steps.py", (seeds[0], seeds[0]), names=NAMES)
    assert (row.status, row.message, row.output_value) == ("ENDED_SUCCESS", "0 of 6 wrong", {"wrong": []})


def test_flow_api_calls_from_other_threads_are_refused_and_fail_the_execution(engine, run_cli):
    started = run_cli("run", str(FLOWS / "threads.py"), "--detach")
    execution_id = started.stdout.strip()

    row = engine.run_until_ended(execution_id)

    assert row.status == "ENDED_ERROR"  # before: ENDED_SUCCESS, and other threads' values after a replay
    (ended,) = [e.body for e in engine.history(execution_id) if e.kind == "ended"]
    assert ended.error.type == "WrongThreadError"
    assert f"execution {execution_id}: step was called from thread 'worker-" in row.message
    assert "accepted only from the thread running the handler" in row.message
    assert "this.flow(..., wait=False)" in row.message and "this.wait_for" in row.message
    assert not [e for e in engine.history(execution_id) if e.kind == "step"]  # nothing recorded out of order


def test_a_step_error_replays_as_the_same_class_with_its_args_and_attributes(engine, run_cli, engine_argv, tmp_path):
    missing = str(tmp_path / "missing.txt")
    row = run_across_seeds(engine, run_cli, engine_argv, "step_errors.py", (1, 2), missing=missing)
    assert row.status == "ENDED_SUCCESS", row.message

    replayed = row.output_value["caught"]  # computed by the last activation, from recorded failures
    (live,) = [json.loads(e.body.message) for e in engine.history(row.id) if e.kind == "log"]  # the first run
    assert replayed == live
    quota, missing_file, parse, refused = replayed
    # before: e.code raised AttributeError after the replay, and the dict came back as a string
    assert quota == {"type": "QuotaError", "args": [{"retry_after": 5, "tags": ["a", "b"]}], "attributes": {"code": 429},
                     "code": 429}
    assert (missing_file["type"], missing_file["errno"], missing_file["filename"]) == ("FileNotFoundError", 2, missing)
    assert missing in missing_file["str"]
    assert parse["type"] == "JSONDecodeError" and parse["attributes"]["pos"] == 1
    # an error a replay could not raise again as it is was refused when it was recorded
    assert refused["type"] == "InvalidInputError"
    assert "step 'holds_a_lock' raised flow_step_errors.Unrecordable('cannot say')" in refused["str"]
    assert "its attribute 'lock' holds a value of type object" in refused["str"]


@pytest.mark.parametrize("where", ["nested", "tuple"])
def test_an_unrecordable_step_error_is_refused_when_recorded(where, engine, pure_replay):
    source = f'''
class Tupled(Exception):
    pass


def fail():
    class Local(Exception):
        pass
    raise Local("inside") if {where == "nested"} else Tupled(("a", 1))


def handler(system, this, inputs):
    try:
        this.step(fail)
    except Exception as exc:
        return this.success(f"{{type(exc).__name__}}: {{exc}}")
'''
    engine.register_flow("refuses", source)
    row = engine.run_until_ended(engine.start("refuses", {}))
    why = ("its class fail.<locals>.Local is defined inside a function" if where == "nested"
           else "its argument 1 holds a value of type tuple")
    assert row.status == "ENDED_SUCCESS" and row.message.startswith("InvalidInputError: execution "), row.message
    assert why in row.message
    assert pure_replay(row.id).decision.message == row.message


HELD = '''
def fetch(name):
    return "fetched " + name


def handler(system, this, inputs):
    name = "{name}"
    this.step(lambda: fetch(name))
    this.sleep(3600)
'''


def test_a_value_a_lambda_holds_is_an_argument_and_logs_without_digests_replay_unchecked(engine, pure_replay):
    engine.register_flow("held", HELD.format(name="alpha"))
    execution_id = engine.start("held", {})
    engine.worker().run(until=lambda: engine.get(execution_id).status == "WAITING")

    halted = pure_replay(execution_id, source=HELD.format(name="bravo")).decision
    assert halted.kind == "halt"
    assert "name (held by the function)='bravo' where the history recorded name (held by the function)='alpha'" in (
        halted.message)

    # a log written before arguments were recorded has none to check
    old = [msgspec.structs.replace(e, body=msgspec.structs.replace(e.body, args=None)) if e.kind == "step" else e
           for e in engine.history(execution_id)]
    assert pure_replay(execution_id, source=HELD.format(name="bravo"), history=old).decision.kind == "exhausted"
