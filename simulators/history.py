"""Simulated office history: weeks of desk and meeting-room activity as contract messages.

`history` turns a list of past days and the floors of a building (each floor's
edge node, its desks and its rooms with their sensors) into the messages those
nodes would have sent: `checkin` / `checkout` events on the events channel and
`presence` / `room_presence` samples, which a node drains from its outbox on
the backlog channel (history belongs in the time series, not in the desks'
current state). Nothing here talks to a broker; launch/demo_history.py
publishes the messages.

What a day looks like (times in the site's time zone):

- most people arrive 07:00-09:30 (around 07:45), tap in a few seconds after
  sitting down, leave around 16:30 (Friday earlier, and fewer people come);
- about two in three step away for lunch (Friday: longer, for Friday prayers):
  presence goes off for 30-75 min while the check-in stays;
- some go home at midday (a check-out at noon); some of those outside the roster
  never tap out (the check-out comes from the desk unit when they leave: reason
  `left`);
- meeting rooms are used in blocks of 30 to 120 minutes;
- weekends and the public holidays given are empty.

Everything is derived from (seed, date, desk) alone, message ids included, so
the same day always yields the same messages: publishing it twice is a no-op
for the cloud's exactly-once de-duplication on the message id.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ruang import contract

# Share of a floor's usable desks taken on a weekday (Monday..Friday).
ATTENDANCE = (0.78, 0.85, 0.82, 0.74, 0.5)
# Indonesian national holidays with a fixed date (month, day): New Year, Labour Day,
# Pancasila Day, Independence Day, Christmas. Holidays on the lunar calendars
# move every year; pass them (or an office closure) as `extra_holidays`.
FIXED_HOLIDAYS = ((1, 1), (5, 1), (6, 1), (8, 17), (12, 25))


@dataclass(frozen=True)
class FloorPlan:
    """One floor as its edge node sees it: the desks it serves, its rooms and their sensors."""

    node: str
    desks: tuple[str, ...]
    rooms: tuple[tuple[str, str | None], ...] = ()  # (room id, sensor id)


def is_holiday(day: date, extra: Iterable[date] = ()) -> bool:
    return (day.month, day.day) in FIXED_HOLIDAYS or day in set(extra)


def past_weekdays(today: date, weeks: int) -> list[date]:
    """The weekdays of the `weeks` weeks before `today` (today excluded), oldest first."""
    days = [today - timedelta(days=n) for n in range(weeks * 7, 0, -1)]
    return [d for d in days if d.weekday() < 5]


def _rng(seed: int, *parts: object) -> random.Random:
    # A stable seed from the parts (hash() of a str changes between processes).
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def extra_badge(seed: int, index: int) -> str:
    """A 4-byte card UID of someone outside the roster (a contractor, a visitor's pass)."""
    return hashlib.sha256(f"badge:{seed}:{index}".encode()).hexdigest()[:8].upper()


class _Day:
    """Messages of one node on one day, with ids numbered in generation order."""

    def __init__(self, node: str, day: date, tz: ZoneInfo) -> None:
        self.node, self.day, self.tz = node, day, tz
        self.stamp = day.strftime("%Y%m%d")
        self.messages: list[contract.Message] = []

    def ts(self, minutes: float) -> float:
        """Unix time of `minutes` after local midnight."""
        midnight = datetime.combine(self.day, time(0), tzinfo=self.tz)
        return round((midnight + timedelta(minutes=minutes)).timestamp(), 1)

    def _id(self) -> str:
        return f"hist-{self.node}-{self.stamp}-{len(self.messages):05d}"

    def checkin(self, at: float, desk: str, badge: str) -> None:
        self.messages.append(
            contract.CheckIn(id=self._id(), node=self.node, ts=self.ts(at), desk=desk, badge=badge)
        )

    def checkout(self, at: float, desk: str, badge: str, reason: str = "tap") -> None:
        self.messages.append(
            contract.CheckOut(
                id=self._id(),
                node=self.node,
                ts=self.ts(at),
                desk=desk,
                badge=badge,
                reason=reason,  # type: ignore[arg-type]
            )
        )

    def presence(self, at: float, desk: str, present: bool) -> None:
        self.messages.append(
            contract.Presence(
                id=self._id(), node=self.node, ts=self.ts(at), desk=desk, present=present
            )
        )

    def room(self, at: float, room: str, sensor: str | None, present: bool) -> None:
        self.messages.append(
            contract.RoomPresence(
                id=self._id(),
                node=self.node,
                ts=self.ts(at),
                room=room,
                sensor=sensor,
                present=present,
            )
        )


def _desk_day(
    out: _Day, rng: random.Random, desk: str, badge: str, friday: bool, roster: bool
) -> None:
    """One person's day at one desk.

    Only people outside the roster forget to tap out: for a roster badge the
    desk unit's release would reach that person as a "booking released" notice
    about a day weeks ago.
    """
    arrive = min(max(rng.gauss(7 * 60 + 45, 35), 7 * 60), 9 * 60 + 30)
    tap_in = arrive + rng.uniform(0.05, 0.4)
    out.presence(arrive, desk, True)
    out.checkin(tap_in, desk, badge)
    if rng.random() < 0.1:
        # A morning only: out at midday.
        leave = rng.uniform(11 * 60 + 30, 12 * 60 + 30)
        out.checkout(leave, desk, badge)
        out.presence(leave + 0.2, desk, False)
        return
    if rng.random() < 0.68:
        lunch = rng.uniform(11 * 60 + 30, 12 * 60 + 30)
        back = lunch + (rng.uniform(70, 110) if friday else rng.uniform(30, 75))
        out.presence(lunch, desk, False)
        out.presence(back, desk, True)
    end = rng.gauss(15 * 60 + 45 if friday else 16 * 60 + 35, 30)
    leave = min(max(end, 14 * 60 + 30), 18 * 60 + 30)
    if rng.random() < 0.12 and not roster:
        # Forgot to tap out: the desk unit releases the check-in once nobody is there.
        out.presence(leave, desk, False)
        out.checkout(leave + 10, desk, badge, reason="left")
    else:
        out.checkout(leave, desk, badge)
        out.presence(leave + 0.2, desk, False)


def _room_day(out: _Day, rng: random.Random, room: str, sensor: str | None, friday: bool) -> None:
    """Meetings in blocks: each half hour from 08:00 a meeting may start if the room is free."""
    slot, close = 8 * 60, (16 if friday else 17) * 60
    chance = 0.3 if friday else 0.45
    while slot < close:
        if rng.random() < chance:
            length = rng.choice((30, 60, 60, 90, 120))
            start = slot + rng.uniform(0, 4)  # people come in a few minutes late
            end = min(slot + length - rng.uniform(0, 6), close + 30)
            out.room(start, room, sensor, True)
            out.room(end, room, sensor, False)
            slot += length
        slot += 30


def day_messages(
    day: date,
    floors: Sequence[FloorPlan],
    badges: Sequence[str],
    *,
    tz: str = "Asia/Makassar",
    seed: int = 0,
) -> list[contract.Message]:
    """Every message of `day` (a working day), in time order.

    Each person sits at one desk at most: roster `badges` first (shuffled per
    day), then badges of people outside the roster (`extra_badge`).
    """
    zone = ZoneInfo(tz)
    rng = _rng(seed, day.isoformat(), "crowd")
    friday = day.weekday() == 4
    people = list(badges)
    rng.shuffle(people)
    taken = 0
    out: list[contract.Message] = []
    for floor in floors:
        node_day = _Day(floor.node, day, zone)
        for desk in floor.desks:
            desk_rng = _rng(seed, day.isoformat(), desk)
            if desk_rng.random() >= ATTENDANCE[day.weekday()]:
                continue  # nobody at this desk today
            roster = taken < len(people)
            badge = people[taken] if roster else extra_badge(seed, taken)
            taken += 1
            _desk_day(node_day, desk_rng, desk, badge, friday, roster)
        for room, sensor in floor.rooms:
            _room_day(node_day, _rng(seed, day.isoformat(), room), room, sensor, friday)
        out += node_day.messages
    # Stable: a check-in and its presence keep their generated order on equal times.
    return sorted(out, key=lambda m: m.ts)


def history(
    days: Iterable[date],
    floors: Sequence[FloorPlan],
    badges: Sequence[str],
    *,
    tz: str = "Asia/Makassar",
    seed: int = 0,
    extra_holidays: Iterable[date] = (),
) -> list[contract.Message]:
    """The messages of every working day of `days` (weekends and holidays stay empty)."""
    closed = set(extra_holidays)
    out: list[contract.Message] = []
    for day in sorted(set(days)):
        if day.weekday() < 5 and not is_holiday(day, closed):
            out += day_messages(day, floors, badges, tz=tz, seed=seed)
    return out
