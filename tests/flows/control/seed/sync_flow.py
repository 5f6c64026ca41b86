import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('sync_flow ran')
    return this.success('sync_flow done')
