"""Benchmarks: heron against the reference servers it replaces, same loads, one run."""
