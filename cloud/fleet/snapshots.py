"""Signed snapshots: what each edge node needs to decide badge taps and door reads on its own.

For every node that serves desks or controls doors whose rights the cloud manages
(docs/access-control.md) the cloud builds a `contract.SnapshotBody` from SQL (the
node's desks, the active bookings around today, the badge allow-list, the site's
grace and away rules, the node's doors and each badge's windows at them), signs it
with its snapshot key (ECDSA P-256 / SHA-256 over `contract.canonical_json`) and
publishes it retained on the node's `commands/snapshot` topic. The node verifies
it with the public key installed at enrolment (`GET /api/v1/snapshot-key`) and
keeps deciding from it while offline.

A node a vehicle is bound to gets the vehicle sections instead of desks (its
trips, seats, car bookings: cloud/transport/vehicle_snapshot.py).

`SnapshotPublisher` re-publishes a node's snapshot when something it contains
changed (bookings, badges, check-ins, auto-release), debounced so a burst of
changes makes one snapshot, and every `snapshot_refresh_s` anyway so the
validity window keeps moving. Vehicle nodes are also compared every
`VEHICLE_CHECK_S` with what they were last sent: a reservation or car booking
changed by anyone (API, no-show release, a boarding) republishes theirs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.access.rights import NodeDoorRights, configured_doors, door_nodes, node_door_rights
from cloud.bookings.site_rules import DESK_SITE, SiteRules, end_of_local_day, rules_of
from cloud.db.job_errors import log_failed_pass
from cloud.db.models import ACTIVE_BOOKING_STATUSES
from cloud.db.tables import ACCESS_DOORS, BOOKINGS, DESKS, NODE_CONFIGS, SITES
from cloud.errors import DomainError, NotFound
from cloud.keys import ec_key, extra_public_pems
from cloud.mqtt.commands import CommandSender, NotConnected
from cloud.people.auth import load_or_create_dev_key
from cloud.people.roster import allowlist
from cloud.settings import CloudSettings
from cloud.transport.vehicle_snapshot import (
    VehicleSections,
    nodes_of_vehicles,
    vehicle_badges,
    vehicle_sections,
)
from cloud.visitors.credentials import visitor_rights
from ruang import contract
from ruang.snapshot_keys import key_id, public_pem
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)


# Bookings that ended this recently still ship: a late check-out must find them.
LOOKBACK = timedelta(hours=1)
# ... and those starting just after midnight, for early check-ins around then.
LOOKAHEAD = timedelta(hours=1)
# A node keeps trusting a snapshot this long after the end of its day (outages).
VALID_AFTER_DAY = timedelta(hours=6)
AWAY_WARNING_S = 300
# The contract's floor for away_s (SnapshotBody.away_s >= 60).
MIN_AWAY_S = 60
# How often vehicle nodes' sections are compared with what they were last sent.
VEHICLE_CHECK_S = 5.0
# Under a sustained rush (bookings on every floor at 08:00) each pass rebuilds most
# nodes, and at the configured debounce the passes took a quarter of the API process's
# CPU (docs/performance.md). The wait before a pass therefore grows with the last
# pass's duration, so that passes take at most about this share of the event loop,
# and never beyond MAX_DEBOUNCE_S: a change still reaches its node within seconds.
PASS_SHARE = 0.2
MAX_DEBOUNCE_S = 2.0


def debounce_s(configured_s: float, last_pass_s: float) -> float:
    """The wait before the next pass: the configured debounce, stretched after a long
    pass so that passes take at most PASS_SHARE of the time, capped at MAX_DEBOUNCE_S
    (or the configured debounce, where that is longer)."""
    stretched = last_pass_s * (1 - PASS_SHARE) / PASS_SHARE
    return max(configured_s, min(MAX_DEBOUNCE_S, stretched))


# --- the signing key ----------------------------------------------------------------


class SnapshotSigner:
    """The cloud's snapshot key: signs bodies, exposes the public half for nodes."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, extra_public_pems: Iterable[bytes] = ()
    ) -> None:
        self._key = key
        self.public_pem = public_pem(key.public_key())
        self.key_id = key_id(key.public_key())
        # During a rotation nodes are told to trust these besides (docs/operations.md).
        self.extra_public_pems = tuple(extra_public_pems)

    @property
    def trusted_bundle(self) -> bytes:
        """The signing key's public PEM, then each extra one: what a node should trust now."""
        extras = [pem for pem in self.extra_public_pems if pem != self.public_pem]
        return b"".join([self.public_pem, *extras])

    @classmethod
    def from_path(cls, path: Path) -> SnapshotSigner:
        # Same file handling as the dev auth key: created 0600 the first time.
        return cls(load_or_create_dev_key(path))

    @classmethod
    def from_settings(cls, settings: CloudSettings) -> SnapshotSigner:
        """The configured key (created only in development) and the rotation's extra keys."""
        return cls(ec_key(settings, "snapshot_key_path"), extra_public_pems(settings))

    def sign(self, node: str, body: contract.SnapshotBody) -> contract.Snapshot:
        signature = self._key.sign(contract.canonical_json(body), ec.ECDSA(hashes.SHA256()))
        return contract.Snapshot(
            node=node,
            key_id=self.key_id,
            body=body,
            signature=base64.urlsafe_b64encode(signature).decode().rstrip("="),
        )


