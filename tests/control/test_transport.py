"""Reliable delivery (RFC 2661 §5.8, Appendix A): sequence arithmetic, acks, windows, backoff."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastl2tp.control.transport import Transport, TransportConfig, seq_add, seq_le, seq_lt
from fastl2tp.wire.avp import ControlMessage, MessageType, make_message

HELLO = make_message(MessageType.HELLO)


def msg(ns, nr, avps=HELLO):
    return ControlMessage(1, 0, ns, nr, avps)


@given(st.integers(0, 0xFFFF), st.integers(1, 0x7FFF))
def test_seq_lt_modulo_2_16(a, d):
    b = seq_add(a, d)
    assert seq_lt(a, b) and not seq_lt(b, a)
    assert seq_le(a, a) and not seq_lt(a, a)


def test_seq_wraps():
    assert seq_lt(0xFFFF, 0) and seq_lt(0xFFF0, 5) and not seq_lt(5, 0xFFF0)


def test_retransmit_backoff_doubles_to_cap_then_fails():
    cfg = TransportConfig(retransmit_initial_s=1, retransmit_max_s=8, max_retries=5)
    t = Transport(cfg, 0.0)
    t.send(0, HELLO, 0.0)
    assert [m.ns for m in t.take_output()] == [0]
    times = []
    now = 0.0
    while not t.failed:
        now = t.get_timer()
        t.handle_timer(now)
        if not t.failed:
            out = t.take_output()
            assert [m.ns for m in out] == [0]
            times.append(now)
    assert times == [1, 3, 7, 15, 23]  # 1, 2, 4, 8, 8 seconds apart
    assert now == 31 == cfg.give_up_after_s


def test_ack_stops_retransmission_and_window_limits_sending():
    t = Transport(TransportConfig(), 0.0)
    t.set_peer_window(2)
    for _ in range(4):
        t.send(0, HELLO, 0.0)
    # slow start: cwnd starts at 1
    assert [m.ns for m in t.take_output()] == [0]
    t.receive(msg(0, 1, ()), 0.1)  # ZLB acking Ns 0
    assert [m.ns for m in t.take_output()] == [1, 2]  # cwnd 2 = peer window
    t.receive(msg(0, 3, ()), 0.2)
    assert [m.ns for m in t.take_output()] == [3]
    t.receive(msg(0, 4, ()), 0.3)
    assert t.idle and t.get_timer() is None


def test_in_order_delivery_out_of_order_queueing_and_duplicates():
    t = Transport(TransportConfig(receive_window=4, ack_delay_s=0.25), 0.0)
    assert t.receive(msg(1, 0), 0.0) == []  # ahead of nr=0: queued, immediate ZLB
    assert t.get_timer() == 0.0
    t.handle_timer(0.0)
    (zlb,) = t.take_output()
    assert zlb.is_zlb and zlb.nr == 0
    got = t.receive(msg(0, 0), 1.0)
    assert [m.ns for m in got] == [0, 1]
    assert t.nr == 2
    assert t.get_timer() == 1.25  # delayed ack, hoping to piggyback
    t.handle_timer(1.25)
    (zlb,) = t.take_output()
    assert zlb.nr == 2
    assert t.receive(msg(1, 0), 2.0) == []  # duplicate: re-acked at once
    assert t.stats["duplicates"] == 1 and t.get_timer() == 2.0
    assert t.receive(msg(9, 0), 2.0) == []  # beyond our window of 4: dropped
    assert t.stats["out_of_window"] == 1


def test_piggybacked_ack_cancels_the_zlb():
    t = Transport(TransportConfig(ack_delay_s=0.5), 0.0)
    t.receive(msg(0, 0), 0.0)
    t.send(0, make_message(MessageType.SCCCN), 0.1)
    (out,) = t.take_output()
    assert out.nr == 1
    assert t.get_timer() == 1.1  # only the retransmission timer is left


def test_bogus_nr_beyond_what_we_sent_is_ignored():
    t = Transport(TransportConfig(), 0.0)
    t.send(0, HELLO, 0.0)
    t.take_output()
    t.receive(msg(0, 5, ()), 0.1)
    assert t.unacked == 1 and t.stats["bad_nr"] == 1


def test_wraparound_of_ns():
    t = Transport(TransportConfig(), 0.0)
    t.ns = 0xFFFF
    t.set_peer_window(4)
    t.cwnd = 4
    for _ in range(3):
        t.send(0, HELLO, 0.0)
    assert [m.ns for m in t.take_output()] == [0xFFFF, 0, 1]
    t.receive(msg(0, 1, ()), 0.1)  # acks 0xFFFF and 0
    assert t.unacked == 1


def test_retransmission_carries_current_nr():
    t = Transport(TransportConfig(), 0.0)
    t.send(0, HELLO, 0.0)
    t.take_output()
    t.receive(msg(0, 0, make_message(MessageType.HELLO)), 0.5)
    t.handle_timer(1.0)
    out = t.take_output()
    assert out[0].ns == 0 and out[0].nr == 1
