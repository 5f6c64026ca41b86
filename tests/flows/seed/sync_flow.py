"""A child flow the seed examples start: it logs, sets an output and succeeds."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('sync_flow ran')
    this.set_output(flow='sync_flow')
    return this.success('sync_flow done')
