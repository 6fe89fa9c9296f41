"""Door rights from the snapshot: windows, validity, wrong door, anti-passback, and the fallback."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.devices import access_policy as p
from edge.devices.door_rights import ANTI_PASSBACK, AntiPassback, DoorRights
from ruang import contract

T0 = 1_795_000_000.0
ALICE, BOB, GUEST = "04A1B2C3", "04D5E6F7", "ble:guest-1"


def body(version: int = 1, *, anti_passback: bool = False) -> contract.SnapshotBody:
    lobby = contract.SnapshotDoorRight(
        door="LOBBY", windows=((T0, T0 + 3600), (T0 + 7200, T0 + 9000))
    )
    return contract.SnapshotBody(
        version=version, issued_at=T0, valid_until=T0 + 86_400,
        doors=(
            contract.SnapshotDoor(door="LOBBY", zone_from="out", zone_to="in",
                                  anti_passback=anti_passback),
            contract.SnapshotDoor(door="EXIT", zone_from="in", zone_to="out"),
            contract.SnapshotDoor(door="SERVER"),
        ),
        badges=(
            contract.SnapshotBadge(badge=ALICE, person="p-a", doors=(
                lobby, contract.SnapshotDoorRight(door="EXIT", windows=((T0, T0 + 86_400),)))),
            contract.SnapshotBadge(badge=BOB, person="p-b"),
            contract.SnapshotBadge(badge=GUEST, person="g-1", valid_from=T0 + 600,
                                   valid_until=T0 + 1200, doors=(lobby,)),
        ),
    )  # fmt: skip


def policy(snapshot: contract.SnapshotBody) -> p.AccessPolicy:
    out = p.AccessPolicy(p.AllowList(version=0), {"LOCAL": p.WeeklySchedule.always()})
    out.replace_rights(DoorRights.of(snapshot))
    return out


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def test_a_badge_opens_inside_its_windows_and_is_refused_between_and_after_them() -> None:
    pol = policy(body())
    assert pol.decide("LOBBY", ALICE, at(T0 + 10)) == p.Decision(True, p.ALLOWED)
    assert pol.decide("LOBBY", ALICE, at(T0 + 3600)).reason == p.OUTSIDE_SCHEDULE
    assert pol.decide("LOBBY", ALICE, at(T0 + 8000)).granted
    assert pol.decide("LOBBY", ALICE, at(T0 + 9000)).reason == p.OUTSIDE_SCHEDULE
    assert pol.decide("LOBBY", ALICE, at(T0 - 1)).reason == p.OUTSIDE_SCHEDULE


def test_a_badge_without_a_right_for_the_door_or_unknown_is_refused() -> None:
    pol = policy(body())
    assert pol.decide("SERVER", ALICE, at(T0 + 10)).reason == p.WRONG_DOOR
    assert pol.decide("LOBBY", BOB, at(T0 + 10)).reason == p.WRONG_DOOR
    assert pol.decide("LOBBY", "0A0B0C0D", at(T0 + 10)).reason == p.UNKNOWN_BADGE


def test_a_guest_opens_only_inside_the_visit_window() -> None:
    pol = policy(body())
    assert pol.decide("LOBBY", GUEST, at(T0 + 599)).reason == p.NOT_YET_VALID
    assert pol.decide("LOBBY", GUEST, at(T0 + 600)).granted
    assert pol.decide("LOBBY", GUEST, at(T0 + 1200)).reason == p.EXPIRED


def test_a_door_the_cloud_does_not_manage_keeps_the_allow_list_and_schedule() -> None:
    pol = policy(body())
    assert pol.decide("LOCAL", ALICE, at(T0 + 10)).reason == p.UNKNOWN_BADGE
    pol.replace_allow_list(p.AllowList(version=1, entries=(p.BadgeEntry(badge=BOB, person="p-b"),)))
    assert pol.decide("LOCAL", BOB, at(T0 + 10)).granted


def test_a_newer_snapshot_revokes_and_an_older_one_is_ignored() -> None:
    pol = policy(body(version=2))
    revoked = body(version=3).model_copy(update={"badges": ()})
    assert pol.replace_rights(DoorRights.of(revoked))
    assert pol.decide("LOBBY", ALICE, at(T0 + 10)).reason == p.UNKNOWN_BADGE
    assert not pol.replace_rights(DoorRights.of(body(version=2)))
    assert pol.decide("LOBBY", ALICE, at(T0 + 10)).reason == p.UNKNOWN_BADGE


def test_anti_passback_refuses_a_second_entry_until_the_badge_went_out() -> None:
    pol = policy(body(anti_passback=True))
    assert pol.decide("LOBBY", ALICE, at(T0 + 10)).granted
    assert pol.decide("LOBBY", ALICE, at(T0 + 20)) == p.Decision(False, ANTI_PASSBACK)
    assert pol.decide("EXIT", ALICE, at(T0 + 30)).granted
    assert pol.decide("LOBBY", ALICE, at(T0 + 40)).granted


def test_anti_passback_forgives_after_its_reset_time_and_is_off_by_default() -> None:
    door = contract.SnapshotDoor(door="LOBBY", zone_from="out", zone_to="in", anti_passback=True,
                                 anti_passback_reset_s=60)  # fmt: skip
    memory = AntiPassback()
    memory.passed(door, ALICE, T0)
    assert memory.refuses(door, ALICE, T0 + 59)
    assert not memory.refuses(door, ALICE, T0 + 60)
    assert not memory.refuses(door.model_copy(update={"anti_passback": False}), ALICE, T0 + 1)
    plain = policy(body())
    assert plain.decide("LOBBY", ALICE, at(T0 + 10)).granted
    assert plain.decide("LOBBY", ALICE, at(T0 + 20)).granted
