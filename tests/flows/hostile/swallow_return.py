"""``except BaseException`` swallows the suspension and the handler returns at once."""


def handler(system, this, inputs):
    try:
        this.sleep(0.2)
    except BaseException:  # noqa: BLE001  (the point of this flow)
        return
