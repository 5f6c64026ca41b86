import flow_api


def boom():
    raise ValueError('the service is down')


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.flow('leaf')
    this.step(boom)
    return this.success('never')
