"""Benchmarks of the hot read paths next to the raw SQL floor (see bench/README.md and docs/performance.md)."""
