import random
from random import choice, shuffle

import flow_api


def handler(system, this, inputs):
    servers = list(inputs["servers"])
    pick = choice(servers)  # <- found
    shuffle(servers)  # <- found
    jitter = random.random()  # <- found
    rng = random.Random()  # <- found
    code = rng.randint(1000, 9999)
    this.flow("deploy", server=pick, order=servers, jitter=jitter, code=code)
    return this.success("deployed")
