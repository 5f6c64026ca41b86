import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('another-flow ran')
    return this.success('another-flow done')
