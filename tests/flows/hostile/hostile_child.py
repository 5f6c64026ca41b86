"""A child that takes a little while, so its parent must wait for it."""


def handler(system, this, inputs):
    this.sleep(0.1)
    return this.success("child done")
