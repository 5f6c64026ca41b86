def fetch():
    return "fetched"


def handler(system, this, inputs):
    this.step(fetch)  # recorded
    this.sleep(inputs["sleep"])
    return this.success("v1 done")
