"""Benchmark flow: wait for an answer to a message, then record how long the wake took.

The answer carries ``sent``, a ``time.time()`` taken by the answering process just before
its durable write; ``latency`` ends at this handler's next line after the wait.
"""
import os
import time


def handler(system, this, inputs):
    answer = this.message("wake", body={"sent": {"type": "number", "required": True}})
    woke = time.time()
    this.set_output(latency=woke - answer["sent"], woke_pid=os.getpid())
