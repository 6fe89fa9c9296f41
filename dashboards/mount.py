"""Mounting the dashboards on the cloud's FastAPI app.

The composition layer (launch/webapp.py) calls `mount`; the cloud never imports
the dashboards, so the API runs without them and the layering stays one-way.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dashboards import STATIC_DIR
from dashboards import admin as dashboard_admin
from dashboards import login as dashboard_login
from dashboards import pages as dashboard_pages
from dashboards.web import install_page_errors


def mount(app: FastAPI) -> None:
    """Page shells on the same origin as the API they call (the session cookie needs
    no CORS), their assets under /static, and HTML error pages for browsers."""
    install_page_errors(app)
    app.include_router(dashboard_login.router)
    app.include_router(dashboard_pages.router)
    app.include_router(dashboard_admin.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
