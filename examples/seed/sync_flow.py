"""A child of wait_for_multiple.py that works for a moment (a durable timer):

    engine run examples/seed/wait_for_multiple.py
"""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.sleep(0.2)
    return this.success('sync_flow done')
