"""A parent: two orders as children, waited for together."""
import flow_api  # noqa: F401  (flow scripts import flow_api, as the seed's do)


def handler(system, this, inputs):
    first = this.flow("order", item="apple", qty=1, wait=False)
    second = this.flow("order", item="pear", qty=3, wait=False)
    this.wait_for(first, second)
    this.log("both ordered")
    return this.success("batch done")
