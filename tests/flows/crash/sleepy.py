"""A step, a durable sleep, another step: the crash tests SIGKILL the worker during the sleep."""

import os
import pathlib


def bump(path):
    """A file-backed counter: how often this step body really ran, across processes."""
    p = pathlib.Path(path)
    n = int(p.read_text()) + 1 if p.exists() else 1
    tmp = p.with_name(p.name + ".tmp")  # atomic: a test reading the count never sees an empty file
    tmp.write_text(str(n))
    os.replace(tmp, p)
    return n


def handler(system, this, inputs):
    before = this.step(bump, inputs["before"])
    this.sleep(inputs["sleep"])
    after = this.step(bump, inputs["after"])
    this.set_output(before=before, after=after)
    return this.success("slept through it")
