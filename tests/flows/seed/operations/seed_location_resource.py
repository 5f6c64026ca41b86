import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    child_execution = this.flow(
        'equipment-operations-flow'
    ).run(
        location_inheritance='resource'
    )
