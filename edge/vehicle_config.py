"""Settings of a vehicle node (a shuttle or a pool car): its vehicle and door readers.

The node of a vehicle has a GNSS receiver (the `gps:` list of the edge settings,
whose `vehicle` is this vehicle), one or more badge readers at the door that
speak the desk-unit protocol (docs/desk-unit-protocol.md; opened by device path,
pty or socket:// URL like every port), and optionally BLE taps: a BLE scanner
whose `desk` is a reader id here taps at that reader. Taps are decided by
edge/boarding.py (shuttle) or edge/poolcar.py (pool car); see docs/transport.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ruang import contract


class DoorReaderConfig(BaseModel):
    """A badge reader at the vehicle's door (desk-unit protocol, with LED and buzzer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: contract.DeviceId = Field(description="reader id, named in boarding/poolcar events")
    port: str = Field(
        min_length=1, description="serial port: /dev/ttyUSB0, a pty path or socket://host:port"
    )
    baudrate: int = Field(default=115200, gt=0)


class VehicleConfig(BaseModel):
    """The `vehicle:` section of a vehicle node's edge settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vehicle: contract.DeviceId
    kind: Literal["shuttle", "poolcar"] = "shuttle"
    readers: list[DoorReaderConfig] = Field(default_factory=list, max_length=8)
    # Which `gps:` receiver places the vehicle; None: the one for this vehicle (or the first).
    gps_device: contract.DeviceId | None = None
    # A fix older than this gives no stop (tunnel, depot): the boarding's stop stays unknown.
    fix_max_age_s: float = Field(default=60.0, gt=0)
    stop_radius_m: float = Field(default=80.0, gt=0, le=1000)
    boarding_early_s: float = Field(default=600.0, ge=0, le=7200)
    boarding_late_s: float = Field(default=1800.0, ge=0, le=14_400)
    pickup_early_s: float = Field(default=900.0, ge=0, le=7200)

    @model_validator(mode="after")
    def _unique_readers(self) -> VehicleConfig:
        ids = [r.id for r in self.readers]
        if len(ids) != len(set(ids)):
            raise ValueError("door reader ids must be unique")
        return self
