"""Connect through a stored connector whose Authorization header is '${env:API_TOKEN}',
adding literal secrets inline (read from the worker's environment, so that not even the
flow's source holds them), then a call that fails and is retried."""

import os

import flow_api


def handler(system, this, inputs):
    conn = this.connect(
        inputs["connector"],
        name="secret call",
        headers={"X-Api-Key": os.environ["INLINE_KEY"]},
        params={"token": os.environ["INLINE_TOKEN"]},
    )
    this.log("called", conn.get("output_value")["status_code"])
    failed = this.connect(
        inputs["connector"], url=inputs["fail_url"], retries=1, retry_backoff=0.01, return_when="ALL_ENDED"
    )
    this.set_output(status=conn.get("output_value")["status_code"], failed=failed.get("status"))
    return this.success("done")
