"""Golden history: children, waits, reads and a cancelled child."""

import flow_api


def handler(system, this, inputs):
    child = this.flow("golden_child", name="first", x=1)
    this.log("first child said", child.get("output_value"))
    a = this.flow("golden_child", x=2, wait=False)
    b = this.flow("golden_child", x=3, wait=False)
    ended = this.wait_for(a, b, return_when="ALL_ENDED")
    paused = this.flow("golden_child", run=False, x=4)
    paused.run()
    doomed = this.flow("golden_child", run=False, x=5)
    doomed.cancel()
    try:
        this.flow("golden_child", fail=True)
    except flow_api.DependencyFailedError:
        this.log("the failing child failed")
    this.set_output(outputs=[e.load("output_value") for e in ended], paused=paused.get("status"))
    return this.success("children done")
