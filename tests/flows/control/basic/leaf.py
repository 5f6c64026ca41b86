import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    return this.success('leaf done')
