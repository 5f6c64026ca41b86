def fetch(name, region="eu"):
    return f"{name} in {region}"


def handler(system, this, inputs):
    this.step(fetch, "alpha", region="eu")  # recorded
    this.sleep(inputs["sleep"])
    return this.success("v1 done")
