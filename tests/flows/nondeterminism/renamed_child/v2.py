"""v2: the child is another flow."""


def handler(system, this, inputs):
    this.log("creating a paused child")
    this.flow("nd_helper_b", run=False)  # asked
    this.sleep(inputs["sleep"])
    return this.success("v2 done")
