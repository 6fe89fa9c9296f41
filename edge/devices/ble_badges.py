"""Which enrolled badge an advert comes from, and what its telemetry says.

`BadgeRegistry` maps a decoded advert (firmware_bridge.ble_adverts) to an
enrolled badge id: fixed identities (iBeacon, Eddystone-UID) by lookup,
rotating ones (Eddystone-EID, resolvable private addresses) by the resolvers
in firmware_bridge.ble_identity, with a small cache so a known address is not
resolved again on every advert.
"""

from __future__ import annotations

from collections.abc import Iterable

from firmware_bridge.ble_adverts import (
    Advert,
    EddystoneEid,
    EddystoneUid,
    IBeacon,
)
from firmware_bridge.ble_identity import (
    DEFAULT_ROTATION_EXPONENT,
    EidResolver,
    RpaResolver,
    is_rpa,
)

from .ble_config import BleBadgeConfig

# --- identity -------------------------------------------------------------------------------


class BadgeRegistry:
    """Enrolled badges; turns an advert into a badge id, or None for strangers."""

    def __init__(
        self,
        badges: Iterable[BleBadgeConfig],
        *,
        eid_rotation_exponent: int = DEFAULT_ROTATION_EXPONENT,
        rpa_cache_size: int = 4096,
    ) -> None:
        self._ibeacon: dict[tuple[bytes, int, int], str] = {}
        self._uid: dict[tuple[bytes, bytes], str] = {}
        irks: dict[str, bytes] = {}
        eid_secrets: dict[str, bytes] = {}
        for badge in badges:
            if badge.ibeacon is not None:
                self._ibeacon[badge.ibeacon.key()] = badge.id
            if badge.eddystone_uid is not None:
                self._uid[badge.eddystone_uid.key()] = badge.id
            if badge.irk_hex is not None:
                irks[badge.id] = bytes.fromhex(badge.irk_hex)
            if badge.eid_secret_hex is not None:
                eid_secrets[badge.id] = bytes.fromhex(badge.eid_secret_hex)
        self.ids = frozenset([*self._ibeacon.values(), *self._uid.values(), *irks, *eid_secrets])
        self._rpa = RpaResolver(irks)
        # Eddystone interleaves TLM frames (and a badge its button frame) with its identity
        # frame from the same address: remember the address of the last identified advert.
        self._by_address: dict[str, str] = {}
        self._cache_size = rpa_cache_size
        self._eid = EidResolver(eid_secrets, eid_rotation_exponent)
        # An RPA stays the same for ~15 min and phones bring their own: cache both outcomes.
        self._rpa_cache: dict[str, str | None] = {}

    def resolve(self, advert: Advert, unix_time: float) -> str | None:
        for frame in advert.frames:
            if isinstance(frame, IBeacon):
                found = self._ibeacon.get((frame.uuid, frame.major, frame.minor))
            elif isinstance(frame, EddystoneUid):
                found = self._uid.get((frame.namespace, frame.instance))
            elif isinstance(frame, EddystoneEid):
                match = self._eid.resolve(frame.eid, unix_time)
                found = match.badge_id if match else None
            else:
                continue
            if found is not None:
                self._remember(advert.address, found)
                return found
        if len(self._rpa) and is_rpa(advert.address):
            found = self._resolve_rpa(advert.address)
            if found is not None:
                return found
        if advert.frames:
            return self._by_address.get(advert.address)
        return None

    def _remember(self, address: str, badge: str) -> None:
        cache = self._by_address
        if address not in cache and len(cache) >= self._cache_size:
            del cache[next(iter(cache))]  # oldest first (dict order)
        cache[address] = badge

    def _resolve_rpa(self, address: str) -> str | None:
        if address in self._rpa_cache:
            return self._rpa_cache[address]
        found = self._rpa.resolve(address)
        if len(self._rpa_cache) >= self._cache_size:
            del self._rpa_cache[next(iter(self._rpa_cache))]  # oldest first (dict order)
        self._rpa_cache[address] = found
        return found


def battery_pct(millivolts: int) -> int | None:
    """Coin cell level: 3.0 V -> 100 %, 2.0 V -> 0 %, linear, clamped; 0 mV = not reported."""
    if millivolts <= 0:
        return None
    return max(0, min(100, round((millivolts - 2000) / 10)))
