"""What each integration event kind carries: one pydantic model per family, and its JSON Schema.

`record_event` passes every event's data through its kind's model, so a field the
model does not name (a guest's name, a badge uid, a meeting title) never reaches
the outbox, and what is delivered always matches the schema published in
docs/webhooks/<kind>.schema.json (`python -m cloud.integrations.payloads docs/webhooks`
writes them; tests/cloud/integrations/test_event_schemas.py checks they are current).
Personal data is minimised per family: docs/webhooks.md gives each field's purpose.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, create_model

ServiceDay = Annotated[str, Field(pattern=r"^\d{8}$", description="GTFS service day YYYYMMDD")]


# Emitters hand over public rows, whose key is `id`; the event names it by what it is.
_ID = Field(validation_alias=AliasChoices("booking_id", "id"))


class _Data(BaseModel):
    # Unknown keys are dropped, not refused: emitters may hand over a whole row.
    # Every field is always sent (null when unknown), and nothing else is.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_serialization_defaults_required=True,
        json_schema_extra={"additionalProperties": False},
    )


class DeskBookingEvent(_Data):
    """A desk booking after the change (kinds `booking.*`)."""

    booking_id: int = _ID
    desk_id: str
    person_id: str = Field(
        description="Ruang person id of whoever holds the booking (no name, NIP or badge)"
    )
    starts_at: datetime
    ends_at: datetime
    status: str = Field(description="booked, checked_in, completed, cancelled or released")
    walk_up: bool = Field(description="claimed at the desk without a booking")
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    released_at: datetime | None = None
    release_reason: str | None = None
    node: str | None = Field(default=None, description="edge node that reported the change")


class RoomBookingEvent(_Data):
    """A meeting-room booking after the change (kinds `room_booking.*`); no meeting title."""

    booking_id: int = _ID
    room_id: str
    person_id: str | None = Field(
        description="Ruang person id of the organiser; null for a meeting booked at the panel"
    )
    starts_at: datetime
    ends_at: datetime
    status: str = Field(description="booked, checked_in, completed, cancelled or no_show")
    walk_up: bool
    attendees: int | None = None
    series_id: str | None = None
    checked_in_at: datetime | None = None
    ended_at: datetime | None = None
    release_reason: str | None = None


class AccessDecisionEvent(_Data):
    """A door's decision on a card (kind `access.decision`): no badge and no person."""

    message_id: str = Field(
        description="the edge message id; the audited access log resolves it to a person"
    )
    node: str
    door: str
    granted: bool
    reason: str
    decided_at: datetime


class VisitEvent(_Data):
    """A visitor's arrival or departure (kinds `visitor.*`): no guest name, host or card."""

    visit_id: int = Field(validation_alias=AliasChoices("visit_id", "id"))
    site_id: str
    status: str = Field(description="checked_in or checked_out")
    starts_at: datetime = Field(description="start of the invited window")
    ends_at: datetime
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None


class NodeEvent(_Data):
    """An edge node came online or went offline (kinds `node.online`, `node.offline`)."""

    node: str
    online: bool
    cause: Literal["birth", "will", "silent"] = Field(
        description="birth: the node connected; will: its connection ended (MQTT will or "
        "goodbye); silent: nothing heard for RUANG_NODE_OFFLINE_AFTER_S"
    )
    bdseq: int | None = Field(default=None, description="birth/death sequence of the session")
    at: datetime


class SeatReservationEvent(_Data):
    """A shuttle seat reservation after the change (kinds `transport.seat_*`): no rider."""

    reservation_id: int = Field(validation_alias=AliasChoices("reservation_id", "id"))
    trip_id: str
    service_date: ServiceDay
    from_stop: str | None = None
    to_stop: str | None = None
    status: str = Field(description="confirmed, waitlisted, cancelled, boarded, no_show or expired")
    walk_on: bool
    departs_at: datetime | None = None


class BoardingEvent(_Data):
    """A badge tap at a shuttle door and what came of it (kind `transport.boarding`)."""

    message_id: str
    vehicle_id: str
    trip_id: str | None = None
    service_date: ServiceDay | None = None
    stop_id: str | None = None
    allowed: bool = Field(description="the vehicle node let the rider on")
    reason: str = Field(description="the node's reason: reserved, walk_on, full, ...")
    outcome: str | None = Field(
        description="what the cloud made of it (boarded, walk_on, full, unknown_vehicle, ...)"
    )
    boarded_at: datetime


class TripCancelledEvent(_Data):
    """The dispatcher cancelled a trip on a day (kind `transport.trip_cancelled`)."""

    trip_id: str
    service_date: ServiceDay
    reason: str | None = None
    cancelled_at: datetime
    reservations_ended: int = Field(description="confirmed and waitlisted seats it cancelled")


class CarBookingEvent(_Data):
    """A pool-car booking after the change (kinds `transport.car_*`): no driver, no purpose."""

    booking_id: int = _ID
    vehicle_id: str
    agency: str | None = Field(
        default=None, description="the booker's agency (instansi), whose approver decides"
    )
    starts_at: datetime
    ends_at: datetime
    status: str = Field(
        description="requested, approved, rejected, cancelled, picked_up or returned"
    )
    decided_at: datetime | None = None
    picked_up_at: datetime | None = Field(default=None, description="the car node's time")
    returned_at: datetime | None = Field(default=None, description="the car node's time")


CAR_KINDS = ("requested", "approved", "rejected", "cancelled", "picked_up", "returned")

MODELS: dict[str, type[_Data]] = {
    **{
        f"booking.{k}": DeskBookingEvent
        for k in ("created", "cancelled", "extended", "released", "checked_in", "checked_out")
    },
    **{
        f"room_booking.{k}": RoomBookingEvent
        for k in ("created", "cancelled", "extended", "checked_in", "ended", "released")
    },
    "access.decision": AccessDecisionEvent,
    "visitor.checked_in": VisitEvent,
    "visitor.checked_out": VisitEvent,
    "node.online": NodeEvent,
    "node.offline": NodeEvent,
    "transport.seat_reserved": SeatReservationEvent,
    "transport.seat_cancelled": SeatReservationEvent,
    "transport.seat_promoted": SeatReservationEvent,
    "transport.seat_no_show": SeatReservationEvent,
    "transport.boarding": BoardingEvent,
    "transport.trip_cancelled": TripCancelledEvent,
    **{f"transport.car_{k}": CarBookingEvent for k in CAR_KINDS},
}


def clean(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON data of an event of `kind`: only the model's fields, validated."""
    out: dict[str, Any] = MODELS[kind].model_validate(data).model_dump(mode="json")
    return out


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a whole delivery body of `kind`."""
    envelope = create_model(
        "Delivery_" + kind.replace(".", "_"),
        __config__=ConfigDict(json_schema_extra={"additionalProperties": False}),
        id=(int, Field(description="event id, increasing")),
        kind=(Literal[kind], ...),  # type: ignore[arg-type]
        created_at=(datetime, Field(description="when the change committed (UTC)")),
        data=(MODELS[kind], ...),
    )
    body = envelope.model_json_schema(mode="serialization")
    body["title"] = f"Ruang webhook {kind}"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **body}


def schema_text(kind: str) -> str:
    return json.dumps(schema(kind), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in MODELS:
        path = folder / f"{kind}.schema.json"
        path.write_text(schema_text(kind), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/webhooks")):
        print(written_path)
