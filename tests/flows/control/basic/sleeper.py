import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('sleeping')
    this.sleep(inputs.get('seconds', 3600))
    return this.success('woke up')
