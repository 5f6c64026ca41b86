import time

import flow_api


def measure():
    start = time.perf_counter()
    time.sleep(0.01)
    return time.perf_counter() - start


def handler(system, this, inputs):
    began = this.now()
    this.log(f"started at {began}")
    spent = this.step(measure)
    stamp = this.step(time.time)
    local = time.localtime(began)
    this.set_output(spent=spent, stamp=stamp, hour=local.tm_hour)
    return this.success("timed")
