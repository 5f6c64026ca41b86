"""Swallows every suspension, and the error that follows it, a few times over."""


def handler(system, this, inputs):
    for _ in range(3):
        try:
            this.sleep(0.05)
        except:  # noqa: E722, S110
            pass
    return this.success("should not get here")
