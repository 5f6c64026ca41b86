"""A child flow of project 'equipment' (its folder) for the location_inheritance examples."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('api-data-processing-flow ran')
    return this.success('api-data-processing-flow done')
