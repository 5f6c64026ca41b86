"""A child for the replay tests: optionally naps (so its parent must wait), then outputs 10 * x."""


def handler(system, this, inputs):
    if inputs.get("nap"):
        this.sleep(inputs["nap"])
    this.set_output(y=inputs["x"] * 10)
