import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('flow_1 ran')
    return this.success('flow_1 done')
