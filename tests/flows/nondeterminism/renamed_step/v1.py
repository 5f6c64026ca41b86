def fetch():
    return "fetched"


def store():
    return "stored"


def handler(system, this, inputs):
    this.step(fetch)  # recorded
    this.step(store)
    this.sleep(inputs["sleep"])
    return this.success("v1 done")
