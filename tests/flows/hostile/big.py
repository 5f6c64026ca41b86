"""Records a value of ``mb`` megabytes (50 by default) in the way ``what`` names."""


def blob(mb):
    return "x" * (mb * 1024 * 1024)


def handler(system, this, inputs):
    what, mb = inputs["what"], inputs.get("mb", 50)
    if what == "output":
        this.set_output(big=blob(mb))
    elif what == "halves":  # each half fits, the whole output does not
        this.set_output(a=blob(mb // 2))
        this.set_output(b=blob(mb // 2))
    elif what == "step":
        this.step(blob, mb)
    elif what == "child_input":
        this.flow("ok", big=blob(mb))
    elif what == "setting":
        system.setting("big").save(value=blob(mb))
    elif what == "log":
        this.log(blob(mb))
    return this.success(f"recorded a {mb} MB {what}")
