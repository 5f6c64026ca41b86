def handler(system, this, inputs):
    this.flow("nd_helper_a", run=False, inputs={"batch": [1, 2, 3]})  # recorded
    this.sleep(inputs["sleep"])
    return this.success("v1 done")
