"""v2: logs before fetching."""


def fetch():
    return "fetched"


def handler(system, this, inputs):
    this.log("a new call")  # asked
    this.step(fetch)
    this.sleep(inputs["sleep"])
    return this.success("v2 done")
