"""The cloud's MQTT side: the broker session (session.py) and what the rest of the
cloud may ask of it, sending commands to nodes (commands.py)."""
