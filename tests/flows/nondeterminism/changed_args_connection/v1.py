def handler(system, this, inputs):
    this.connect(connector_type="SQLITE", run=False, path="orders.db", query="SELECT 1")  # recorded
    this.sleep(inputs["sleep"])
    return this.success("v1 done")
