"""Starts itself twice without waiting, at every level: 2, 4, 8, ... executions."""


def handler(system, this, inputs):
    this.flow("bomb", wait=False)
    this.flow("bomb", wait=False)
