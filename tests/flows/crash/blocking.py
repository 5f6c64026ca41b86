"""A step whose body blocks until a release file appears: the crash tests SIGKILL the
worker while it runs, then release it for the next worker."""

import os
import pathlib
import time


def bump(path):
    p = pathlib.Path(path)
    n = int(p.read_text()) + 1 if p.exists() else 1
    tmp = p.with_name(p.name + ".tmp")  # atomic: a test reading the count never sees an empty file
    tmp.write_text(str(n))
    os.replace(tmp, p)
    return n


def block(started, release):
    attempt = bump(started)
    give_up = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < give_up:
        time.sleep(0.01)
    return {"attempt": attempt}


def handler(system, this, inputs):
    before = this.step(bump, inputs["before"])
    result = this.step(block, inputs["started"], inputs["release"])
    this.set_output(before=before, result=result)
    return this.success("released")
