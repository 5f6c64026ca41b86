import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    flow = system.flow('example_flow_name')
    if flow.exists():
        this.log("flow exists!")
        return this.success('all done')
    else:
        return this.error("flow does not exist!")
