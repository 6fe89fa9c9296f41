"""Time-series output: line-protocol formatting and the sinks that write it."""
