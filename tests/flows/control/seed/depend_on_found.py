import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.dependency(*system.executions(filter_={'field': 'flow', 'op': 'eq', 'value': 'flow_1'}))
    return this.success('All done.')
