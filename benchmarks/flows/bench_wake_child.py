"""Benchmark flow: wait ``settle`` plus a random 0..``jitter`` seconds (not durably: this
activation is never replayed before it ends), then end, its last line stamping the time."""
import os
import random
import time


def handler(system, this, inputs):
    time.sleep(inputs["settle"] + random.uniform(0, inputs["jitter"]))
    this.set_output(pid=os.getpid(), sent=time.time())  # the end commit follows this line
