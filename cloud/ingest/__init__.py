"""MQTT ingestion: the session, decoding, batching, applying to SQL and acknowledging."""
