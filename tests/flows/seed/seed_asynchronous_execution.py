import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    async_execution = this.flow(
        'async_flow',
        wait=False # Proceed without waiting for the child execution
    )
    this.log(f'Async flow triggered.')
    return this.success('Flow executed asynchronously')
