"""Steps called in the order of a set: a hash-seed-dependent order (issue 10, item 1).

A worker process with one PYTHONHASHSEED records the steps; after the durable wait a
worker with another seed replays them in another order.
"""
import flow_api  # noqa: F401


def fetch(name):
    return f"result of {name}"


def handler(system, this, inputs):
    got = {}
    for name in set(inputs["names"]):
        got[name] = this.step(fetch, name)
    this.message("go on?", wait=True)
    wrong = sorted(name for name, value in got.items() if value != f"result of {name}")
    this.set_output(wrong=wrong)
    return this.success(f"{len(wrong)} of {len(got)} wrong")
