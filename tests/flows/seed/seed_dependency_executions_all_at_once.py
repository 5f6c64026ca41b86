import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.dependency(*system.executions(filter_=...))
    return this.success('All done.')
