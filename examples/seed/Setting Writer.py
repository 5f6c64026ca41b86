"""Flow 2 of the seed's passing-resources example: writes the setting it was handed.

It is started by passing_resources.py:

    engine run examples/seed/passing_resources.py
"""
import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    # get the passed Cloudomation resource
    setting = inputs['setting']

    # write the setting
    setting.save(value='my value')

    return this.success('all done')
