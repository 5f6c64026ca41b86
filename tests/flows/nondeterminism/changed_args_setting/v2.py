"""v2: the same setting is saved with another value."""


def handler(system, this, inputs):
    system.setting("alpha").save(value={"limit": 20})  # asked
    this.sleep(inputs["sleep"])
    return this.success("v2 done")
