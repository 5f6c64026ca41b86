"""v2: the setting was renamed."""


def handler(system, this, inputs):
    system.setting("beta").save(value=1)  # asked
    this.sleep(inputs["sleep"])
    return this.success("v2 done")
