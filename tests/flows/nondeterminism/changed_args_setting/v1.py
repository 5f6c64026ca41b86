def handler(system, this, inputs):
    system.setting("alpha").save(value={"limit": 10})  # recorded
    this.sleep(inputs["sleep"])
    return this.success("v1 done")
