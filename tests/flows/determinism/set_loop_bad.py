import flow_api

REGIONS = {"eu", "us", "ap"}


def fetch(name):
    return name.upper()


def handler(system, this, inputs):
    for region in REGIONS:  # <- found
        this.step(fetch, region)
    names = set(inputs["names"])
    for name in names:  # <- found
        this.flow("greet", name=name, wait=False)
    for i, tag in enumerate({"a", "b"}):  # <- found
        system.setting(f"tag {i}").save(tag)
    children = [this.flow("greet", name=n, wait=False) for n in frozenset(inputs["more"])]  # <- found
    for word in {w.lower() for w in inputs["words"]}:  # <- found
        this.log(word)
    for name in names | REGIONS:  # <- found
        notify(this, name)
    this.wait_for(*children)
    return this.success("done")


def notify(this, name):
    this.log(f"hello {name}")
