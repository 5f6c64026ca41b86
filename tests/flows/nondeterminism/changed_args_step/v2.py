"""v2: the same step is called with another keyword argument."""


def fetch(name, region="eu"):
    return f"{name} in {region}"


def handler(system, this, inputs):
    this.step(fetch, "alpha", region="us")  # asked
    this.sleep(inputs["sleep"])
    return this.success("v2 done")
