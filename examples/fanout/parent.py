"""Fan out N children at once and join them: the README demo.

The parent starts N executions of ``fanout_child`` with ``wait=False`` (they run side by
side), waits for all of them with one ``this.wait_for(...)`` and adds up their outputs.
While the children sleep on their durable timers, no process or thread waits for them:
a thousand sleeping children cost a thousand rows, not a thousand threads.

Run it (this registers every flow in this folder, then runs the parent until it ends):

    engine run examples/fanout/parent.py -i n=5

Inputs: ``n`` (how many children, default 5) and ``seconds`` (each child's sleep, default 0.5).
Then look around: ``engine tree ID``, ``engine deps ID``, ``engine history ID``, ``engine logs ID``.
"""
import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    n = int(inputs.get('n', 5))
    seconds = float(inputs.get('seconds', 0.5))
    children = [
        this.flow('fanout_child', name=f'child {i}', wait=False, i=i, seconds=seconds)
        for i in range(n)
    ]
    this.log(f'started {n} children, waiting for all of them')
    this.wait_for(*children)  # ALL_SUCCEEDED: a failed child raises DependencyFailedError here
    values = [child.get('output_value')['value'] for child in children]
    this.set_output(count=len(values), total=sum(values))
    return this.success(f'{len(values)} children, total {sum(values)}')
