import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log(system.flow('some-name')) 
