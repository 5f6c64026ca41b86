"""Benchmark flow: ``steps`` sequential trivial ``this.step`` calls, then ``logs`` ``this.log`` calls.

Marks (``$BENCH_MARKS``, see ``benchmarks/engine_proc.py``): ``entered`` at the handler's
top, ``stepped`` after the steps, ``logged`` after the logs and one more step, whose commit
carries every pending log event, so the log figure includes writing them.
"""
import os
import time


def mark(this, name):
    path = os.environ.get("BENCH_MARKS")
    if path:
        with open(path, "a") as marks:
            marks.write(f"{this.id} {name} {time.time()!r} {time.process_time()!r}\n")


def trivial(i):
    return i


def handler(system, this, inputs):
    mark(this, "entered")
    for i in range(inputs["steps"]):
        this.step(trivial, i)
    mark(this, "stepped")
    logs = inputs.get("logs", 0)
    if logs:
        for i in range(logs):
            this.log("line")
        this.step(trivial, -1)
        mark(this, "logged")
