"""v2: no longer stores nor sleeps."""


def fetch():
    return "fetched"


def store():
    return "stored"


def handler(system, this, inputs):
    this.step(fetch)
    return this.success("v2 done")  # asked
