"""v2: stores before it fetches."""


def fetch():
    return "fetched"


def store():
    return "stored"


def handler(system, this, inputs):
    this.step(store)  # asked
    this.step(fetch)
    this.sleep(inputs["sleep"])
    return this.success("v2 done")
