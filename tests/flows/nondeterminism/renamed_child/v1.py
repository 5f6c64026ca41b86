def handler(system, this, inputs):
    this.log("creating a paused child")
    this.flow("nd_helper_a", run=False)  # recorded
    this.sleep(inputs["sleep"])
    return this.success("v1 done")
