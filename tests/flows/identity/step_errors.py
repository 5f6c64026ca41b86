"""Errors raised by steps, caught by the handler, replayed after a durable wait (issue
10, item 3): each must be the same class with the same args and attributes."""
import json

import flow_api  # noqa: F401


class QuotaError(Exception):
    """An error with its own __init__: ``code`` is an attribute, ``detail`` its only arg."""

    def __init__(self, code, detail):
        super().__init__(detail)
        self.code = code


class Unrecordable(Exception):
    pass


def over_quota():
    raise QuotaError(429, {"retry_after": 5, "tags": ["a", "b"]})


def read_missing(path):
    with open(path) as f:
        return f.read()


def parse():
    return json.loads("{")


def holds_a_lock():
    error = Unrecordable("cannot say")
    error.lock = object()
    raise error


def seen(exc):
    return {"type": type(exc).__name__, "args": list(exc.args), "attributes": dict(vars(exc))}


def handler(system, this, inputs):
    caught = []
    try:
        this.step(over_quota)
    except QuotaError as exc:
        caught.append(seen(exc) | {"code": exc.code})
    try:
        this.step(read_missing, inputs["missing"])
    except FileNotFoundError as exc:
        caught.append(seen(exc) | {"errno": exc.errno, "filename": exc.filename, "str": str(exc)})
    try:
        this.step(parse)
    except json.JSONDecodeError as exc:
        caught.append(seen(exc) | {"str": str(exc)})
    try:
        this.step(holds_a_lock)
    except Exception as exc:
        caught.append({"type": type(exc).__name__, "str": str(exc)})
    this.log(json.dumps(caught))  # recorded by the first run: what the handler saw live
    this.message("go on?", wait=True)
    this.set_output(caught=caught)  # computed again by the last run, from the recorded failures
