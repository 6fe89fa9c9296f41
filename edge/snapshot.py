"""The node's signed copy of its desks, today's bookings and the badge allow-list.

The cloud pushes a `contract.Snapshot` (retained) whenever bookings or badges
change. The node verifies the signature with one of the cloud's public keys it
trusts (two during a key rotation: docs/operations.md), ignores a
version that is not newer than the one it holds, keeps the last good one on
disk so it decides correctly after a restart with the uplink still down, and
indexes it for microsecond look-ups at tap time.
"""

from __future__ import annotations

import base64
import bisect
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ruang import contract
from ruang.site_defaults import EARLY_CHECKIN_S
from ruang.snapshot_keys import key_id, load_public_keys

log = logging.getLogger(__name__)

# A booking may be checked into from this long before it starts.


class SnapshotError(ValueError):
    """A snapshot the node refuses; the message says why, `reason` names the kind (counted)."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SnapshotView:
    """An indexed, read-only snapshot body."""

    body: contract.SnapshotBody
    badges: dict[str, contract.SnapshotBadge] = field(default_factory=dict)
    desks: dict[str, contract.SnapshotDesk] = field(default_factory=dict)
    # Per desk, bookings sorted by start, and their starts for bisect.
    bookings: dict[str, list[contract.SnapshotBooking]] = field(default_factory=dict)
    starts: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, body: contract.SnapshotBody) -> SnapshotView:
        bookings: dict[str, list[contract.SnapshotBooking]] = {}
        for booking in body.bookings:
            bookings.setdefault(booking.desk, []).append(booking)
        for items in bookings.values():
            items.sort(key=lambda b: b.start)
        return cls(
            body=body,
            badges={b.badge: b for b in body.badges},
            desks={d.desk: d for d in body.desks},
            bookings=bookings,
            starts={desk: [b.start for b in items] for desk, items in bookings.items()},
        )

    @property
    def version(self) -> int:
        return self.body.version

    def person_for(self, badge: str, now: float) -> str | None:
        entry = self.badges.get(badge)
        if entry is None or (entry.valid_until is not None and now > entry.valid_until):
            return None
        if entry.valid_from is not None and now < entry.valid_from:
            return None  # a guest before their visit window
        return entry.person

    def booking_at(self, desk: str, now: float) -> contract.SnapshotBooking | None:
        """The booking that holds `desk` at `now` (early check-in window included)."""
        items = self.bookings.get(desk)
        if not items:
            return None
        i = bisect.bisect_right(self.starts[desk], now)
        # The booking already under way wins over the next one's early window.
        if i > 0 and now < items[i - 1].end:
            return items[i - 1]
        if i < len(items) and items[i].start - EARLY_CHECKIN_S <= now:
            return items[i]
        return None

    def next_booking_start(self, desk: str, now: float) -> float | None:
        starts = self.starts.get(desk)
        if not starts:
            return None
        i = bisect.bisect_right(starts, now)
        return starts[i] if i < len(starts) else None


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SnapshotError("the snapshot verification key must be an EC (P-256) public key")
    return key


def load_trusted_keys(paths: Iterable[Path | None]) -> list[ec.EllipticCurvePublicKey]:
    """Every public key in the given PEM files (each may hold several); OSError/ValueError."""
    keys: list[ec.EllipticCurvePublicKey] = []
    for path in paths:
        if path is not None:
            try:
                keys.extend(load_public_keys(path.read_bytes()))
            except ValueError as exc:
                raise SnapshotError(f"{path}: {exc}") from None
    return keys


def verify_signature(snapshot: contract.Snapshot, key: ec.EllipticCurvePublicKey) -> None:
    try:
        padded = snapshot.signature + "=" * (-len(snapshot.signature) % 4)
        signature = base64.urlsafe_b64decode(padded)
        key.verify(signature, contract.canonical_json(snapshot.body), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as exc:
        raise SnapshotError(
            f"bad signature on snapshot v{snapshot.body.version}", "bad_signature"
        ) from exc


TrustedKeys = ec.EllipticCurvePublicKey | Sequence[ec.EllipticCurvePublicKey] | None


class SnapshotStore:
    """The node's snapshot: verified against any of its trusted keys (several during a
    key rotation, ruang/snapshot_keys.py), refusals counted by reason."""

    def __init__(self, path: Path, public_keys: TrustedKeys) -> None:
        self._path = path
        if public_keys is None:
            keys: list[ec.EllipticCurvePublicKey] = []
        elif isinstance(public_keys, ec.EllipticCurvePublicKey):
            keys = [public_keys]
        else:
            keys = list(public_keys)
        self._keys = {key_id(key): key for key in keys}
        self.current: SnapshotView | None = None
        self.rejected = 0
        self.refusals: Counter[str] = Counter()
        self.last_error: str | None = None

    @property
    def trusted_key_ids(self) -> list[str]:
        return list(self._keys)

    def load(self) -> None:
        """Restores the last good snapshot from disk; a damaged file is reported and ignored."""
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return
        try:
            snapshot = contract.Snapshot.model_validate_json(raw)
            self._check(snapshot)
        except (ValueError, SnapshotError) as exc:
            self.last_error = f"stored snapshot ignored: {exc}"
            log.warning("%s", self.last_error)
            return
        self.current = SnapshotView.of(snapshot.body)

    def _check(self, snapshot: contract.Snapshot) -> None:
        if not self._keys:
            raise SnapshotError(
                "no snapshot verification key configured (snapshot_public_key)", "no_key"
            )
        named = self._keys.get(snapshot.key_id)
        if named is not None:
            verify_signature(snapshot, named)
            return
        # The key id is outside the signature, so it only picks the key to try first;
        # a snapshot naming no trusted key is still accepted if one of them verifies it.
        for key in self._keys.values():
            try:
                verify_signature(snapshot, key)
            except SnapshotError:
                continue
            return
        # Short: the message becomes a health alarm (at most 128 characters in the contract).
        raise SnapshotError(
            f"bad signature on snapshot v{snapshot.body.version}: key {snapshot.key_id[:16]} "
            f"is not one of the {len(self._keys)} trusted",
            "untrusted_key",
        )

    def apply(self, snapshot: contract.Snapshot) -> SnapshotView:
        """Verifies and installs a newer snapshot; raises SnapshotError otherwise."""
        try:
            self._check(snapshot)
            if self.current is not None and snapshot.body.version <= self.current.version:
                raise SnapshotError(
                    f"snapshot v{snapshot.body.version} is not newer than v{self.current.version}",
                    "not_newer",
                )
        except SnapshotError as exc:
            self.rejected += 1
            self.refusals[exc.reason] += 1
            self.last_error = str(exc)
            raise
        view = SnapshotView.of(snapshot.body)
        self._persist(snapshot)
        self.current = view
        return view

    def _persist(self, snapshot: contract.Snapshot) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(contract.encode(snapshot))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self._path)
