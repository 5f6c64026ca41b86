"""Answer with the inputs it was given."""


def handler(system, this, inputs):
    this.log("echoing")
    this.set_output(inputs=inputs)
    return this.success("echoed")
