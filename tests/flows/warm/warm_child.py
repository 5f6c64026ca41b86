"""A child that waits on a timer, then ends with its square, or fails on a negative n."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.sleep(0.02)
    if inputs["n"] < 0:
        return this.error("negative")
    this.set_output("square", inputs["n"] ** 2)
