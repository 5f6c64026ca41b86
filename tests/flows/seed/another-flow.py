"""A child flow the seed examples start: it logs, sets an output and succeeds."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('another-flow ran')
    this.set_output(flow='another-flow')
    return this.success('another-flow done')
