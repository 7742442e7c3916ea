"""_dp's C L2TP header parser against its oracle, fastl2tp.wire.l2tp.decode_header."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fastl2tp import _dp
from fastl2tp.errors import DecodeError
from fastl2tp.wire import l2tp

FLAG_BITS = (l2tp.FLAG_T, l2tp.FLAG_L, l2tp.FLAG_S, l2tp.FLAG_O, l2tp.FLAG_P)


def oracle(data: bytes):
    try:
        h, start, end = l2tp.decode_header(data)
    except DecodeError as e:
        return ("error", type(e), str(e), e.offset, e.field, getattr(e, "version", None))
    return ("ok", (h.is_control, h.tunnel_id, h.session_id, h.ns, h.nr, h.length, h.offset_size,
                   h.priority, start, end))


def fast(data: bytes):
    try:
        t = _dp.parse_header(data)
    except DecodeError as e:
        return ("error", type(e), str(e), e.offset, e.field, getattr(e, "version", None))
    return ("ok", t)


def check(data: bytes) -> None:
    expected = oracle(data)
    assert fast(data) == expected
    reason = _dp.parse_reason(data)
    assert (reason == _dp.DropReason.OK) == (expected[0] == "ok")
    if expected[0] == "error":
        assert (reason == _dp.DropReason.BAD_VERSION) == (expected[1] is l2tp.UnsupportedVersion)


@st.composite
def headers(draw):
    """Header-shaped bytes: any flags word (reserved bits too), the fields its bits call for, a Length
    that is right or anything, an offset pad, a payload, and sometimes a truncation."""
    flags = draw(st.integers(0, 0xFFFF))
    if draw(st.integers(0, 9)):
        flags = (flags & ~0xF) | 2  # mostly version 2
    tunnel_id, session_id, ns, nr = (draw(st.integers(0, 0xFFFF)) for _ in range(4))
    offset_size = draw(st.one_of(st.integers(0, 16), st.integers(0, 0xFFFF)))
    payload = draw(st.binary(max_size=40))
    body = tunnel_id.to_bytes(2, "big") + session_id.to_bytes(2, "big")
    if flags & l2tp.FLAG_S:
        body += ns.to_bytes(2, "big") + nr.to_bytes(2, "big")
    if flags & l2tp.FLAG_O:
        body += offset_size.to_bytes(2, "big") + bytes(min(offset_size, 64))
    body += payload
    size = 2 + (2 if flags & l2tp.FLAG_L else 0) + len(body)
    length = draw(st.one_of(st.just(size), st.integers(0, 0xFFFF), st.integers(0, size)))
    data = flags.to_bytes(2, "big")
    if flags & l2tp.FLAG_L:
        data += length.to_bytes(2, "big")
    data += body + draw(st.binary(max_size=4))  # UDP padding after Length
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=64))
@example(b"")
@example(b"\x00\x02\x00")
@example(b"\x00\x03\x00\x00\x00\x00")  # version 3
@example(b"\xc8\x02\x00\x0c\x00\x01\x00\x02\x00\x00\x00\x00")  # a ZLB
def test_random_bytes(data):
    check(data)


@settings(max_examples=1500, deadline=None)
@given(headers())
def test_header_shaped_bytes(data):
    check(data)


@pytest.mark.parametrize(
    "tail",
    [b"", b"\x00", b"\x00\x0e\x00\x01\x00\x02", bytes(range(1, 20)), b"\x00\x05" + bytes(30)],
)
def test_every_flags_word(tail):
    """All 65536 first words in front of a few tails: every flag combination, version and reserved bit."""
    for flags in range(0x10000):
        check(flags.to_bytes(2, "big") + tail)


@settings(max_examples=800, deadline=None)
@given(
    is_control=st.booleans(),
    ids=st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    seq=st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))),
    with_length=st.booleans(),
    offset_size=st.one_of(st.none(), st.integers(0, 40)),
    priority=st.booleans(),
    payload=st.binary(max_size=100),
)
def test_encoded_headers(is_control, ids, seq, with_length, offset_size, priority, payload):
    """Valid headers from the Python encoder, every flag combination it can produce."""
    if is_control:
        seq = seq or (0, 0)
        offset_size, priority = None, False
    header = l2tp.Header(is_control, ids[0], ids[1], seq and seq[0], seq and seq[1],
                         0 if with_length else None, offset_size, priority)
    data = l2tp.encode_header(header, len(payload)) + payload
    check(data)
    t = _dp.parse_header(data)
    assert data[t[8] : t[9]] == payload


def test_unsupported_version_carries_the_version():
    with pytest.raises(l2tp.UnsupportedVersion) as info:
        _dp.parse_header(b"\x00\x03\x00\x00\x00\x00")
    assert info.value.version == 3


def test_parse_accepts_any_bytes_like():
    data = bytes.fromhex("4802000e00010002000300040021")
    assert _dp.parse_header(bytearray(data)) == _dp.parse_header(memoryview(data)) == oracle(data)[1]
