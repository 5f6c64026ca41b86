import flow_api


def fine():
    return 42


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.flow('leaf')
    this.set_output('answer', this.step(fine))
    return this.success('fixed')
