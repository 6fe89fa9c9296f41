"""Ruang: smart-office IoT edge platform for shared government buildings.

This package holds what every role shares: the command line, the edge<->cloud
MQTT contract, backoff and logging helpers, the demo orchestration and the
real-server helpers used by tests and benchmarks.
"""

__version__ = "0.1.0"
