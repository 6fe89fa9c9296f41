"""Web pages for facility managers, served by the cloud service from `static/`.

For now one live page: the desks of every floor with their state, polling the
cloud API. Bahasa Indonesia first, English on a switch; no asset comes from the
internet.
"""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
