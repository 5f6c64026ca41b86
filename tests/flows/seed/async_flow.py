"""A child flow the seed examples start: it logs, sets an output and succeeds."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('async_flow ran')
    this.set_output(flow='async_flow')
    return this.success('async_flow done')
