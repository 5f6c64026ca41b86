"""Benchmark flow: start a child, wait for it, and record how long the wake took.

``latency`` runs from the child's last line (a ``time.time()`` just before its final
durable write) to this handler's next line after the wait. With ``hold`` > 0 the parent
keeps its worker's only slot busy for that long (inside a recorded step, so a replay
skips it), so another worker process picks the child up. The pids show which process
parked the parent, ran the child and resumed the parent.
"""
import os
import time


def hold(seconds):
    time.sleep(seconds)
    return os.getpid()


def handler(system, this, inputs):
    child = this.flow("bench_wake_child", wait=False, settle=inputs["settle"], jitter=inputs["jitter"])
    parked_pid = this.step(hold, inputs["hold"])
    this.wait_for(child)
    woke = time.time()
    out = child.get("output_value")
    this.set_output(latency=woke - out["sent"], parked_pid=parked_pid, child_pid=out["pid"],
                    woke_pid=os.getpid())
