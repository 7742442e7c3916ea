"""_dp.PacketBatch: slots, the nogil batch parse with per-reason counters, and recvmmsg."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp import _dp
from fastl2tp.errors import DecodeError
from fastl2tp.wire import l2tp

REASON_BY_MESSAGE = {
    "datagram shorter than an L2TP header": _dp.DropReason.SHORT,
    "control message without the L bit": _dp.DropReason.CTRL_NO_L,
    "truncated tunnel/session id": _dp.DropReason.TRUNC_IDS,
    "truncated Ns/Nr": _dp.DropReason.TRUNC_NS,
    "control message without the S bit": _dp.DropReason.CTRL_NO_S,
    "control message with the O bit": _dp.DropReason.CTRL_WITH_O,
    "truncated offset size": _dp.DropReason.TRUNC_OFFSET,
    "control message with the P bit": _dp.DropReason.CTRL_WITH_P,
    "length field": _dp.DropReason.BAD_LENGTH,
    "header runs past the end of the message": _dp.DropReason.OFFSET_PAST_END,
}


def expected_reason(data: bytes) -> _dp.DropReason:
    """The drop reason from the oracle's exception (or from the PPP header for a data message)."""
    try:
        header, start, end = l2tp.decode_header(data)
    except l2tp.UnsupportedVersion:
        return _dp.DropReason.BAD_VERSION
    except DecodeError as e:
        return next(r for text, r in REASON_BY_MESSAGE.items() if str(e).startswith(text))
    if header.is_control:
        return _dp.DropReason.OK
    try:
        _dp.parse_ppp(data[start:end])
    except ValueError as e:
        return _dp.DropReason[str(e)]
    return _dp.DropReason.OK


def data_msg(sid: int, payload: bytes = b"\x45" + bytes(39), **kw) -> bytes:
    return _dp.build_data_header(payload, 1, sid, **kw)


def test_reason_enum_matches_the_c_enum():
    assert len(_dp.DropReason) == _dp.NUM_REASONS
    assert _dp.DropReason.OK == 0
    assert set(_dp.PacketBatch(1).counters()) == {"data", "control"} | {
        r.name.lower() for r in _dp.DropReason if r != _dp.DropReason.OK
    }


def test_parse_mixed_batch():
    ctrl = l2tp.encode_header(l2tp.Header(True, 1, 0, 0, 0), 0)
    packets = [
        data_msg(1),
        data_msg(2, length=True, ns=5, nr=0),
        data_msg(3, acfc=True, pfc=True),
        ctrl,
        b"\x00\x03" + bytes(10),                       # version 3
        b"\x00\x02\x00",                               # short
        b"\x40\x02\xff\xff\x00\x01\x00\x02",           # Length beyond the datagram
        b"\x00\x02\x00\x01\x00\x02",                   # data without a PPP header
        b"\x00\x02\x00\x01\x00\x02\xff\x03\x00\x20",   # PPP protocol with an even low byte
    ]
    batch = _dp.PacketBatch(16)
    batch.fill(packets)
    assert batch.count == len(packets)
    assert batch.parse() == 3
    counters = batch.counters()
    assert counters == {**{k: 0 for k in counters}, "data": 3, "control": 1, "bad_version": 1, "short": 1,
                        "bad_length": 1, "ppp_short": 1, "ppp_bad_proto": 1}
    reason, header, ppp = batch.result(1)
    assert reason == _dp.DropReason.OK
    assert header == _dp.parse_header(packets[1])
    assert ppp == (0x0021, 4)
    assert batch.result(2)[2] == (0x0021, 1)
    assert batch.result(3) == (_dp.DropReason.OK, _dp.parse_header(ctrl), None)
    assert batch.result(4) == (_dp.DropReason.BAD_VERSION, None, None)
    assert batch.result(7)[0] == _dp.DropReason.PPP_SHORT
    assert batch.packet(5) == b"\x00\x02\x00"
    # counters accumulate over batches until reset
    batch.parse()
    assert batch.counters()["data"] == 6
    batch.reset_counters()
    assert set(batch.counters().values()) == {0}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=40),
    st.builds(lambda sid, p, ln: data_msg(sid, p, length=ln), st.integers(0, 0xFFFF), st.binary(max_size=20),
              st.booleans()),
), min_size=1, max_size=32))
def test_batch_agrees_with_oracle(packets):
    batch = _dp.PacketBatch(32, slot_size=128, headroom=16)
    batch.fill(packets)
    ok = batch.parse()
    expected = [expected_reason(p) for p in packets]
    assert [batch.result(i)[0] for i in range(len(packets))] == expected
    n_control = sum(1 for p, r in zip(packets, expected) if r == _dp.DropReason.OK and p[0] & 0x80)
    assert ok == sum(1 for r in expected if r == _dp.DropReason.OK) - n_control
    counters = batch.counters()
    assert counters["control"] == n_control
    for reason in _dp.DropReason:
        if reason != _dp.DropReason.OK:
            assert counters[reason.name.lower()] == expected.count(reason)


def test_fill_checks_sizes():
    batch = _dp.PacketBatch(2, slot_size=100, headroom=36)
    with pytest.raises(ValueError):
        batch.fill([b""] * 3)
    with pytest.raises(ValueError):
        batch.fill([bytes(65)])
    batch.fill([bytes(64)])
    with pytest.raises(IndexError):
        batch.result(1)
    with pytest.raises(ValueError):
        _dp.PacketBatch(0)
    with pytest.raises(ValueError):
        _dp.PacketBatch(4, slot_size=64, headroom=64)


def test_recv_fills_the_batch_with_recvmmsg():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        batch = _dp.PacketBatch(8, slot_size=256, headroom=32)
        assert batch.recv(rx.fileno()) == 0  # nothing queued: EAGAIN is not an error
        sent = [data_msg(i, bytes([0x45]) + bytes(i)) for i in range(10)]
        for p in sent:
            tx.sendto(p, rx.getsockname())
        assert batch.recv(rx.fileno()) == 8
        assert [batch.packet(i) for i in range(8)] == sent[:8]
        assert batch.parse() == 8
        assert batch.recv(rx.fileno()) == 2
        assert [batch.packet(i) for i in range(2)] == sent[8:]
        assert batch.parse() == 2
        assert batch.counters()["data"] == 10
    finally:
        rx.close()
        tx.close()


def test_recv_on_a_bad_fd_raises():
    with pytest.raises(OSError):
        _dp.PacketBatch(2).recv(-1)
