import random

import flow_api


def handler(system, this, inputs):
    servers = list(inputs["servers"])
    rng = random.Random(this.random())
    pick = rng.choice(servers)
    rng.shuffle(servers)
    jitter = this.random()
    fixed = random.Random(42).randint(1000, 9999)
    this.flow("deploy", server=pick, order=servers, jitter=jitter, code=fixed)
    return this.success("deployed")
