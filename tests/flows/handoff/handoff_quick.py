"""End at once."""


def handler(system, this, inputs):
    return None
