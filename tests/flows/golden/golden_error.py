"""Golden history: a handler that raises; the end event keeps the traceback."""


def parse(text):
    return int(text)


def handler(system, this, inputs):
    this.log("parsing", inputs["text"])
    value = parse(inputs["text"])
    this.set_output(value=value)
