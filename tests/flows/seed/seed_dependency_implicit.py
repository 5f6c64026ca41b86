import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    child_execution = this.flow(
        'another-flow',
        run=True # Main execution has to wait for this child execution
    )
    return this.success('All done.')
