"""Sleeps ``seconds`` (a number, or a string such as 'nan' or 'inf')."""


def handler(system, this, inputs):
    this.sleep(float(inputs["seconds"]))
    return this.success("slept")
