"""Run a step that takes a while (until a file appears), so a server can be stopped while it runs."""

import os
import time


def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.01)
    return "saw it"


def handler(system, this, inputs):
    this.log("step starts")
    seen = this.step(wait_for, inputs["path"])
    return this.success(seen)
