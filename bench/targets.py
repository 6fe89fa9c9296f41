"""Targets the figures are held to: `make bench` prints each beside its figure with PASS/FAIL.

A suite calls `check(figures, key, ">=", bound)` (or "<") on its figures dict;
that adds `<key>_target` and `<key>_verdict`, which `python -m bench` prints on
the figure's line and counts: any FAIL makes the run exit non-zero. Budgets are
ratios measured side by side in one run, or CPU time and memory of a process,
so a busy machine moves them less than wall-clock rates.
"""

from __future__ import annotations

from typing import Any


def check(figures: dict[str, Any], key: str, op: str, bound: float, unit: str = "") -> bool:
    """Records whether figures[key] meets `op bound` (op: ">=" or "<"); returns it."""
    value = float(figures[key])
    if op == ">=":
        passed = value >= bound
    elif op == "<":
        passed = value < bound
    else:
        raise ValueError(f"unknown comparison {op!r}")
    figures[f"{key}_target"] = f"{op} {bound:,g}{unit}"
    figures[f"{key}_verdict"] = "PASS" if passed else "FAIL"
    return passed


def failures(figures: dict[str, Any]) -> list[str]:
    """The figures of a suite that missed their target."""
    out = [k.removesuffix("_verdict") for k, v in figures.items() if k.endswith("_verdict")]
    out = [k for k in out if figures[f"{k}_verdict"] == "FAIL"]
    if figures.get("verdict") == "FAIL":
        out.append("verdict")
    return out
