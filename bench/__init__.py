"""Benchmark of the scrobbling engine against a model of the seed (see scripts/bench)."""
