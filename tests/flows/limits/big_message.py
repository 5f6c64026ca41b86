"""Sends a message whose text is ``size`` characters long."""


def handler(system, this, inputs):
    this.message("big", "x" * inputs["size"], wait=False)
    return this.success("sent")
