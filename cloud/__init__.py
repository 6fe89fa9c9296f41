"""Ruang cloud: MQTT ingestion into SQL and a time-series store, plus the HTTP API.

`cloud.app.create_app` builds the FastAPI application; `launch.webapp.serve` runs
it under uvicorn in the caller's event loop.
"""
