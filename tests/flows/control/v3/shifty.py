"""A wrong fix: still inconsistent with the recorded history."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.now()
    this.sleep(0.05)
    return this.success('never')
