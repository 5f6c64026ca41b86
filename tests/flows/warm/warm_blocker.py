"""Keeps its worker's slot busy (in a recorded step) until a flag file exists."""
import os
import time

import flow_api


def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
    this.step(hold, inputs["flag"])


def hold(flag: str) -> None:
    while not os.path.exists(flag):
        time.sleep(0.01)
