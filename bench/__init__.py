"""Benchmarks behind `make bench`: each module has a run() returning named figures."""
