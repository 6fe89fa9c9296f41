"""Throughput of the BLE badge pipeline: decode, resolve, filter and fuse adverts per second.

`run()` returns figures and prints nothing; `make bench` formats them. The load
is 200 enrolled badges (a mix of iBeacon, Eddystone-UID, EID and RPA) heard by
3 scanners, fed through `BleScannerDriver.feed` with a virtual clock, so the
figure is the CPU cost of the edge's per-advert work without the radio.
"""

from __future__ import annotations

import random
import time

from edge.devices.ble import BleScannerDriver
from edge.devices.ble_config import (
    BleBadgeConfig,
    BleConfig,
    BleScannerConfig,
    EddystoneUidIdentity,
    IBeaconIdentity,
)
from firmware_bridge.ble_adverts import (
    APPLE_COMPANY_ID,
    EDDYSTONE_SERVICE_UUID,
    EddystoneEid,
    EddystoneUid,
    IBeacon,
    decode_advert,
    encode_eddystone,
    encode_ibeacon,
)
from firmware_bridge.ble_identity import compute_eid, generate_rpa

WALL0 = 1_700_000_000.0
UUID = bytes.fromhex("e2c56db5dffb48d2b060d0f5a71096e0")


def _setup(
    badges: int, scanners: int
) -> tuple[BleConfig, list[tuple[str, dict[int, bytes], dict[str, bytes]]]]:
    rng = random.Random(1)
    configs: list[BleBadgeConfig] = []
    adverts: list[tuple[str, dict[int, bytes], dict[str, bytes]]] = []
    for i in range(badges):
        badge_id = f"b{i:03d}"
        address = f"C0:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}"
        kind = i % 4
        if kind == 0:
            configs.append(
                BleBadgeConfig(
                    id=badge_id, ibeacon=IBeaconIdentity(uuid=UUID.hex(), major=1, minor=i)
                )
            )
            adverts.append(
                (address, {APPLE_COMPANY_ID: encode_ibeacon(IBeacon(UUID, 1, i, -59))}, {})
            )
        elif kind == 1:
            ns, inst = b"RuangBLE\x00\x01", i.to_bytes(6, "big")
            configs.append(
                BleBadgeConfig(
                    id=badge_id,
                    eddystone_uid=EddystoneUidIdentity(namespace=ns.hex(), instance=inst.hex()),
                )
            )
            adverts.append(
                (
                    address,
                    {},
                    {EDDYSTONE_SERVICE_UUID: encode_eddystone(EddystoneUid(-20, ns, inst))},
                )
            )
        elif kind == 2:
            secret = rng.randbytes(16)
            configs.append(BleBadgeConfig(id=badge_id, eid_secret_hex=secret.hex()))
            eid = EddystoneEid(-20, compute_eid(secret, WALL0))
            adverts.append((address, {}, {EDDYSTONE_SERVICE_UUID: encode_eddystone(eid)}))
        else:
            irk = rng.randbytes(16)
            configs.append(BleBadgeConfig(id=badge_id, irk_hex=irk.hex()))
            adverts.append((generate_rpa(irk), {}, {}))
    config = BleConfig(
        enabled=True,
        scanners=[
            BleScannerConfig(id=f"s{j}", zone=f"z{j}", desk=f"d{j}", adapter=None)
            for j in range(scanners)
        ],
        badges=configs,
        dwell_s=10,
    )
    return config, adverts


def run(badges: int = 200, scanners: int = 3, rounds: int = 50) -> dict[str, float]:
    """Measure adverts/s through decode + resolve + filter + fusion; keys are stable names."""
    config, adverts = _setup(badges, scanners)
    now = [0.0]
    published: list[object] = []
    driver = BleScannerDriver(
        config, "bench", published.append, clock=lambda: now[0], wall_clock=lambda: WALL0 + now[0]
    )
    rng = random.Random(2)
    rssi_table = [[rng.randint(-95, -50) for _ in range(scanners)] for _ in range(badges)]
    scanner_ids = [f"s{j}" for j in range(scanners)]
    count = 0
    start = time.perf_counter()
    for r in range(rounds):
        now[0] = float(r)
        for b, (address, manufacturer, service) in enumerate(adverts):
            for j, scanner_id in enumerate(scanner_ids):
                rssi = rssi_table[b][j] + rng.randint(-3, 3)
                driver.feed(scanner_id, decode_advert(address, rssi, manufacturer, service))
                count += 1
        driver.fusion.tick(now[0])
    elapsed = time.perf_counter() - start
    return {
        "adverts_per_s": count / elapsed,
        "badges": float(badges),
        "scanners": float(scanners),
        "presence_messages": float(len(published)),
    }
