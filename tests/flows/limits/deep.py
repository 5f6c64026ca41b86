"""Records a value nested ``depth`` lists deep in the way ``what`` names."""


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def loop():
    value = []
    value.append(value)
    return value


def handler(system, this, inputs):
    what, depth = inputs["what"], inputs.get("depth", 400)
    if what == "output":  # the output dict is the first level
        this.set_output(deep=nested(depth - 1))
    elif what == "step":
        this.step(nested, depth)
    elif what == "loop":
        this.step(loop)
    elif what == "setting":
        system.setting("deep").save(value=nested(depth))
    elif what == "child_input":  # the inputs dict is the first level
        this.flow("ok", deep=nested(depth - 1))
    return this.success(f"recorded a {what} nested {depth} deep")
