"""A child flow of project 'equipment' (its folder) for the location_inheritance examples."""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('archive-log-flow ran')
    return this.success('archive-log-flow done')
