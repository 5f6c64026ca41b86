"""Steps with a visible side effect: each run of a step bumps a counter file, so a test
can prove that a replay or a debug session ran none of them."""
from pathlib import Path

import flow_api  # noqa: F401  (flow scripts import flow_api, as the seed's do)


def bump(path):
    counter = Path(path)
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


def fetch_price(path, item):
    bump(path)
    return {"apple": 41.5, "pear": 7.25}[item]


def handler(system, this, inputs):
    path = inputs["counter"]
    price = this.step(fetch_price, path, inputs["item"])
    this.log("price", price)
    total = price * inputs["qty"]
    system.setting("last_total").save(value=total)
    if inputs.get("fail"):
        raise ValueError(f"cannot ship {inputs['qty']} {inputs['item']}")
    this.sleep(inputs.get("pause", 0))
    this.set_output(total=total)
    return this.success(f"total {total}")
