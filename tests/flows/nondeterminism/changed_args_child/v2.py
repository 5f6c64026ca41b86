"""v2: the same child flow gets another input."""


def handler(system, this, inputs):
    this.flow("nd_helper_a", run=False, inputs={"batch": [1, 2, 4]})  # asked
    this.sleep(inputs["sleep"])
    return this.success("v2 done")
