"""Save a stored connector from a flow, read it back, then connect through it with overrides."""

import flow_api


def handler(system, this, inputs):
    connector = system.connector(inputs["name"])
    if inputs.get("save"):
        connector.save(connector_type="REST", value=inputs["save"])
    this.set_output(stored=connector.get("value"), stored_type=connector.get("connector_type"))
    conn = this.connect(inputs["name"], **inputs.get("overrides", {}))
    this.set_output(result=conn.get("output_value"), connection=conn.id)
    return this.success("connected through a stored connector")
