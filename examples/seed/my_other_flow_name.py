"""A child that fails on purpose, for handling_errors.py:

    engine run examples/seed/handling_errors.py
"""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.log('about to fail on purpose')
    return this.error('failed on purpose, to show error handling in the parent')
