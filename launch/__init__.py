"""The composition layer: the `ruang` CLI, the demo, dev servers and the embedded broker.

It sits above edge, cloud and dashboards and is the only runtime code that wires them together."""
