import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    child_execution = this.flow(
        'api-data-processing-flow'
    ).run(
        location_inheritance='wrapped_resource'
    )
