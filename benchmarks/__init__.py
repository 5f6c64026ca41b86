"""Benchmarks: the raw-SQLite limit, the engine's shapes and peers, one table per shape."""
