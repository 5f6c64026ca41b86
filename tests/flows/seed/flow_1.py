"""A child flow the seed examples start: it logs, sets an output and succeeds."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('flow_1 ran')
    this.set_output(flow='flow_1')
    return this.success('flow_1 done')
