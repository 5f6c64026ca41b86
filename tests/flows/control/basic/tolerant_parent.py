import flow_api

def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    try:
        this.flow('sleeper')
    except flow_api.DependencyFailedError as exc:
        this.set_output('error', type(exc).__name__)
        return this.success('child failed, handled')
    return this.success('child succeeded')
