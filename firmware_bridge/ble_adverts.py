"""Sans-io decoder and encoder of the BLE advertisements Ruang badges send.

Input is what any scanner stack hands over after parsing the AD structures:
the manufacturer data keyed by company id (without the id bytes), the service
data keyed by UUID string, the advertiser's address and its RSSI. Output is a
frozen `Advert` carrying the frames recognised in it:

- Apple iBeacon (company 0x004C, type 0x02, length 0x15): proximity UUID,
  major, minor, measured power at 1 m,
- Eddystone (service 0xFEAA): UID (0x00), unencrypted TLM (0x20, version 0)
  and EID (0x30) frames,
- the Ruang badge button indication (company 0xFFFF, reserved by the Bluetooth
  SIG for testing, so it can never clash with a real vendor): ``[0x52, flags,
  counter]`` where flags bit 0 = button pressed and `counter` increases on
  every press (scanner stacks cache the last manufacturer data, so a press is
  recognised by a counter change, not by the flag alone).

Malformed frames become `Rejected(reason)` values inside the advert; nothing
here raises on input, does I/O or reads a clock. Data that is simply not ours
(other Apple adverts, Eddystone-URL, other vendors) is ignored silently so
that busy offices do not inflate the rejected counter.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

APPLE_COMPANY_ID = 0x004C
IBEACON_TYPE = 0x02
IBEACON_LENGTH = 0x15
RUANG_COMPANY_ID = 0xFFFF
RUANG_MAGIC = 0x52
RUANG_FLAG_BUTTON = 0x01

EDDYSTONE_UUID16 = 0xFEAA
EDDYSTONE_SERVICE_UUID = "0000feaa-0000-1000-8000-00805f9b34fb"
EDDYSTONE_UID = 0x00
EDDYSTONE_URL = 0x10
EDDYSTONE_TLM = 0x20
EDDYSTONE_EID = 0x30

_BT_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"
# TLM temperature value meaning "not supported" (8.8 fixed point -128.0).
_TLM_NO_TEMPERATURE = -0x8000

_F = TypeVar("_F")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A frame that claimed to be one of ours but did not parse; `reason` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class IBeacon:
    uuid: bytes  # 16 bytes, as transmitted (big-endian)
    major: int
    minor: int
    measured_power: int  # dBm at 1 m, signed


@dataclass(frozen=True, slots=True)
class EddystoneUid:
    tx_power: int  # dBm at 0 m, signed
    namespace: bytes  # 10 bytes
    instance: bytes  # 6 bytes


@dataclass(frozen=True, slots=True)
class EddystoneTlm:
    battery_mv: int  # 0 = not reported
    temperature_c: float | None  # None = not reported
    adv_count: int
    uptime_ds: int  # tenths of a second since boot

    @property
    def uptime_s(self) -> float:
        return self.uptime_ds / 10


@dataclass(frozen=True, slots=True)
class EddystoneEid:
    tx_power: int
    eid: bytes  # 8 bytes


@dataclass(frozen=True, slots=True)
class RuangButton:
    flags: int
    counter: int

    @property
    def pressed(self) -> bool:
        return bool(self.flags & RUANG_FLAG_BUTTON)


Frame = IBeacon | EddystoneUid | EddystoneTlm | EddystoneEid | RuangButton


@dataclass(frozen=True, slots=True)
class Advert:
    """One received advertisement, decoded."""

    address: str
    rssi: int
    frames: tuple[Frame, ...] = ()
    rejected: tuple[Rejected, ...] = ()

    def first(self, kind: type[_F]) -> _F | None:
        for frame in self.frames:
            if isinstance(frame, kind):
                return frame
        return None


def _s8(value: int) -> int:
    return value - 256 if value >= 128 else value


def _u8(value: int, what: str) -> int:
    if not -128 <= value <= 127:
        raise ValueError(f"{what} {value} outside int8")
    return value & 0xFF


# --- decoders -------------------------------------------------------------------------------


def decode_ibeacon(payload: bytes) -> IBeacon | Rejected | None:
    """Apple manufacturer data (company id already removed); None if it is not an iBeacon."""
    if len(payload) < 2 or payload[0] != IBEACON_TYPE:
        return None  # another Apple advert (phones, watches): not ours
    if payload[1] != IBEACON_LENGTH or len(payload) != 2 + IBEACON_LENGTH:
        return Rejected(f"ibeacon: length {payload[1]:#04x} with {len(payload)} bytes")
    major, minor = struct.unpack_from(">HH", payload, 18)
    return IBeacon(bytes(payload[2:18]), major, minor, _s8(payload[22]))


def decode_eddystone(data: bytes) -> EddystoneUid | EddystoneTlm | EddystoneEid | Rejected | None:
    """Eddystone service data; None for frame kinds Ruang does not use (URL)."""
    if not data:
        return Rejected("eddystone: empty service data")
    kind = data[0]
    if kind == EDDYSTONE_UID:
        # The spec's two trailing RFU bytes are often left out by beacons: accept both.
        if len(data) not in (18, 20):
            return Rejected(f"eddystone uid: {len(data)} bytes")
        return EddystoneUid(_s8(data[1]), bytes(data[2:12]), bytes(data[12:18]))
    if kind == EDDYSTONE_TLM:
        if len(data) != 14:
            return Rejected(f"eddystone tlm: {len(data)} bytes")
        if data[1] != 0:
            return Rejected(f"eddystone tlm: version {data[1]} (encrypted TLM unsupported)")
        vbatt, temp_raw, adv_count, uptime = struct.unpack_from(">HhII", data, 2)
        temperature = None if temp_raw == _TLM_NO_TEMPERATURE else temp_raw / 256
        return EddystoneTlm(vbatt, temperature, adv_count, uptime)
    if kind == EDDYSTONE_EID:
        if len(data) != 10:
            return Rejected(f"eddystone eid: {len(data)} bytes")
        return EddystoneEid(_s8(data[1]), bytes(data[2:10]))
    if kind == EDDYSTONE_URL:
        return None
    return Rejected(f"eddystone: unknown frame type {kind:#04x}")


def decode_ruang(payload: bytes) -> RuangButton | Rejected:
    """Ruang manufacturer data (company 0xFFFF, id removed)."""
    if len(payload) != 3 or payload[0] != RUANG_MAGIC:
        return Rejected(f"ruang: {payload[:4].hex()} ({len(payload)} bytes) is not a button frame")
    return RuangButton(payload[1], payload[2])


def is_eddystone_uuid(uuid: str) -> bool:
    """True for the Eddystone service UUID in 16-bit ("feaa") or 128-bit form."""
    u = uuid.lower()
    if u.startswith("0x"):
        u = u[2:]
    return u in ("feaa", "0000feaa") or u == EDDYSTONE_SERVICE_UUID


def decode_advert(
    address: str,
    rssi: int,
    manufacturer_data: Mapping[int, bytes],
    service_data: Mapping[str, bytes],
) -> Advert:
    """Decodes everything Ruang understands in one advertisement; never raises on data."""
    frames: list[Frame] = []
    rejected: list[Rejected] = []

    def keep(result: Frame | Rejected | None) -> None:
        if isinstance(result, Rejected):
            rejected.append(result)
        elif result is not None:
            frames.append(result)

    apple = manufacturer_data.get(APPLE_COMPANY_ID)
    if apple is not None:
        keep(decode_ibeacon(bytes(apple)))
    ruang = manufacturer_data.get(RUANG_COMPANY_ID)
    if ruang is not None:
        keep(decode_ruang(bytes(ruang)))
    for uuid, data in service_data.items():
        if is_eddystone_uuid(uuid):
            keep(decode_eddystone(bytes(data)))
    return Advert(address, rssi, tuple(frames), tuple(rejected))


# --- encoders (simulator, tests) ------------------------------------------------------------


def encode_ibeacon(frame: IBeacon) -> bytes:
    """Apple manufacturer data without the company id (bleak's `manufacturer_data[0x004C]`)."""
    if len(frame.uuid) != 16:
        raise ValueError("ibeacon uuid must be 16 bytes")
    return (
        bytes((IBEACON_TYPE, IBEACON_LENGTH))
        + frame.uuid
        + struct.pack(">HHB", frame.major, frame.minor, _u8(frame.measured_power, "power"))
    )


def encode_eddystone(frame: EddystoneUid | EddystoneTlm | EddystoneEid) -> bytes:
    """Eddystone service data (bleak's `service_data[EDDYSTONE_SERVICE_UUID]`)."""
    if isinstance(frame, EddystoneUid):
        if len(frame.namespace) != 10 or len(frame.instance) != 6:
            raise ValueError("eddystone uid: namespace 10 bytes, instance 6 bytes")
        tx = _u8(frame.tx_power, "tx power")
        return bytes((EDDYSTONE_UID, tx)) + frame.namespace + frame.instance + b"\x00\x00"
    if isinstance(frame, EddystoneTlm):
        if frame.temperature_c is None:
            temp = _TLM_NO_TEMPERATURE
        else:
            temp = round(frame.temperature_c * 256)
            if not -0x8000 < temp <= 0x7FFF:
                raise ValueError(f"temperature {frame.temperature_c} outside 8.8 fixed point")
        return bytes((EDDYSTONE_TLM, 0)) + struct.pack(
            ">HhII", frame.battery_mv, temp, frame.adv_count, frame.uptime_ds
        )
    if len(frame.eid) != 8:
        raise ValueError("eddystone eid must be 8 bytes")
    return bytes((EDDYSTONE_EID, _u8(frame.tx_power, "tx power"))) + frame.eid


def encode_ruang(frame: RuangButton) -> bytes:
    """Ruang manufacturer data without the company id."""
    return bytes((RUANG_MAGIC, frame.flags & 0xFF, frame.counter & 0xFF))
