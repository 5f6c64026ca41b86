"""v2: the same connection runs another query."""


def handler(system, this, inputs):
    this.connect(connector_type="SQLITE", run=False, path="orders.db", query="SELECT 2")  # asked
    this.sleep(inputs["sleep"])
    return this.success("v2 done")
