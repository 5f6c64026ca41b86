"""Benchmark flow: a trivial child that ends at once."""


def handler(system, this, inputs):
    return None
