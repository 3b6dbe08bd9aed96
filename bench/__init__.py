"""Benchmarks of the webhooks against a bare Flask floor; see bench/README.md."""
