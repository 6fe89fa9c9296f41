"""Door access control run from the cloud (docs/access-control.md).

Access groups granted to doors with weekly schedules and holidays, versioned
(`service.py`); resolved per node into the door rights of its signed snapshot
(`rights.py`); the nodes' access decisions verified against their audit hash
chain on arrival (`chain.py`) and searchable in the access log (`log.py`).
Site scoping of the API is elsewhere: cloud/people/access.py.
"""
