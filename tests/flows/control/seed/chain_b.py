import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.flow('flow_1')
    return this.success('b done')
