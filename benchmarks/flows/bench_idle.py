"""Benchmark flow: wait, without a timeout, for an answer that never comes."""


def handler(system, this, inputs):
    this.message("idle", request="never answered")
