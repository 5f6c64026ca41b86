"""A step, a durable sleep, then a step whose result is ``pad`` bytes: the full-disk tests
fill the disk while this one sleeps, so its next commit meets a full disk. Like many real
flows it handles step failures, here by appending to the ``alerts`` file: a full disk is
the engine's trouble, so the handler must never see it."""

import pathlib


def padding(size):
    return "p" * size


def handler(system, this, inputs):
    this.step(padding, 10)
    this.sleep(inputs["sleep"])
    try:
        size = len(this.step(padding, inputs["pad"]))
    except Exception as exc:
        with pathlib.Path(inputs["alerts"]).open("a") as alerts:
            alerts.write(f"{type(exc).__name__}: {exc}\n")
        raise
    this.set_output(size=size)
    return this.success("padded")
