"""Waits for an answer to one message, then returns it."""


def handler(system, this, inputs):
    answer = this.message("wake", body={"value": {"type": "number", "required": True}})
    this.set_output(value=answer["value"])
