"""Messages that wait for people: ``this.message`` records a message; with a form the
execution waits, holding nothing, until ``engine messages respond`` gives an answer that
fits the form. Flows: tests/flows/outside/approval.py and messages.py."""

from __future__ import annotations

import json
import subprocess

import pytest
from connection_support import (  # noqa: F401
    OUTSIDE,
    engine_process,
    kinds,
    outside,
    process_env,
    run_flow,
    run_process,
)


def waiting_on(engine, execution_id):
    """Run an embedded worker until nothing is runnable; the execution must be WAITING."""
    engine.worker().run(until_idle=True)
    row = engine.store.get_execution(execution_id)
    assert row.status == "WAITING", row.message
    (message,) = engine.store.list_messages(status="waiting", execution_id=execution_id)
    return row, message


def test_a_message_without_a_form_is_recorded_and_does_not_wait(outside, run_cli):
    row = run_flow(outside, "messages", {"mode": "info"})
    assert row.status == "ENDED_SUCCESS"
    message = outside.store.get_message(row.output_value["message_id"])  # this.message returned its id
    assert (message.execution_id, message.subject, message.status, message.form) == (row.id, "FYI", "sent", None)
    assert "message" in kinds(outside, row.id)
    assert json.loads(run_cli("messages", "ls", "--json").stdout) == []  # nothing to answer
    listed = json.loads(run_cli("messages", "ls", "--all", "--json").stdout)
    assert [(m["id"], m["status"]) for m in listed] == [(message.id, "sent")]


def test_a_form_waits_holding_nothing_and_continues_with_the_checked_answer(outside, run_cli):
    execution_id = outside.start("approval")
    row, message = waiting_on(outside, execution_id)
    assert row.lease_owner is None and row.wake_at is None  # no worker, no timer holds it

    listed = run_cli("messages", "ls")
    assert listed.exit_code == 0
    assert message.id in listed.stdout and "Deploy?" in listed.stdout
    assert "approve*:boolean, comment:string, replicas:integer" in listed.stdout
    [as_json] = json.loads(run_cli("messages", "ls", "--json").stdout)
    assert [(f["name"], f["label"], f["required"]) for f in as_json["form"]] == [
        ("approve", "Approve the deployment?", True), ("comment", "Comment", False), ("replicas", "Replicas", False)]
    shown = run_cli("messages", "show", message.id).stdout
    assert "Please **approve** the deployment." in shown and "replicas (integer): Replicas [default 1]" in shown

    for answer, problem in [
        (["-f", "approve=maybe"], "'approve' must be a boolean, got 'maybe'"),
        (["-f", "comment=hi"], "'approve' (Approve the deployment?) is required"),
        (["-f", "approve=yes", "-f", "replicas=many"], "'replicas' must be an integer, got 'many'"),
        (["-f", "approve=yes", "-f", "colour=red"], "unknown field 'colour'"),
        (["--json", '{"approve": null}'], "'approve' (Approve the deployment?) is required"),
    ]:
        refused = run_cli("messages", "respond", message.id, *answer)
        assert refused.exit_code != 0
        assert problem in refused.stderr and "keeps waiting" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert outside.get(execution_id).status == "WAITING"
    assert outside.store.get_message(message.id).status == "waiting"

    answered = run_cli("messages", "respond", message.id, "-f", "approve=yes", "-f", "replicas=3", "-f", "comment=42")
    assert answered.exit_code == 0, answered.stderr
    assert outside.get(execution_id).status == "QUEUED"  # the answer made it runnable
    row = outside.run_until_ended(execution_id)
    assert (row.status, row.message) == ("ENDED_SUCCESS", "approved with 3 replicas")
    assert row.output_value == {"answer": {"approve": True, "comment": "42", "replicas": 3}}  # "42" stays a string
    assert kinds(outside, execution_id) == ["started", "log", "message", "message_answered", "output", "ended"]

    again = run_cli("messages", "respond", message.id, "-f", "approve=no")
    assert again.exit_code != 0 and "is answered, not waiting for an answer" in again.stderr
    unknown = run_cli("messages", "respond", "no-such-message", "-f", "approve=no")
    assert unknown.exit_code != 0 and "no message 'no-such-message'" in unknown.stderr
    assert len(again.stderr.strip().splitlines()) == len(unknown.stderr.strip().splitlines()) == 1
    assert run_cli("messages", "ls").stdout.count("\n") == 1  # the header only: nothing open


def test_a_rejection_reaches_the_handler(outside):
    execution_id = outside.start("approval")
    _, message = waiting_on(outside, execution_id)
    outside.respond(message.id, {"approve": False, "comment": "not on a Friday"})
    row = outside.run_until_ended(execution_id)
    assert (row.status, row.message) == ("ENDED_ERROR", "rejected: not on a Friday")


