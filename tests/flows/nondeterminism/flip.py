"""Nondeterministic without a code change: it branches on a file the engine does not record."""

import os


def left():
    return "left"


def right():
    return "right"


def handler(system, this, inputs):
    if os.path.exists(inputs["flag"]):  # not recorded: a replay may take the other branch
        this.step(left)  # asked (once the flag file exists)
    else:
        this.step(right)  # recorded (no flag file on the first run)
    this.sleep(inputs["sleep"])
    return this.success("flipped nothing")
