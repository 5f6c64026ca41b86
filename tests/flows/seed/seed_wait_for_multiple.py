import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    async_child_1 = this.flow('flow_1', wait=False)
    async_child_2 = this.flow('sync_flow', wait=False)

    this.wait_for(
        async_child_1,
        async_child_2,
        return_when='ALL_ENDED' # Options: ALL_ENDED, ALL_SUCCEEDED, FIRST_ENDED
    )
    this.log('All children executions have completed.')
    return this.success('Synchronized all async flows successfully')