# --- building a body ----------------------------------------------------------------


def next_version(previous: int | None, now: float) -> int:
    """Monotonic across restarts: milliseconds since the epoch, or one more than before."""
    return max((previous or 0) + 1, int(now * 1000))


async def nodes_with_desks(conn: AsyncConnection) -> list[str]:
    """Every node that gets a snapshot: those serving desks, those controlling managed doors,
    and those riding in a vehicle."""
    rows = await conn.scalars(select(DESKS.c.node_id).distinct().order_by(DESKS.c.node_id))
    desk_nodes = {n for n in rows if n is not None} | set(await door_nodes(conn))
    return sorted(desk_nodes | set(await nodes_of_vehicles(conn)))


async def _node_doors(conn: AsyncConnection, node: str) -> set[str]:
    config = await conn.scalar(select(NODE_CONFIGS.c.config).where(NODE_CONFIGS.c.node_id == node))
    doors = configured_doors(config)
    return set(
        await conn.scalars(
            select(ACCESS_DOORS.c.id).where(
                or_(ACCESS_DOORS.c.id.in_(doors), ACCESS_DOORS.c.node_id == node)
            )
        )
    )


def sections_digest(sections: VehicleSections | None) -> str:
    """What a vehicle node's snapshot says about its vehicle, as a comparable digest."""
    if sections is None:
        return ""
    data = {
        "vehicle": sections.vehicle.model_dump(mode="json"),
        "trips": [t.model_dump(mode="json") for t in sections.trips],
        "seats": [s.model_dump(mode="json") for s in sections.seats],
        "cars": [c.model_dump(mode="json") for c in sections.car_bookings],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


async def _vehicle_body(
    conn: AsyncConnection, now: datetime, version: int, sections: VehicleSections
) -> contract.SnapshotBody:
    day_end = end_of_local_day(now, SiteRules().tz)
    badges = await vehicle_badges(conn, sections.people, now)
    return contract.SnapshotBody(
        version=version,
        issued_at=now.timestamp(),
        valid_until=(day_end + VALID_AFTER_DAY).timestamp(),
        badges=tuple(_badges(_BadgeRow(*b) for b in badges)),
        vehicle=sections.vehicle,
        trips=sections.trips,
        seats=sections.seats,
        car_bookings=sections.car_bookings,
    )


class _BadgeRow:
    __slots__ = ("kind", "person_id", "uid", "valid_until")

    def __init__(self, uid: str, kind: str, person_id: str, valid_until: datetime | None) -> None:
        self.uid, self.kind, self.person_id, self.valid_until = uid, kind, person_id, valid_until


async def build_body(
    conn: AsyncConnection, node: str, now: datetime, version: int
) -> contract.SnapshotBody:
    """The snapshot body of `node` at `now`; NotFound if it serves no desks and no vehicle."""
    desk_rows = (
        await conn.execute(
            DESK_SITE.add_columns(DESKS.c.mode, DESKS.c.assigned_person_id)
            .where(DESKS.c.node_id == node)
            .order_by(DESKS.c.id)
        )
    ).all()
    doors = await _node_doors(conn, node)
    if not desk_rows and not doors:
        sections = await vehicle_sections(conn, node, now)
        if sections is None:
            raise NotFound(f"node {node!r} serves no desks and controls no managed door",
                           title="Node not found")  # fmt: skip
        return await _vehicle_body(conn, now, version, sections)
    # A node serves one floor, hence one site: the first desk with a site decides.
    rules = next((rules_of(r) for r in desk_rows if r.timezone is not None), None)
    if rules is None:
        # A door-only node: its doors' site gives the time zone of its day.
        tz = await conn.scalar(
            select(SITES.c.timezone)
            .join(ACCESS_DOORS, ACCESS_DOORS.c.site_id == SITES.c.id)
            .where(ACCESS_DOORS.c.id.in_(doors))
            .limit(1)
        )
        rules = SiteRules(tz) if tz else SiteRules()
    day_end = end_of_local_day(now, rules.tz)
    valid_until = day_end + VALID_AFTER_DAY
    desk_ids = [r.id for r in desk_rows]
    booking_rows = await conn.execute(
        select(
            BOOKINGS.c.id,
            BOOKINGS.c.desk_id,
            BOOKINGS.c.person_id,
            BOOKINGS.c.starts_at,
            BOOKINGS.c.ends_at,
            BOOKINGS.c.status,
        )
        .where(
            BOOKINGS.c.desk_id.in_(desk_ids),
            BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES),
            BOOKINGS.c.ends_at > now - LOOKBACK,
            BOOKINGS.c.starts_at < day_end + LOOKAHEAD,
        )
        .order_by(BOOKINGS.c.desk_id, BOOKINGS.c.starts_at)
    )
    allowed = (await allowlist(conn, node, now)).badges if desk_rows else []
    door_rights = await node_door_rights(conn, doors, now, valid_until)
    # Checked-in guests' temporary cards, with their visit window (cloud/visitors).
    door_rights.badges.update(await visitor_rights(conn, doors, now, valid_until))
    away_s = max(MIN_AWAY_S, rules.away_release_min * 60)
    return contract.SnapshotBody(
        version=version,
        issued_at=now.timestamp(),
        valid_until=valid_until.timestamp(),
        grace_s=rules.checkin_grace_min * 60,
        away_s=away_s,
        # Five minutes' warning, or half the away time where that is shorter.
        away_warning_s=min(AWAY_WARNING_S, away_s // 2),
        desks=tuple(
            contract.SnapshotDesk(desk=r.id, mode=r.mode, assigned_person=r.assigned_person_id)
            for r in desk_rows
        ),
        bookings=tuple(
            contract.SnapshotBooking(
                id=str(b.id),
                desk=b.desk_id,
                person=b.person_id,
                start=b.starts_at.timestamp(),
                end=b.ends_at.timestamp(),
                status=b.status,
            )
            for b in booking_rows
        ),
        badges=_with_door_rights(tuple(_badges(allowed)), door_rights),
        doors=door_rights.doors,
    )


def _with_door_rights(
    desk_badges: tuple[contract.SnapshotBadge, ...], rights: NodeDoorRights
) -> tuple[contract.SnapshotBadge, ...]:
    """The desk allow-list with each badge's door rights added, and the door-only badges."""
    out: dict[str, contract.SnapshotBadge] = {b.badge: b for b in desk_badges}
    for ref, r in rights.badges.items():
        try:
            base = out.get(ref) or contract.SnapshotBadge(badge=ref, person=r.person)
            out[ref] = contract.SnapshotBadge.model_validate(
                base.model_dump()
                | {"valid_from": r.valid_from, "valid_until": r.valid_until,
                   "doors": [{"door": d, "windows": w} for d, w in r.doors.items()]}
            )  # fmt: skip
        except ValueError:
            log.warning("door rights of badge %r cannot be expressed in a snapshot; left out", ref)
            out.pop(ref, None)
    return tuple(out[k] for k in sorted(out))


def _badges(entries: Iterable[object]) -> Iterable[contract.SnapshotBadge]:
    for entry in entries:
        uid, kind, person = (getattr(entry, n) for n in ("uid", "kind", "person_id"))
        until = getattr(entry, "valid_until", None)
        # The edge names BLE badges `ble:<id>` and NFC cards by upper-case hex UID.
        ref = (uid if uid.startswith("ble:") else f"ble:{uid}") if kind == "ble" else uid.upper()
        try:
            yield contract.SnapshotBadge(
                badge=ref, person=person, valid_until=until.timestamp() if until else None
            )
        except ValueError:
            log.warning("badge %r of %s cannot be expressed in a snapshot; left out", uid, person)


# --- publishing ---------------------------------------------------------------------


class SnapshotPublisher:
    """Keeps every desk node's retained snapshot current (see the module docstring)."""

    def __init__(
        self,
        settings: CloudSettings,
        engine: AsyncEngine,
        commands: CommandSender,
        signer: SnapshotSigner,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self._engine = engine
        self._commands = commands
        self._clock = clock
        self._versions: dict[str, int] = {}
        self._dirty_nodes: set[str] = set()
        self._dirty_desks: set[str] = set()
        self._all_dirty = True
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.last: dict[str, contract.Snapshot] = {}
        # Per vehicle node, the digest of the vehicle sections it was last sent.
        self._sent_vehicle: dict[str, str] = {}

    def mark_dirty(self, node: str | None = None, *, desk: str | None = None) -> None:
        """Something in a snapshot changed: of `node`, of the node serving `desk`, or of all."""
        if desk is not None:
            self._dirty_desks.add(desk)
        elif node is not None:
            self._dirty_nodes.add(node)
        else:
            self._all_dirty = True
        self._wake.set()

    def nodes_changed(self, nodes: Iterable[str]) -> None:
        for node in nodes:
            self.mark_dirty(node)

    def desks_changed(self, desks: Iterable[str]) -> None:
        for desk in desks:
            self.mark_dirty(desk=desk)

    async def vehicles_changed(self) -> set[str]:
        """Marks the vehicle nodes whose sections differ from what they were last sent."""
        changed: set[str] = set()
        now = datetime.fromtimestamp(self._clock(), UTC)
        async with self._engine.connect() as conn:
            for node in await nodes_of_vehicles(conn):
                digest = sections_digest(await vehicle_sections(conn, node, now))
                if self._sent_vehicle.get(node) != digest:
                    changed.add(node)
        for node in changed:
            self.mark_dirty(node)
        return changed

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ruang-snapshots")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def snapshot_for(self, conn: AsyncConnection, node: str) -> contract.Snapshot:
        now = self._clock()
        version = next_version(self._versions.get(node), now)
        body = await build_body(conn, node, datetime.fromtimestamp(now, UTC), version)
        self._versions[node] = version
        if body.vehicle is not None:
            self._sent_vehicle[node] = sections_digest(
                VehicleSections(body.vehicle, body.trips, body.seats, body.car_bookings)
            )
        return self.signer.sign(node, body)

    async def publish(self, nodes: Iterable[str] | None = None) -> set[str]:
        """Builds and publishes the snapshots of `nodes` (all desk nodes if None).

        Returns the nodes that could not be sent (not connected); they stay due.
        """
        failed: set[str] = set()
        async with self._engine.connect() as conn:
            targets = list(nodes) if nodes is not None else await nodes_with_desks(conn)
            for node in targets:
                try:
                    snapshot = await self.snapshot_for(conn, node)
                    await self._commands.publish(snapshot, retain=True)
                except NotConnected:
                    failed.add(node)
                    continue
                except (DomainError, contract.ContractError) as exc:
                    log.info("no snapshot for node %s: %s", node, exc)
                    continue
                self.last[node] = snapshot
                self.published += 1
        return failed

    async def _take_due(self) -> set[str] | None:
        """The nodes due now (None = all), consuming the dirty marks."""
        if self._all_dirty:
            self._all_dirty = False
            self._dirty_nodes.clear()
            self._dirty_desks.clear()
            return None
        nodes, desks = self._dirty_nodes, self._dirty_desks
        self._dirty_nodes, self._dirty_desks = set(), set()
        if desks:
            async with self._engine.connect() as conn:
                rows = await conn.scalars(
                    select(DESKS.c.node_id).where(DESKS.c.id.in_(desks)).distinct()
                )
                nodes |= {n for n in rows if n is not None}
        return nodes

    async def _loop(self) -> None:
        refresh = self.settings.snapshot_refresh_s
        next_refresh = time.monotonic() + refresh
        next_vehicle_check = time.monotonic() + VEHICLE_CHECK_S
        connects = self._commands.connects
        last_pass_s = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            if self._commands.connects != connects:
                # A new broker connection: a restarted broker may have lost retained messages.
                connects = self._commands.connects
                self._all_dirty = True
            if time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + refresh
                self._all_dirty = True
            if time.monotonic() >= next_vehicle_check:
                next_vehicle_check = time.monotonic() + VEHICLE_CHECK_S
                try:
                    await self.vehicles_changed()
                except Exception:
                    log.exception("comparing vehicle snapshots failed; next time again")
            if not (self._all_dirty or self._dirty_nodes or self._dirty_desks):
                self._wake.clear()
                continue
            if not self._commands.connected:
                self._wake.clear()
                continue  # marks stay; the reconnect above republishes everything
            self._wake.clear()
            # Debounce: a burst of changes (an import, a recurring series) is one snapshot.
            await asyncio.sleep(debounce_s(self.settings.snapshot_debounce_s, last_pass_s))
            started = time.monotonic()
            try:
                due = await self._take_due()
                failed = await self.publish(due)
                last_pass_s = time.monotonic() - started
            except Exception as exc:
                log_failed_pass(log, "publishing snapshots failed; retrying", exc)
                self._all_dirty = True
                await asyncio.sleep(1.0)
                continue
            if failed:
                self._dirty_nodes |= failed
