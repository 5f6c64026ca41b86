"""Counts its activations and its step runs in files: the handler runs 4 times
(start, after each sleep, after the napping child), each step body once."""

import pathlib


def bump(path):
    p = pathlib.Path(path)
    n = int(p.read_text()) + 1 if p.exists() else 1
    p.write_text(str(n))
    return n


def handler(system, this, inputs):
    bump(inputs["handler_counter"])
    first = this.step(bump, inputs["step_counter"])
    this.sleep(0.1)
    second = this.step(bump, inputs["other_step_counter"])
    child = this.flow("helper", x=1, nap=0.2)
    this.sleep(0.1)
    this.set_output(first=first, second=second, child=child.get("output_value"))
