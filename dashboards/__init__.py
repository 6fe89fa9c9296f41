"""The web front of Ruang, served by the cloud service on the API's own origin.

Server-rendered page shells (Jinja2, one template per view) that check the
signed-in user's role before anything is sent, and small plain-JS modules that
call the cloud API with the session cookie. No build step and no asset from the
internet: everything is in `templates/` and `static/`. Bahasa Indonesia is the
default language, English a switch away (`locales/`).
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
LOCALES_DIR = PACKAGE_DIR / "locales"
