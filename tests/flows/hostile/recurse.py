"""Starts itself and waits for it, with no end condition."""


def handler(system, this, inputs):
    this.flow("recurse")
