"""Calls the engine refuses, caught by the handler, which carries on: a replay must see
the same refusals at the same places."""

import flow_api


def handler(system, this, inputs):
    refused = []
    for attempt in (
        lambda: this.connect(connector_type="NO_SUCH_TYPE", url="http://127.0.0.1:9/"),
        lambda: this.connect("no-such-connector"),
        lambda: this.message(subject="bad form", body={"type": "object", "properties": {"x": {"type": "date"}}}),
        lambda: this.message(subject="bad timeout", request="?", timeout="soon"),
        lambda: system.connector("broken").save(connector_type="NO_SUCH_TYPE", value={}),
    ):
        try:
            attempt()
        except (flow_api.InvalidInputError, flow_api.ResourceNotFoundError) as exc:
            refused.append(f"{type(exc).__name__}: {exc}")
    this.log("still going")
    this.set_output(refused=refused)
    return this.success("refusals caught")
