"""Edge nodes: enrolment, broker credentials, desired config, snapshots and health."""
