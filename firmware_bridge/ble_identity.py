"""Anti-cloning badge identifiers: BLE resolvable private addresses and Ruang EIDs.

A fixed iBeacon or Eddystone-UID can be copied by anyone with a phone. The two
schemes here make a badge's on-air identifier change over time so that only
someone holding the enrolled secret can tell who it is:

- Resolvable private address (Bluetooth Core spec, Vol 3 Part H §2.2.2 and
  Vol 6 Part B §1.3.2.2): the 48-bit address is ``prand (24 bits, top two bits
  0b01) || hash (24 bits)`` with ``hash = ah(IRK, prand)``, and ``ah`` the low
  24 bits of AES-128(IRK, 13 zero bytes || prand). Resolving tries each
  enrolled IRK; the caller caches results because the address is stable for
  minutes at a time.
- Ruang EID, in the spirit of Eddystone-EID but with HMAC instead of AES so
  the badge firmware needs only SHA-256:
  ``eid = HMAC-SHA256(secret, b"ruang-eid" || u32be(unix_time >> k))[:8]``.
  `EidResolver` accepts the current window and its neighbours (clock skew
  between badge and node) and nothing else, so a recorded EID replayed later
  than one window after it expired does not resolve.

Pure functions of their inputs: the caller passes the time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

IRK_SIZE = 16
EID_SIZE = 8
EID_LABEL = b"ruang-eid"
DEFAULT_ROTATION_EXPONENT = 9  # 2**9 = 512 s windows
RPA_TAG = 0b01


# --- resolvable private addresses -----------------------------------------------------------


def ah(irk: bytes, prand: int) -> int:
    """The spec's random address hash function: low 24 bits of AES-128(irk, pad || prand)."""
    if len(irk) != IRK_SIZE:
        raise ValueError("IRK must be 16 bytes")
    # ECB over a single block is exactly the spec's e() function; no chaining is involved.
    encryptor = Cipher(algorithms.AES(irk), modes.ECB()).encryptor()
    block = encryptor.update(bytes(13) + (prand & 0xFFFFFF).to_bytes(3, "big"))
    encryptor.finalize()
    return int.from_bytes(block[13:16], "big")


def parse_address(address: str) -> int | None:
    """``AA:BB:CC:DD:EE:FF`` (most significant octet first) -> 48-bit int; None if not one."""
    parts = address.split(":")
    if len(parts) != 6 or any(len(p) != 2 for p in parts):
        return None
    try:
        return int("".join(parts), 16)
    except ValueError:
        return None


def format_address(value: int) -> str:
    return ":".join(f"{b:02X}" for b in value.to_bytes(6, "big"))


def is_rpa(address: str) -> bool:
    value = parse_address(address)
    return value is not None and (value >> 46) == RPA_TAG


def rpa_matches(irk: bytes, address: str) -> bool:
    """True when `address` is a resolvable private address generated from `irk`."""
    value = parse_address(address)
    if value is None or (value >> 46) != RPA_TAG:
        return False
    prand, hash_ = value >> 24, value & 0xFFFFFF
    return hmac.compare_digest(ah(irk, prand).to_bytes(3, "big"), hash_.to_bytes(3, "big"))


def generate_rpa(irk: bytes, prand: int | None = None) -> str:
    """A new resolvable private address for `irk` (what a badge does every rotation)."""
    if prand is None:
        while True:
            # 22 random bits; the spec forbids the random part being all zeros or all ones.
            random_bits = secrets.randbits(22)
            if random_bits not in (0, (1 << 22) - 1):
                break
        prand = (RPA_TAG << 22) | random_bits
    if prand >> 22 != RPA_TAG:
        raise ValueError("prand must have its top two bits set to 0b01")
    return format_address((prand << 24) | ah(irk, prand))


def resolve_rpa(address: str, irks: Mapping[str, bytes]) -> str | None:
    """The enrolled id whose IRK generated `address`, or None."""
    return RpaResolver(irks).resolve(address)


class RpaResolver:
    """Resolves RPAs against many enrolled IRKs, keeping one AES context per IRK.

    Building an AES context costs more than one block encryption, and an office
    is full of phones with their own RPAs that each get tried against every IRK.
    """

    def __init__(self, irks: Mapping[str, bytes]) -> None:
        self._contexts: list[tuple[str, CipherContext]] = []
        for badge_id, irk in irks.items():
            if len(irk) != IRK_SIZE:
                raise ValueError(f"IRK of {badge_id!r} must be 16 bytes")
            self._contexts.append((badge_id, Cipher(algorithms.AES(irk), modes.ECB()).encryptor()))

    def __len__(self) -> int:
        return len(self._contexts)

    def resolve(self, address: str) -> str | None:
        value = parse_address(address)
        if value is None or (value >> 46) != RPA_TAG:
            return None
        prand_block = bytes(13) + (value >> 24).to_bytes(3, "big")
        expected = (value & 0xFFFFFF).to_bytes(3, "big")
        for badge_id, context in self._contexts:
            # ECB keeps no state between blocks, so one context serves every lookup.
            block: bytes = context.update(prand_block)
            if hmac.compare_digest(block[13:16], expected):
                return badge_id
        return None


# --- Ruang time-windowed ephemeral ids ------------------------------------------------------


def eid_window(unix_time: float, k: int = DEFAULT_ROTATION_EXPONENT) -> int:
    return (int(unix_time) >> k) & 0xFFFFFFFF


def eid_for_window(secret: bytes, window: int) -> bytes:
    digest = hmac.new(secret, EID_LABEL + struct.pack(">I", window & 0xFFFFFFFF), hashlib.sha256)
    return digest.digest()[:EID_SIZE]


def compute_eid(secret: bytes, unix_time: float, k: int = DEFAULT_ROTATION_EXPONENT) -> bytes:
    """The EID a badge with `secret` broadcasts at `unix_time`."""
    return eid_for_window(secret, eid_window(unix_time, k))


@dataclass(frozen=True, slots=True)
class EidMatch:
    badge_id: str
    window_offset: int  # -1, 0 or +1 relative to the resolver's clock


class EidResolver:
    """Resolves EIDs of enrolled badges for the current window ±1.

    Keeps one precomputed table (eid -> badge) per window for the three windows
    around "now", so resolving is a dict lookup; tables are built once per
    window as time moves on, and older ones are dropped, which is what makes an
    EID recorded earlier stop resolving.
    """

    def __init__(
        self, secrets_by_badge: Mapping[str, bytes], k: int = DEFAULT_ROTATION_EXPONENT
    ) -> None:
        if not 0 <= k <= 15:
            raise ValueError("rotation exponent k must be 0..15 (Eddystone-EID's range)")
        self.k = k
        self._secrets = dict(secrets_by_badge)
        self._tables: dict[int, dict[bytes, str]] = {}

    def enroll(self, badge_id: str, secret: bytes) -> None:
        self._secrets[badge_id] = secret
        self._tables.clear()

    def _table(self, window: int) -> dict[bytes, str]:
        table = self._tables.get(window)
        if table is None:
            table = {eid_for_window(s, window): b for b, s in self._secrets.items()}
            self._tables[window] = table
        return table

    def resolve(self, eid: bytes, unix_time: float) -> EidMatch | None:
        """The badge that broadcast `eid`, if it is valid within one window of `unix_time`."""
        now = eid_window(unix_time, self.k)
        wanted = {now - 1, now, now + 1}
        for stale in [w for w in self._tables if w not in wanted]:
            del self._tables[stale]
        for offset in (0, -1, 1):
            badge = self._table(now + offset).get(eid)
            if badge is not None:
                return EidMatch(badge, offset)
        return None
