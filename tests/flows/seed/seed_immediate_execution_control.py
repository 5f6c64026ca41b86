import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    # Create child execution but do not run it yet
    child_execution = this.flow(
        'another-flow',
        run=False # Execution is not started immediately
    )
    # Start execution later
    child_execution.run(wait=True)
    this.log('Flow executed after manual start.')
    return this.success('Manual execution started successfully.')
