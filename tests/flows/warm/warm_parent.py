"""Every kind of wait and outcome, for the warm-cache comparison: children (one fails),
a durable timer, a message answered from outside, a connection, and errors caught."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    with open(inputs["starts"], "a") as starts:  # outside the log: counts how often the handler starts
        starts.write(this.get("id") + "\n")
    good = this.flow("warm_child", inputs={"n": 3}, wait=False)
    bad = this.flow("warm_child", inputs={"n": -1}, wait=False)
    this.wait_for(good)
    try:
        this.wait_for(bad)
        failed = None
    except flow_api.DependencyFailedError as exc:
        failed = str(exc).split(":")[0]
    this.log(f"children: {good.get('output_value')}, failure: {failed}")
    this.sleep(0.05)
    answer = this.message("approve", "go on?", body={"ok": {"element": "boolean"}})
    connection = this.connect(connector_type="SQLITE", path=inputs["db"], query="SELECT 6 * 7 AS x")
    try:
        this.step(divide, 1, 0)
    except ZeroDivisionError as exc:
        this.log(f"step failed: {exc}")
    this.set_output("answer", answer)
    this.set_output("rows", connection.get("output_value"))
    return this.success("done")


def divide(a: int, b: int) -> float:
    return a / b
