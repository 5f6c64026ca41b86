"""Hands ``object()`` to the engine as ``what`` says; with ``catch`` it catches each refusal
and goes on through a durable sleep, so the refusals are replayed too."""

import flow_api


def make():
    return object()


def record(system, this, what):
    if what == "output":
        this.set_output(bad=object())
    elif what == "step":
        this.step(make)
    elif what == "child_input":
        this.flow("ok", wait=False, bad=object())
    elif what == "setting":
        system.setting("bad").save(value=object())


def handler(system, this, inputs):
    if not inputs.get("catch"):
        record(system, this, inputs["what"])
        return this.success("should not get here")
    refused = []
    for what in ("output", "step", "child_input", "setting"):
        try:
            record(system, this, what)
        except flow_api.InvalidInputError as exc:
            refused.append(str(exc))
    this.sleep(0.1)  # the next activation replays every refusal from the log
    this.set_output(refused=refused)
    return this.success("refused all four")
