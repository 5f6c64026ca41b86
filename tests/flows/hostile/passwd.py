"""Asks for a child flow named like a path out of the flows folder."""


def handler(system, this, inputs):
    this.flow("../etc/passwd")
