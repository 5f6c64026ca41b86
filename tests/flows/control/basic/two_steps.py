import flow_api


def first(n):
    return n


def second(n):
    return n * 10


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    a = this.step(first, inputs['n'])
    this.log(f'a={a}')
    b = this.step(second, inputs['n'])
    this.set_output('result', a + b)
    return this.success(f'result {a + b}')
