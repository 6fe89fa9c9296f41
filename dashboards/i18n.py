"""Interface strings in Bahasa Indonesia (default) and English.

Strings live in `locales/<lang>/<view>.json`, one file per view so views can be
worked on apart; all files of a language are merged into one flat table. Keys
are dotted (`map.legend.free`); values may hold `{name}` placeholders.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from fastapi import Request

from dashboards import LOCALES_DIR

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"
LANG_COOKIE = "ruang_lang"


@cache
def table(lang: str) -> dict[str, str]:
    """Every string of `lang`, merged from its per-view files (read once)."""
    merged: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / lang).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, value in data.items():
            if key in merged:
                raise ValueError(f"{path}: key {key!r} is defined twice in {lang}")
            merged[key] = value
    return merged


def pick_language(request: Request) -> str:
    """?lang= wins (a shared link), then the user's cookie, then Bahasa Indonesia."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


class Translator:
    """`t("key", name=...)` for templates; a missing key shows itself, not a blank."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.strings = table(lang)

    def __call__(self, key: str, **values: Any) -> str:
        text = self.strings.get(key)
        if text is None:
            return f"[{key}]"
        return text.format(**values) if values else text
