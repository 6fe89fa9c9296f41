"""SQL tables of the cloud state: nodes, desks, events, the building layout, people and bookings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ruang.site_defaults import DEFAULT_TIMEZONE

ID_LENGTH = 64
DESK_MODES = ("reservable", "drop_in", "assigned", "unavailable")
FEATURES = ("monitor", "standing", "accessible", "dual_monitor")
PERSON_KINDS = ("asn", "guest")
ROLES = ("asn", "guest", "facility_manager", "technician", "admin")
BADGE_KINDS = ("nfc", "ble")
BADGE_STATUSES = ("active", "revoked", "lost", "replaced")
BOOKING_STATUSES = ("booked", "checked_in", "completed", "cancelled", "released", "no_show")
# Only these hold a desk: every other status is history and frees the slot.
ACTIVE_BOOKING_STATUSES = ("booked", "checked_in")
ACTIVE_BOOKING_SQL = "status IN ('booked', 'checked_in')"


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no timezone type and hands naive datetimes back; re-attaching
    UTC here keeps API output identical on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None:
            # SQLite stores the wall-clock fields only, and booking overlap
            # triggers compare them as text: everything must be UTC first.
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    bdseq: Mapped[int | None] = mapped_column(BigInteger)
    sw_version: Mapped[str | None] = mapped_column(String(64))
    # Cloud receive times, not edge timestamps: offline detection and birth/death
    # ordering must not depend on the edge clock (a last-will carries the time
    # the will was registered, which is before the birth it belongs to).
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_birth_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_death_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Fleet view (0007): what the node last reported about itself. NULL = never reported.
    config_version: Mapped[int | None] = mapped_column(Integer)
    outbox_depth: Mapped[int | None] = mapped_column(Integer)
    # Edge clock minus cloud receive time of the latest health message (s); it
    # includes the one-way transit time, so it is an upper bound of the skew.
    clock_offset_s: Mapped[float | None] = mapped_column(Float)
    last_health_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    alarms: Mapped[list[str] | None] = mapped_column(JSON)
    # What the latest birth declared ([{kind, device, unit}]; today only desk units).
    devices_declared: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Cloud time of the latest message refused for the node's clock (0009): the fleet
    # view's "clock skew" alarm, until a later health report is accepted.
    clock_skew_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Desk(Base):
    __tablename__ = "desks"
    __table_args__ = (
        CheckConstraint("state IN ('free', 'occupied')", name="ck_desks_state"),
        CheckConstraint(f"mode IN {DESK_MODES!r}", name="ck_desks_mode"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id"), index=True)
    unit: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="free")
    occupant_badge: Mapped[str | None] = mapped_column(String(64))
    checked_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    present: Mapped[bool | None] = mapped_column(Boolean)
    presence_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_change_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unit_online: Mapped[bool | None] = mapped_column(Boolean)
    unit_firmware: Mapped[str | None] = mapped_column(String(32))
    # Layout columns (0002). All nullable or defaulted (older databases had desks
    # that ingestion created); today only the layout creates desks.
    floor_id: Mapped[str | None] = mapped_column(ForeignKey("floors.id"), index=True)
    zone_id: Mapped[str | None] = mapped_column(ForeignKey("zones.id"), index=True)
    label: Mapped[str | None] = mapped_column(String(128))
    mode: Mapped[str] = mapped_column(String(16), default="reservable", server_default="reservable")
    features: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    x: Mapped[float | None] = mapped_column(Float)
    y: Mapped[float | None] = mapped_column(Float)
    w: Mapped[float | None] = mapped_column(Float)
    h: Mapped[float | None] = mapped_column(Float)
    assigned_person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))


class Event(Base):
    """Every applied event and state message, once.

    The UNIQUE `message_id` is the de-duplication: a replayed message fails to
    insert (ON CONFLICT DO NOTHING) and is then not applied at all.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("message_id", name="uq_events_message_id"),
        Index("ix_events_ts", "ts"),  # the retention purge (cloud/privacy/retention.py)
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    desk: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    badge: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class Site(Base):
    """A campus with its time zone and the booking rules of everything in it."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    max_booking_hours: Mapped[int] = mapped_column(Integer, default=10)
    max_days_ahead: Mapped[int] = mapped_column(Integer, default=14)
    one_desk_per_person_per_slot: Mapped[bool] = mapped_column(Boolean, default=True)
    checkin_grace_min: Mapped[int] = mapped_column(Integer, default=15)
    away_release_min: Mapped[int] = mapped_column(Integer, default=30)
    # Room panels show other agencies' meeting titles only where the site says so (0021).
    room_panel_titles: Mapped[bool] = mapped_column(Boolean, default=False)


class Building(Base):
    __tablename__ = "buildings"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))


class Floor(Base):
    __tablename__ = "floors"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    building_id: Mapped[str] = mapped_column(ForeignKey("buildings.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    # Free-form drawing data (outline, width/height) for an SVG floor plan.
    geometry: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Zone(Base):
    __tablename__ = "zones"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    floor_id: Mapped[str] = mapped_column(ForeignKey("floors.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    reserved_for_agency: Mapped[str | None] = mapped_column(String(200))


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    node_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    sensor_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # Place on the floor plan (0008), same units as desks' x/y/w/h; NULL = not drawn.
    x: Mapped[float | None] = mapped_column(Float)
    y: Mapped[float | None] = mapped_column(Float)
    w: Mapped[float | None] = mapped_column(Float)
    h: Mapped[float | None] = mapped_column(Float)
    # Room sensor's latest reading (0008); NULL until a sensor reports one.
    occupied: Mapped[bool | None] = mapped_column(Boolean)
    occupied_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Person(Base):
    """An ASN employee or a guest. `nip` is personal data: only PersonPrivate shows it."""

    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint(f"kind IN {PERSON_KINDS!r}", name="ck_people_kind"),
        CheckConstraint(f"role IN {ROLES!r}", name="ck_people_role"),
        # SCIM finds a person by userName without case (cloud/scim/users.py): the id when
        # the identity system gave none of its own.
        Index("ix_people_login", text("lower(coalesce(user_name, id))")),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    agency: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    nip: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    host_person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    pass_number: Mapped[str | None] = mapped_column(String(64))
    # Home site (0009): which facility managers see this person and their badges.
    site_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    # Provisioning by a ministry's identity system over SCIM (0026, cloud/scim/): a
    # deactivated person holds no active badge; `user_name` (login name, NULL = the id),
    # `external_id` (the identity system's own key) and the name parts are its view of them.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    unit: Mapped[str | None] = mapped_column(String(200))
    user_name: Mapped[str | None] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256), index=True)
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # SCIM DELETE: the row stays for the history that points at it, hidden from SCIM.
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Badge(Base):
    __tablename__ = "badges"
    __table_args__ = (
        CheckConstraint(f"kind IN {BADGE_KINDS!r}", name="ck_badges_kind"),
        CheckConstraint(f"status IN {BADGE_STATUSES!r}", name="ck_badges_status"),
        # A uid identifies one person at a time; old badges keep their uid as history.
        Index(
            "uq_badges_active_uid",
            "uid",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(8))
    uid: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class BookingSeries(Base):
    """A recurring weekday booking: the rule its bookings were created from."""

    __tablename__ = "booking_series"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    desk_id: Mapped[str] = mapped_column(ForeignKey("desks.id"))
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    weekdays: Mapped[list[int]] = mapped_column(JSON)
    first_day: Mapped[str] = mapped_column(String(10))
    last_day: Mapped[str] = mapped_column(String(10))
    start_time: Mapped[str] = mapped_column(String(5))
    end_time: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Booking(Base):
    """A desk held by a person for [starts_at, ends_at).

    Overlaps are refused by the database itself (migration 0002): an exclusion
    constraint on PostgreSQL, triggers on SQLite. Only `booked` and
    `checked_in` rows take part; every other status stays as history.
    """

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint(f"status IN {BOOKING_STATUSES!r}", name="ck_bookings_status"),
        CheckConstraint("ends_at > starts_at", name="ck_bookings_range"),
        Index("ix_bookings_desk_time", "desk_id", "starts_at", "ends_at"),
        Index("ix_bookings_person_time", "person_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    desk_id: Mapped[str] = mapped_column(ForeignKey("desks.id"))
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="booked")
    # Copied from the site rule when booked, so the per-person constraint can
    # be a plain partial constraint instead of a join to the site.
    exclusive_person: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    release_reason: Mapped[str | None] = mapped_column(String(200))
    series_id: Mapped[str | None] = mapped_column(ForeignKey("booking_series.id"), index=True)
    # Set from the desk's own check-in/check-out events (0005); `walk_up` marks a
    # booking the edge created by claiming a free desk.
    checked_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    checked_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    walk_up: Mapped[bool] = mapped_column(Boolean, default=False)


class IntegrationEvent(Base):
    """A transactional outbox of things integrations hear about (0004).

    Written in the same transaction as the change it reports (booking created,
    cancelled, released, check-in...), so an event exists exactly when the change
    committed; the webhook dispatcher delivers from here with retries.
    """

    __tablename__ = "integration_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PresenceChange(Base):
    """Each change of a desk's presence sensor (0005): the sensor side of utilisation."""

    __tablename__ = "presence_changes"
    __table_args__ = (Index("ix_presence_changes_desk_ts", "desk_id", "ts"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    desk_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    present: Mapped[bool] = mapped_column(Boolean)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookSubscription(Base):
    """Where to deliver integration events (0005); `secret` signs each delivery (HMAC-SHA256)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(256))
    kinds: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Integration events with id <= cursor have been handed to the delivery queue.
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookDelivery(Base):
    """One event for one subscription, with its attempts (0005): the delivery log."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery"),
        Index("ix_webhook_deliveries_due", "delivered_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("integration_events.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    gave_up: Mapped[bool] = mapped_column(Boolean, default=False)


class DeadLetter(Base):
    """A message that validated but could not be applied (0009), kept to be replayed.

    One row per message id: a resend of the same poison message bumps `attempts`
    and `last_seen`. `payload` is the raw MQTT payload, byte for byte.
    """

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("message_id", name="uq_dead_letters_message_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    topic: Mapped[str] = mapped_column(String(256))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(512))
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
