"""Create a connection PAUSED, wait for a person, then run it: a worker other than the
one that created it may well be the one that runs it. ``inline_secret_env`` names an
environment variable whose value is sent inline as the ``X-Api-Key`` header."""

import os

import flow_api


def handler(system, this, inputs):
    params = dict(inputs.get("params", {}))
    if inputs.get("inline_secret_env"):
        params["headers"] = {"X-Api-Key": os.environ[inputs["inline_secret_env"]]}
    conn = this.connect(inputs["connector"], run=False, **params)
    this.message(subject="Run the connection?", message="It is ready.", request="anything")
    try:
        conn.run()
    except flow_api.DependencyFailedError as exc:
        this.set_output(failed=str(exc))
        return this.error("the connection failed")
    this.set_output(result=conn.get("output_value"))
    return this.success("connected")
