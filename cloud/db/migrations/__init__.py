"""Alembic migrations of the cloud schema (run by `cloud.db.engine.migrate`)."""
