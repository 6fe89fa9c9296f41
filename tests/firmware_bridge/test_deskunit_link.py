"""LinkEndpoint: acks, duplicate suppression, retransmission and give-up with injected time."""

from __future__ import annotations

from firmware_bridge.deskunit import (
    PI_TO_UNIT,
    UNIT_TO_PI,
    Ack,
    BadgeRead,
    Frame,
    FrameDecoder,
    Heartbeat,
    LedPattern,
    LedSet,
    Nack,
    NackReason,
    PresenceChanged,
    Rejected,
)
from firmware_bridge.deskunit_link import LinkBusy, LinkEndpoint, Outcome


def _decode(wire: bytes) -> list[Frame | Rejected]:
    return FrameDecoder().feed(wire)


def _one(wire: bytes) -> Frame:
    [item] = _decode(wire)
    assert isinstance(item, Frame)
    return item


def test_seq_numbers_increase_and_wrap_at_256() -> None:
    link = LinkEndpoint()
    seqs = [link.send(Heartbeat(i), 0.0)[0] for i in range(300)]
    assert seqs[:3] == [0, 1, 2]
    assert seqs[255:258] == [255, 0, 1]


def test_received_frame_needing_ack_is_delivered_and_acked() -> None:
    unit, pi = LinkEndpoint(accepts=PI_TO_UNIT), LinkEndpoint(accepts=UNIT_TO_PI)
    seq, wire = unit.send(BadgeRead(b"\x04\xa1\xb2\xc3"), 0.0)
    result = pi.receive(_one(wire), 0.01)
    assert result.deliver == Frame(seq, BadgeRead(b"\x04\xa1\xb2\xc3"))
    [reply] = result.replies
    assert _one(reply).message == Ack(seq)
    back = unit.receive(_one(reply), 0.02)
    [settled] = back.settled
    assert settled.outcome is Outcome.ACKED and settled.seq == seq
    assert unit.in_flight == 0 and unit.next_deadline() is None


def test_heartbeat_is_delivered_without_ack_and_not_tracked() -> None:
    unit, pi = LinkEndpoint(), LinkEndpoint()
    _, wire = unit.send(Heartbeat(5), 0.0)
    assert unit.in_flight == 0
    result = pi.receive(_one(wire), 0.0)
    assert result.deliver is not None and result.replies == ()


def test_duplicate_retransmission_is_reacked_but_delivered_once() -> None:
    unit, pi = LinkEndpoint(), LinkEndpoint()
    seq, wire = unit.send(PresenceChanged(True), 0.0)
    first = pi.receive(_one(wire), 0.0)
    again = pi.receive(_one(wire), 0.15)
    assert first.deliver is not None
    assert again.deliver is None
    assert [_one(r).message for r in again.replies] == [Ack(seq)]
    assert pi.stats.duplicates == 1 and pi.stats.delivered == 1


def test_same_seq_with_different_content_is_not_a_duplicate() -> None:
    pi = LinkEndpoint()
    assert pi.receive(Frame(4, PresenceChanged(True)), 0.0).deliver is not None
    assert pi.receive(Frame(4, PresenceChanged(False)), 0.0).deliver is not None


def test_unacked_message_is_retransmitted_identically_after_timeout() -> None:
    pi = LinkEndpoint(ack_timeout=0.1)
    led = LedSet(255, 0, 0, LedPattern.BLINK, 5)
    _seq, wire = pi.send(led, 10.0)
    assert pi.next_deadline() == 10.1
    assert pi.poll(10.05).retransmit == ()
    polled = pi.poll(10.1)
    assert polled.retransmit == (wire,) and polled.settled == ()
    assert pi.next_deadline() == 10.2
    assert pi.stats.retransmits == 1


def test_gives_up_after_max_retries_and_reports_it() -> None:
    pi = LinkEndpoint(ack_timeout=0.1, max_retries=3)
    seq, wire = pi.send(LedSet(0, 0, 255, LedPattern.SOLID), 0.0)
    sent = [pi.poll(t).retransmit for t in (0.1, 0.21, 0.32)]
    assert sent == [(wire,)] * 3
    final = pi.poll(0.43)
    assert final.retransmit == ()
    [settled] = final.settled
    assert settled.outcome is Outcome.GAVE_UP and settled.seq == seq
    assert pi.stats.give_ups == 1 and pi.in_flight == 0


