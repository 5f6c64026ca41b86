"""One connection of any type, shaped by the inputs: ``type`` (or ``connector``, a stored
connector's name), ``params``, ``mode`` (wait / nowait / paused) and ``return_when``.
With ``ask`` it then waits for a person, so the next activation replays the connection."""

import flow_api


def handler(system, this, inputs):
    mode = inputs.get("mode", "wait")
    target = {"connector": inputs["connector"]} if "connector" in inputs else {"connector_type": inputs["type"]}
    return_when = inputs.get("return_when", "ALL_SUCCEEDED")
    try:
        if mode == "wait":
            conn = this.connect(**target, return_when=return_when, **inputs.get("params", {}))
        elif mode == "nowait":
            conn = this.connect(**target, wait=False, **inputs.get("params", {}))
            this.set_output(status_before_wait=conn.get("status"))
            this.wait_for(conn, return_when=return_when)
        else:  # paused: created PAUSED, started with .run()
            conn = this.connect(**target, run=False, **inputs.get("params", {}))
            this.set_output(status_before_run=conn.get("status"))
            conn.run()
    except flow_api.DependencyFailedError as exc:
        this.set_output(failed=str(exc), failed_id=exc.execution_id, failed_status=exc.status)
        return this.error("the connection failed")
    if inputs.get("ask"):
        this.message(subject="Carry on?", message="The connection has run.", request="anything")
    status, output = conn.load("status", "output_value")
    this.set_output(connection=conn.id, status=status, result=output)
    return this.success("connected")
