import time
from time import monotonic as mono
from time import perf_counter

import flow_api

STARTED = time.time()  # <- found


def handler(system, this, inputs):
    began = time.time()  # <- found
    this.log(f"started at {began}")
    tick = mono()  # <- found
    spent = perf_counter() - tick  # <- found
    nanos = time.time_ns()  # <- found
    this.set_output(spent=spent, nanos=nanos, started=STARTED)
    return this.success("timed")
