"""A child flow the seed examples start: it logs, sets an output and succeeds."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('example_flow_name ran')
    this.set_output(flow='example_flow_name')
    return this.success('example_flow_name done')
