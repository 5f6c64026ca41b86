def fetch():
    return "fetched"


def store():
    return "stored"


def handler(system, this, inputs):
    this.step(fetch)
    this.step(store)  # recorded
    this.sleep(inputs["sleep"])
    return this.success("v1 done")
