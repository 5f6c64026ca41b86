"""End once the parent waits for this child, saying which thread ran it."""
import threading
import time


def handler(system, this, inputs):
    parent = system.execution(inputs["parent"])
    while parent.get("status") != "WAITING":  # so that this end, not the parent's wait, wakes it
        time.sleep(0.002)
    this.set_output(thread=threading.get_ident())
