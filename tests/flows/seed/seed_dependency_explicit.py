import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    child_execution = this.flow(
        'another-flow',
        run=False # Main execution does not wait for the child execution (not a dependency)
    )
    this.dependency(child_execution) # Dependency is later defined explicitly
    return this.success('All done.')
