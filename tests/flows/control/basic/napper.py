import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('before the nap')
    this.sleep(0.01)
    this.log('after the nap')
    return this.success('rested')
