"""v2: the step function has a new name."""


def fetch_all():
    return "fetched"


def store():
    return "stored"


def handler(system, this, inputs):
    this.step(fetch_all)  # asked
    this.step(store)
    this.sleep(inputs["sleep"])
    return this.success("v2 done")
