import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    # find an execution
    for execution in system.executions(filter_=...):
        this.dependency(execution) # execution could be created by some other flow
    return this.success('All done.')
