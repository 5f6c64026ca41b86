"""One child of the fan-out demo: a recorded step, a durable timer, an output.

It squares its input ``i`` in ``this.step`` (run once; a replay reads the recorded
result), sleeps ``seconds`` on a durable timer (the execution waits holding nothing)
and sets ``value`` in its output. It runs as a child of the demo's parent:

    engine run examples/fanout/parent.py -i n=5

or alone: ``engine run examples/fanout/fanout_child.py -i i=7``.
"""
import flow_api


def square(i: int) -> int:
    return i * i


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    i = int(inputs.get('i', 0))
    value = this.step(square, i)
    this.sleep(float(inputs.get('seconds', 0.5)))
    this.set_output(value=value)
    return this.success(f'{i} squared is {value}')
