"""A child flow the seed examples start: it logs, sets an output and succeeds."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('my_other_flow_name ran')
    this.set_output(flow='my_other_flow_name')
    return this.success('my_other_flow_name done')
