"""A child flow of project 'equipment' (its folder) for the location_inheritance examples."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('equipment-operations-flow ran')
    return this.success('equipment-operations-flow done')
