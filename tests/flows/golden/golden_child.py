"""The child of the golden histories: doubles x, or fails when asked to."""


def handler(system, this, inputs):
    if inputs.get("fail"):
        raise RuntimeError("asked to fail")
    this.set_output(double=inputs["x"] * 2)
