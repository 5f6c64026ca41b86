"""End ENDED_ERROR, so that it can be retried."""


def handler(system, this, inputs):
    return this.error("failed on purpose")
