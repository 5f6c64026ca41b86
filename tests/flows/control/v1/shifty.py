"""Nondeterministic: branches on a module-level counter that the engine does not record,
so the replay after the nap calls now() where the first run logged."""
import itertools

import flow_api

_activations = itertools.count()


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    if next(_activations) == 0:
        this.log('first')
    else:
        this.now()
    this.sleep(0.05)
    return this.success('shifty done')
