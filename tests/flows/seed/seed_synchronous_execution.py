import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    child_execution = this.flow(
        'sync_flow',
        wait=True # Ensures that the parent waits for the child execution to finish
    )
    if child_execution.get('status') != 'ENDED_SUCCESS':
        return this.error('Child flow execution failed!')

    this.log('Synchronous execution completed successfully!')
    return this.success('Flow executed synchronously')
