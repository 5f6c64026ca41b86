"""A well-behaved flow, started as a child by the others."""


def handler(system, this, inputs):
    return this.success("ok")
