"""Waits for two messages in turn, each followed by a step; writes a line outside the log
each time the handler starts and each time a step body runs."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    with open(inputs["starts"], "a") as starts:
        starts.write(this.get("id") + "\n")
    first = this.message("first", "one", body={"v": {"type": "integer"}})
    this.step(mark, inputs["starts"] + ".steps", "after-first")
    second = this.message("second", "two", body={"v": {"type": "integer"}})
    this.step(mark, inputs["starts"] + ".steps", "after-second")
    this.set_output("got", [first["v"], second["v"]])


def mark(path: str, tag: str) -> None:
    with open(path, "a") as steps:
        steps.write(tag + "\n")
