"""Golden history: one of each command that needs no other execution. Deterministic
given its inputs, except now/random/uuid, which the golden test normalises."""


def double(x):
    return {"doubled": x * 2, "pair": [x, x]}


def fail():
    raise ValueError("failed on purpose")


def handler(system, this, inputs):
    this.log("hello", inputs["name"], level="info")
    this.set_output(count=inputs["n"])
    this.set_output("name", inputs["name"])
    this.save(output_value={"replaced": True})
    this.now()
    this.random()
    this.uuid()
    result = this.step(double, inputs["n"])
    try:
        this.step(fail)
    except ValueError:
        this.log("caught", level="warning")
    this.sleep(0.01)
    system.flow("golden_child").exists()
    system.flow("no-such-flow").exists()
    setting = system.setting("golden-setting")
    setting.exists()
    setting.save(value={"v": 1}, description="made by golden_commands")
    setting.get("value")
    setting.delete()
    this.set_output(result=result)
    return this.success("commands done")
