"""Building GTFS zips for tests: the sample schedule's files, edited as text."""

from __future__ import annotations

import io
import zipfile

from cloud.transport.gtfs_export import SAMPLE_GTFS


def sample_files() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SAMPLE_GTFS.glob("*.txt"))}


def make_zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(name, body.encode("utf-8") if isinstance(body, str) else body)
    return buffer.getvalue()


def edited(**changes: str | bytes | None) -> bytes:
    """The sample as a zip with files replaced (name with `.` as `_`) or left out (None)."""
    files: dict[str, str | bytes] = dict(sample_files())
    for key, body in changes.items():
        name = key.removesuffix("_txt") + ".txt"
        if body is None:
            files.pop(name, None)
        else:
            files[name] = body
    return make_zip(files)


def line_of(text: str, needle: str) -> int:
    """The 1-based line of `text` holding `needle` first."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)
