"""_dp's PPP header parser and data-message builder; the builder's output is checked with the
wire.l2tp oracle and with _dp's own parsers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp import _dp
from fastl2tp.wire import l2tp


def py_ppp(data: bytes):
    """Reference: optional FF 03, then a protocol of 1 byte (odd) or 2 bytes (even, then odd)."""
    pos = 2 if data[:2] == b"\xff\x03" else 0
    if pos >= len(data):
        return "PPP_SHORT"
    if data[pos] & 1:
        return data[pos], pos + 1
    if pos + 2 > len(data):
        return "PPP_SHORT"
    if not data[pos + 1] & 1:
        return "PPP_BAD_PROTO"
    return (data[pos] << 8) | data[pos + 1], pos + 2


def fast_ppp(data: bytes):
    try:
        return _dp.parse_ppp(data)
    except ValueError as e:
        return str(e)


@pytest.mark.parametrize(
    "data, expected",
    [
        ("ff030021", (0x0021, 4)),
        ("ff0321", (0x21, 3)),      # ACFC off, PFC on
        ("0021", (0x0021, 2)),      # ACFC on
        ("21", (0x21, 1)),          # ACFC and PFC
        ("ff03c021", (0xC021, 4)),  # LCP
        ("c0210102", (0xC021, 2)),
        ("ff0380fd", (0x80FD, 4)),  # CCP
        ("ff0300fd", (0x00FD, 4)),  # MPPE compressed datagram
        ("", "PPP_SHORT"),
        ("ff03", "PPP_SHORT"),
        ("ff0300", "PPP_SHORT"),
        ("00", "PPP_SHORT"),
        ("0022", "PPP_BAD_PROTO"),  # even low byte
        ("ff03c022", "PPP_BAD_PROTO"),
    ],
)
def test_ppp_cases(data, expected):
    assert fast_ppp(bytes.fromhex(data)) == expected == py_ppp(bytes.fromhex(data))


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=6), st.binary(max_size=4).map(lambda b: b"\xff\x03" + b)))
def test_ppp_against_reference(data):
    assert fast_ppp(data) == py_ppp(data)


@settings(max_examples=600, deadline=None)
@given(
    tunnel_id=st.integers(0, 0xFFFF),
    session_id=st.integers(0, 0xFFFF),
    length=st.booleans(),
    seq=st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))),
    proto=st.sampled_from([0x0021, 0x0057, 0x00FD, 0x003D, 0xC021, 0x8021, 0x80FD, 0xC223]),
    acfc=st.booleans(),
    pfc=st.booleans(),
    payload=st.binary(max_size=200),
    extra_headroom=st.integers(0, 50),
)
def test_built_messages_decode(tunnel_id, session_id, length, seq, proto, acfc, pfc, payload,
                               extra_headroom):
    ns, nr = seq if seq else (None, None)
    msg = _dp.build_data_header(payload, tunnel_id, session_id, length=length, ns=ns, nr=nr,
                                ppp_proto=proto, acfc=acfc, pfc=pfc, headroom=16 + extra_headroom)
    header, start, end = l2tp.decode_header(msg)
    assert header == l2tp.Header(False, tunnel_id, session_id, ns, nr, len(msg) if length else None)
    assert end == len(msg)
    assert _dp.parse_header(msg) == (False, tunnel_id, session_id, ns, nr, len(msg) if length else None,
                                     None, False, start, end)
    # the same bytes as the Python encoder's header
    assert msg[:start] == l2tp.encode_header(l2tp.Header(False, tunnel_id, session_id, ns, nr,
                                                         0 if length else None), end - start)
    ppp = msg[start:end]
    got_proto, ppp_len = _dp.parse_ppp(ppp)
    assert got_proto == proto
    assert (ppp[:2] == b"\xff\x03") != acfc
    assert ppp_len == (0 if acfc else 2) + (1 if pfc and proto < 0x100 else 2)
    assert ppp[ppp_len:] == payload


def test_no_ppp_header_for_a_whole_frame():
    frame = bytes.fromhex("ff03c0210101000a0104058a")
    msg = _dp.build_data_header(frame, 7, 9, no_ppp=True)
    header, start, end = l2tp.decode_header(msg)
    assert (header.tunnel_id, header.session_id) == (7, 9)
    assert msg[start:end] == frame


def test_minimal_headroom_is_enough_and_less_is_refused():
    # flags+length+ids+Ns/Nr = 12, FF 03 + 2-byte protocol = 4
    msg = _dp.build_data_header(b"x", 1, 2, length=True, ns=1, nr=2, headroom=16)
    assert len(msg) == 17
    with pytest.raises(ValueError):
        _dp.build_data_header(b"x", 1, 2, length=True, ns=1, nr=2, headroom=15)
    assert len(_dp.build_data_header(b"x", 1, 2, acfc=True, pfc=True, headroom=7)) == 8


def test_length_field_overflow_is_refused():
    payload = bytes(0xFFFF - 12)
    assert len(_dp.build_data_header(payload, 1, 2, length=True)) == 0xFFFF - 12 + 12
    with pytest.raises(ValueError):
        _dp.build_data_header(payload + b"x" * 3, 1, 2, length=True)
    # without the L bit the size is the UDP datagram's business
    assert len(_dp.build_data_header(payload + b"x" * 3, 1, 2)) == 0xFFFF - 12 + 3 + 10


def test_range_checks():
    with pytest.raises(ValueError):
        _dp.build_data_header(b"", 0x10000, 1)
    with pytest.raises(ValueError):
        _dp.build_data_header(b"", 1, 1, ppp_proto=-1)
