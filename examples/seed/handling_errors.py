"""Handling a failed child (the seed's "Handling Errors" example).

The child flow 'my_other_flow_name' of this folder fails on purpose. Waiting for it
raises ``flow_api.DependencyFailedError``; the parent catches it, logs
'my_other_flow_name failed' and still succeeds. Without the try/except the parent
would fail too. Run it and read its log:

    engine run examples/seed/handling_errors.py
    engine logs ID
"""
import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    try:
        my_flow = this.flow('my_other_flow_name')
    except flow_api.DependencyFailedError:
        this.log('my_other_flow_name failed')
    else:
        this.log('my_other_flow_name succeeded')
    return this.success('all done')
