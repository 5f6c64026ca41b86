import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.flow('sleeper', seconds=inputs.get('seconds', 3600))
    return this.success('child done')