def test_ack_after_retransmission_settles_once_and_late_ack_is_stray() -> None:
    pi = LinkEndpoint()
    seq, _ = pi.send(LedSet(1, 1, 1, LedPattern.SOLID), 0.0)
    pi.poll(0.1)
    assert len(pi.receive(Frame(0, Ack(seq)), 0.15).settled) == 1
    assert pi.receive(Frame(1, Ack(seq)), 0.16).settled == ()
    assert pi.stats.stray_acks == 1


def test_final_nack_settles_as_nacked_with_reason() -> None:
    pi = LinkEndpoint()
    seq, _ = pi.send(LedSet(1, 1, 1, LedPattern.SOLID), 0.0)
    [settled] = pi.receive(Frame(0, Nack(seq, NackReason.UNKNOWN_TYPE)), 0.01).settled
    assert settled.outcome is Outcome.NACKED
    assert settled.nack_reason is NackReason.UNKNOWN_TYPE


def test_bad_crc_nack_makes_an_immediate_retransmission() -> None:
    pi = LinkEndpoint(ack_timeout=0.1)
    seq, wire = pi.send(LedSet(1, 1, 1, LedPattern.SOLID), 0.0)
    assert pi.receive(Frame(0, Nack(seq, NackReason.BAD_CRC)), 0.01).settled == ()
    assert pi.next_deadline() == 0.01
    assert pi.poll(0.01).retransmit == (wire,)


def test_corrupted_frame_is_nacked_with_its_seq_but_control_frames_are_not() -> None:
    link = LinkEndpoint()
    reply = link.receive(Rejected("bad_crc", b"", seq=5, msg_type=0x03), 0.0).replies
    assert [_one(r).message for r in reply] == [Nack(5, NackReason.BAD_CRC)]
    assert link.receive(Rejected("bad_crc", b"", seq=5, msg_type=0x7E), 0.0).replies == ()
    assert link.receive(Rejected("cobs", b"\x09"), 0.0).replies == ()


def test_frame_of_a_type_this_side_does_not_handle_is_nacked_unknown_type() -> None:
    unit = LinkEndpoint(accepts=PI_TO_UNIT)
    result = unit.receive(Frame(3, BadgeRead(b"1234")), 0.0)
    assert result.deliver is None
    assert [_one(r).message for r in result.replies] == [Nack(3, NackReason.UNKNOWN_TYPE)]


def test_seq_awaiting_ack_is_never_reused_and_in_flight_is_bounded() -> None:
    link = LinkEndpoint(max_in_flight=2)
    first, _ = link.send(PresenceChanged(True), 0.0)
    link.send(PresenceChanged(False), 0.0)
    try:
        link.send(PresenceChanged(True), 0.0)
    except LinkBusy:
        pass
    else:
        raise AssertionError("third message should not fit")
    # Wrap the counter round to the pending seq: it must be skipped.
    for _ in range(254):
        link.send(Heartbeat(0), 0.0)
    assert link.send(Heartbeat(0), 0.0)[0] not in {first, first + 1}


def test_two_endpoints_converge_over_a_lossy_line() -> None:
    unit, pi = LinkEndpoint(), LinkEndpoint()
    now = 0.0
    _, wire = unit.send(BadgeRead(bytes(7)), now)
    delivered = []
    # The first two transmissions are lost; the third gets through, its Ack is lost,
    # the fourth is a duplicate whose Ack arrives.
    lost = {0, 1}
    attempts = [wire]
    for attempt in range(4):
        if attempt not in lost:
            result = pi.receive(_one(attempts[-1]), now)
            if result.deliver:
                delivered.append(result.deliver)
            if attempt == 3:
                for reply in result.replies:
                    unit.receive(_one(reply), now)
        now += 0.11  # a little past each deadline, clear of float rounding
        attempts += list(unit.poll(now).retransmit)
    assert len(delivered) == 1
    assert unit.in_flight == 0 and unit.stats.give_ups == 0
    assert set(attempts) == {wire}, "retransmissions are byte-identical"
