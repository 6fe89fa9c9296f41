"""Running counts every stream decoder keeps: what it rejected, and why.

Each codec's `DecoderStats` adds its own counts of what it accepted (frames,
sentences, reports) to this base.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import Self


@dataclass
class RejectCounts:
    """Rejected inputs in total and by reason (the codec's short reason codes)."""

    rejected: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.by_reason[reason] += 1

    def snapshot(self) -> Self:
        """A copy that later decoding does not change."""
        return copy.deepcopy(self)
