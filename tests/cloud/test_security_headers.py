"""Every response carries the browser security headers; the dashboards' policy is 'self' only."""

from __future__ import annotations

import re

import pytest

from cloud.security_headers import CSP
from dashboards import TEMPLATES_DIR

from .conftest import RunningCloud


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/kiosk",
        "/api/v1/desks",
        "/api/v1/public/availability",
        "/static/js/common.js",
        "/openapi.json",
        "/api/v1/nope",
    ],
)
async def test_pages_api_and_assets_carry_the_security_headers(
    cloud: RunningCloud, path: str
) -> None:
    r = await cloud.http.get(path)
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_policy_allows_only_this_origin_and_no_framing() -> None:
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in CSP and "http" not in CSP


def test_templates_have_no_inline_script_style_or_handler() -> None:
    """What the policy would block: the browser tests (tests/dashboards) prove the rest."""
    for template in TEMPLATES_DIR.glob("*.html"):
        html = template.read_text(encoding="utf-8")
        for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
            assert "src=" in attrs or 'type="application/json"' in attrs, template.name
            assert "src=" not in attrs or not body.strip(), template.name
        assert "<style" not in html and " style=" not in html, template.name
        assert not re.search(r"\son[a-z]+=", html), template.name
