"""A well-behaved flow: a log line, a step, an output. The hostile tests run it before and
after each bad input to show nothing recorded was lost and the engine still works."""


def answer():
    return 42


def handler(system, this, inputs):
    this.log("ok flow ran")
    this.set_output(answer=this.step(answer), pad_size=len(inputs.get("pad", "")))
    return this.success("ok")
