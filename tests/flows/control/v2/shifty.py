"""The fix: the same calls on every run."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('first')
    this.sleep(0.05)
    return this.success('fixed shifty done')
