"""A bare ``except:`` around a waiting ``this.flow`` swallows the suspension of the wait."""


def handler(system, this, inputs):
    try:
        this.flow("hostile_child")
    except:  # noqa: E722, S110
        pass
    return this.success("should not get here")
