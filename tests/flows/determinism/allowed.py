import os
import time

import flow_api


def handler(system, this, inputs):
    debug = os.environ.get("FLOW_DEBUG")  # engine: allow-nondeterminism (same on every worker)
    began = time.monotonic()  # noqa  engine: allow-nondeterminism
    this.log(f"debug={debug} began={began}")
    for tag in {"a", "b"}:  # engine: allow-nondeterminism
        this.log(tag)
    return this.success("allowed")