@pytest.mark.parametrize(
    ("mode", "respond", "answer"),
    [
        ("request", ["--json", '{"response": "Ada"}'], {"response": "Ada"}),  # request='...': one string field
        ("ack", [], {}),  # wait=True without a form: an empty answer acknowledges
    ],
)
def test_request_text_and_acknowledgements(outside, run_cli, mode, respond, answer):
    execution_id = outside.start("messages", {"mode": mode})
    _, message = waiting_on(outside, execution_id)
    result = run_cli("messages", "respond", message.id, *respond)
    assert result.exit_code == 0, result.stderr
    row = outside.run_until_ended(execution_id)
    assert (row.status, row.output_value) == ("ENDED_SUCCESS", {"answer": answer})


def test_wait_false_with_a_form_records_without_waiting(outside, run_cli):
    row = run_flow(outside, "messages", {"mode": "nowait_form"})
    assert row.status == "ENDED_SUCCESS"
    message = outside.store.get_message(row.output_value["message_id"])
    assert (message.status, [f["name"] for f in message.form]) == ("sent", ["response"])
    refused = run_cli("messages", "respond", message.id, "-f", "response=late")
    assert refused.exit_code != 0 and "is sent, not waiting for an answer" in refused.stderr


def test_nobody_answering_in_time_raises_message_response_timeout_error(outside, run_cli):
    row = run_flow(outside, "messages", {"mode": "timeout", "timeout": 0.2})  # a worker waits out the timer
    assert (row.status, row.message) == ("ENDED_SUCCESS", "nobody answered")
    assert "nobody answered message" in row.output_value["timed_out"]
    (message,) = outside.store.list_messages(execution_id=row.id)
    assert message.status == "expired"
    assert json.loads(run_cli("messages", "ls", "--json").stdout) == []
    late = run_cli("messages", "respond", message.id, "-f", "response=sorry")
    assert late.exit_code != 0 and "expired" in late.stderr
    with pytest.raises(ValueError, match="expired at"):  # the store refuses it too (an answer racing the deadline)
        outside.store.answer_message(message.id, {"response": "sorry"})
    history = outside.history(row.id)
    assert [e.body.timed_out for e in history if e.kind == "message_answered"] == [True]


def test_an_approval_survives_a_killed_worker_and_finishes_on_a_new_one(outside, db_url, tmp_path, wait_for_status):
    execution_id = outside.start("approval", {"subject": "Deploy 1.2?"})
    worker = subprocess.Popen(engine_process(db_url, "worker", "--lease", "1"), cwd=tmp_path, env=process_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_status(execution_id, "WAITING", proc=worker)
    finally:
        worker.kill()  # SIGKILL while the execution waits on the message
        worker.wait(30)
    row = outside.store.get_execution(execution_id)
    assert (row.status, row.lease_owner) == ("WAITING", None)

    listed = run_process(engine_process(db_url, "messages", "ls", "--json"), tmp_path)
    (message,) = json.loads(listed.stdout)
    assert (message["execution_id"], message["subject"]) == (execution_id, "Deploy 1.2?")
    refused = run_process(engine_process(db_url, "messages", "respond", message["id"], "-f", "replicas=2"), tmp_path)
    assert refused.returncode != 0 and "'approve' (Approve the deployment?) is required" in refused.stderr
    answered = run_process(
        engine_process(db_url, "messages", "respond", message["id"], "-f", "approve=true", "-f", "replicas=2"), tmp_path
    )
    assert answered.returncode == 0, answered.stderr

    finished = run_process(engine_process(db_url, "worker", "--until-idle", "--lease", "1"), tmp_path)
    assert finished.returncode == 0, finished.stderr
    row = outside.get(execution_id)
    assert (row.status, row.message) == ("ENDED_SUCCESS", "approved with 2 replicas")
    assert row.output_value == {"answer": {"approve": True, "comment": "", "replicas": 2}}
    assert kinds(outside, execution_id).count("log") == 1  # the replay did not log again


def test_engine_run_says_how_to_answer_a_message_it_waits_for(outside, db_url, tmp_path):
    """`engine run` blocks while its execution waits for a person: it says, once, on stderr,
    which command answers the message, and ends when that answer is given."""
    flow = tmp_path / "flows" / "approval.py"
    flow.parent.mkdir()
    flow.write_text((OUTSIDE / "approval.py").read_text())
    run = subprocess.Popen(engine_process(db_url, "run", str(flow), "-i", "subject=Ship?"), cwd=tmp_path,
                           env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        hint = run.stderr.readline()
        assert "waits for an answer to 'Ship?': engine messages respond " in hint
        assert "-f approve=... -f comment=... -f replicas=..." in hint
        respond = hint.split(": ", 1)[1].split()[:4]  # engine messages respond ID
        answered = run_process(engine_process(db_url, *respond[1:], "-f", "approve=yes"), tmp_path)
        assert answered.returncode == 0, answered.stderr
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0 and "ENDED_SUCCESS: approved with 1 replicas" in out
    assert "waits for an answer" not in err  # said once
