"""Many small steps and sleeps, for the soak test that kills workers at random points."""

import os
import pathlib


def bump(path):
    """Count a run of the step in ``path``; atomic, so that a kill mid-write leaves no empty file."""
    p = pathlib.Path(path)
    n = int(p.read_text()) + 1 if p.exists() else 1
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(str(n))
    os.replace(tmp, p)
    return n


def handler(system, this, inputs):
    total = 0
    for i in range(inputs["steps"]):
        this.step(bump, f"{inputs['counters']}/step{i}")  # may run twice if killed before its record
        total += i
        if i % 3 == 0:
            this.sleep(0.05)
    this.set_output(total=total)
    return this.success("all steps")
