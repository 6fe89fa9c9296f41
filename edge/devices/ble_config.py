"""Configuration of BLE badge scanning: the scanners of a node and the badges it tracks.

The `ble:` section of the edge settings (edge/settings.py): which adapters scan,
where each scanner sits (zone, desk), the RSSI thresholds with their hysteresis,
and every enrolled badge with the identity its adverts carry (iBeacon,
Eddystone-UID, or rotating Eddystone-EID / resolvable private address keys).
See docs/devices/ble.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from firmware_bridge.ble_identity import (
    DEFAULT_ROTATION_EXPONENT,
)
from ruang import contract

# Badge ids end up both in `ble:<id>` badge refs and as DeviceHealth device ids.
BADGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$"
_HEX = r"^[0-9A-Fa-f]+$"


# --- configuration --------------------------------------------------------------------------


class IBeaconIdentity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    uuid: str = Field(description="proximity UUID, 32 hex digits, dashes allowed")
    major: int = Field(ge=0, le=0xFFFF)
    minor: int = Field(ge=0, le=0xFFFF)

    @field_validator("uuid")
    @classmethod
    def _uuid_hex(cls, value: str) -> str:
        compact = value.replace("-", "").lower()
        if len(compact) != 32 or any(c not in "0123456789abcdef" for c in compact):
            raise ValueError("iBeacon uuid must be 16 bytes of hex")
        return compact

    def key(self) -> tuple[bytes, int, int]:
        return bytes.fromhex(self.uuid), self.major, self.minor


class EddystoneUidIdentity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(pattern=_HEX, min_length=20, max_length=20)
    instance: str = Field(pattern=_HEX, min_length=12, max_length=12)

    def key(self) -> tuple[bytes, bytes]:
        return bytes.fromhex(self.namespace), bytes.fromhex(self.instance)


class BleBadgeConfig(BaseModel):
    """One enrolled badge and the identity material that recognises it (at least one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=BADGE_ID_PATTERN)
    ibeacon: IBeaconIdentity | None = None
    eddystone_uid: EddystoneUidIdentity | None = None
    irk_hex: str | None = Field(
        default=None,
        pattern=_HEX,
        min_length=32,
        max_length=32,
        description="identity resolving key, most significant octet first",
    )
    eid_secret_hex: str | None = Field(default=None, pattern=_HEX, min_length=32, max_length=128)

    @model_validator(mode="after")
    def _has_identity(self) -> BleBadgeConfig:
        if not (self.ibeacon or self.eddystone_uid or self.irk_hex or self.eid_secret_hex):
            raise ValueError(
                f"badge {self.id!r} has no identity (ibeacon, eddystone_uid, irk_hex…)"
            )
        return self


class BleScannerConfig(BaseModel):
    """One scanner: a local adapter (`adapter`) or, with adapter=None, readings fed in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=contract.ID_PATTERN)
    zone: str = Field(pattern=contract.ID_PATTERN)
    desk: str | None = Field(default=None, pattern=contract.ID_PATTERN)
    adapter: str | None = Field(default="hci0", pattern=r"^hci[0-9]{1,2}$")
    calibration_db: float = Field(default=0.0, ge=-40, le=40)
    tap_threshold_dbm: float = Field(default=-45.0, ge=-100, le=0)
    # Per-scanner override of the zone entry threshold, e.g. a scanner above a stairwell.
    enter_dbm: float | None = Field(default=None, ge=-110, le=0)
    exit_dbm: float | None = Field(default=None, ge=-110, le=0)


class BleConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    device_id: str = Field(default="ble", pattern=contract.ID_PATTERN)
    scanners: list[BleScannerConfig] = Field(default_factory=list)
    badges: list[BleBadgeConfig] = Field(default_factory=list)
    dwell_s: float = Field(default=10.0, ge=0)
    stale_s: float = Field(default=15.0, gt=0)
    silence_s: float = Field(default=60.0, gt=0)
    enter_dbm: float = Field(default=-70.0, ge=-110, le=0)
    exit_dbm: float = Field(default=-78.0, ge=-110, le=0)
    alpha: float = Field(default=0.3, gt=0, le=1)
    confidence_temperature_db: float = Field(default=3.0, gt=0)
    tap_adverts: int = Field(default=2, ge=1, le=20)
    tap_debounce_s: float = Field(default=3.0, ge=0)
    eid_rotation_exponent: int = Field(default=DEFAULT_ROTATION_EXPONENT, ge=0, le=15)
    no_adapter_retry_s: float = Field(default=60.0, gt=0)
    badge_health_interval_s: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> BleConfig:
        if self.exit_dbm >= self.enter_dbm:
            raise ValueError("exit_dbm must be below enter_dbm (hysteresis)")
        for scanner in self.scanners:
            enter = scanner.enter_dbm if scanner.enter_dbm is not None else self.enter_dbm
            leave = scanner.exit_dbm if scanner.exit_dbm is not None else self.exit_dbm
            if leave >= enter:
                raise ValueError(f"scanner {scanner.id!r}: exit_dbm must be below enter_dbm")
        for what, values in (
            ("scanner id", [s.id for s in self.scanners]),
            ("adapter", [s.adapter for s in self.scanners if s.adapter is not None]),
            ("badge id", [b.id for b in self.badges]),
        ):
            seen: set[str] = set()
            for value in values:
                if value in seen:
                    raise ValueError(f"{what} {value!r} is listed twice")
                seen.add(value)
        return self
