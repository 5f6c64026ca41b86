"""Every flow_api command at least once. tests/test_replay.py runs it live, then replays
its history with no live backend and compares what the handler saw (SEEN) both times."""

import pathlib

#: What the handler saw during its latest activation (cleared at the top of each one).
SEEN = []


def bump(path):
    """A file-backed counter: survives the handler being re-run and the process dying."""
    p = pathlib.Path(path)
    n = int(p.read_text()) + 1 if p.exists() else 1
    p.write_text(str(n))
    return n


def add(a, b, counter):
    bump(counter)
    return {"sum": a + b, "pair": (a, b)}


def boom(counter):
    bump(counter)
    raise ValueError("step failed on purpose")


def handler(system, this, inputs):
    SEEN.clear()
    see = SEEN.append
    bump(inputs["activations"])
    this.log("starting", inputs["n"], mode="test")
    this.set_output(a=1)
    this.set_output("b", [1, 2])
    see(("output after set_output", this.get("output_value")))
    this.save(output_value={"replaced": True})
    see(("output after save", this.get("output_value")))
    see(("own fields", this.load("input_value", "output_value", "status", "name")))
    see(("input via get", this.get("input_value")))
    see(("now", this.now()))
    see(("random", this.random()))
    see(("uuid", this.uuid()))
    see(("step", this.step(add, 2, 3, inputs["step_counter"])))
    try:
        this.step(boom, inputs["fail_counter"])
    except ValueError as exc:
        see(("step failure", type(exc).__name__, str(exc)))
    this.sleep(0.02)
    see(("after sleep", True))
    f = system.flow("some-name")
    see(("flow handle", repr(f), f.get("name"), f.exists(), system.flow("helper").exists()))
    child = this.flow("helper", name="the child", x=4)
    see(("child", child.get("output_value"), child.load("status", "name")))
    first = this.flow("helper", x=1, wait=False)
    second = this.flow("helper", x=2, wait=False)
    done = this.wait_for(first, second)
    see(("wait_for", [e.get("output_value") for e in done]))
    colour = system.setting("colour")
    see(("setting before save", colour.exists()))
    colour.save(value={"c": "red"}, description="the colour")
    see(("setting after save", colour.get("value"), colour.get("description"), colour.exists()))
    system.setting("temporary").save(value=1)
    system.setting("temporary").delete()
    see(("setting after delete", system.setting("temporary").exists()))
    found = system.executions({"field": "name", "op": "eq", "value": "pre-existing"})
    see(("executions", [e.id for e in found]))
    this.set_output(done=True)
    return this.success("everything done")
