"""Ends at once, saying which worker process ran it."""
import os


def handler(system, this, inputs):
    this.set_output(pid=os.getpid())
