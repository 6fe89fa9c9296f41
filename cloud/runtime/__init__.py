"""How the cloud runs as processes: roles, the signals between them, start-up order.

`cloud/app.py` asks `cloud/runtime/roles.py` what a process of a role runs; the
parts are built by `cloud/runtime/components.py` and talk across processes over
the bus of `cloud/runtime/bus.py` (PostgreSQL LISTEN/NOTIFY in `cloud/runtime/pgbus.py`).
"""
