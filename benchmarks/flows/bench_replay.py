"""Benchmark flow: ``k`` recorded steps, then a durable timer of ``delay`` seconds.

Marks on every pass: ``entered`` at the top, ``replayed`` right after the K-th step (on a
recovered activation, right after the K-th step replays), ``resumed`` past the timer.
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
    for i in range(inputs["k"]):
        this.step(trivial, i)
    mark(this, "replayed")
    this.sleep(inputs["delay"])
    mark(this, "resumed")
