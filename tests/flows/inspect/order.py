"""An order: the flow the inspect tests change in five ways (see tests/test_replay_diff.py)."""
import flow_api  # noqa: F401  (flow scripts import flow_api, as the seed's do)


def fetch_price(item):
    return 41.5


def reserve(item, qty):
    return f"R-{item}-{qty}"


def notify(text):
    return True


def handler(system, this, inputs):
    this.log("ordering", inputs["item"])
    price = this.step(fetch_price, inputs["item"])
    reservation = this.step(reserve, inputs["item"], inputs["qty"])
    this.set_output(price=price, reservation=reservation)
    this.sleep(inputs.get("pause", 0))
    this.step(notify, f"reserved {reservation}")
    return this.success(f"ordered {inputs['qty']} at {price}")
