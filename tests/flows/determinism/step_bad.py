import random
import threading
import time

import flow_api


def stamp():
    return time.time()  # <- found


def roll():
    return random.random()  # <- found


def handler(system, this, inputs):
    recorded = this.step(stamp)
    again = stamp()
    threading.Thread(target=roll).start()  # <- found
    this.set_output(recorded=recorded, again=again)
    return this.success("stamped")
