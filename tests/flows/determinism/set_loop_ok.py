import flow_api

REGIONS = {"eu", "us", "ap"}


def fetch(name):
    return name.upper()


def handler(system, this, inputs):
    for region in sorted(REGIONS):
        this.step(fetch, region)
    names = set(inputs["names"])
    for name in sorted(names):
        this.flow("greet", name=name, wait=False)
    upper = set()
    for name in names:
        upper.add(name.upper())
    this.log(f"{len(upper)} names")
    for name in list(inputs["names"]):
        this.log(name)
    for key, value in dict(inputs).items():
        this.log(f"{key}={value}")
    children = [this.flow("greet", name=n, wait=False) for n in sorted(frozenset(inputs["more"]))]
    names = list(inputs["names"])
    for name in names:
        this.log(name)
    this.wait_for(*children)
    return this.success("done")
