"""Benchmarks: each hot path against a peer and against the physical limit, in one run."""
