"""Passing a resource to another flow (the seed's "example 2: passing Cloudomation resources").

A handle on the setting 'my-setting' is passed as an input to the child flow 'Setting
Writer', where it arrives as a live handle and is written. Run it, then look at the setting:

    engine run examples/seed/passing_resources.py
    engine tree ID                     # the main process and its 'write setting' child
    engine history CHILD_ID            # the child's setting_save event
"""
import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    # get a Cloudomation resource
    setting = system.setting('my-setting')

    # pass the Cloudomation resource to the flow
    this.flow(
        'Setting Writer',
        name='write setting',
        setting=setting,
    )
    return this.success('all done')
