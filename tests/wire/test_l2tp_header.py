"""L2TP header codec (RFC 2661 §3.1)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastl2tp.errors import DecodeError
from fastl2tp.wire.l2tp import Header, UnsupportedVersion, decode_header, encode_header


def test_control_header_round_trip():
    h = Header(True, 5, 0, 1, 2)
    wire = encode_header(h, 10) + bytes(10)
    got, start, end = decode_header(wire)
    assert (got.tunnel_id, got.session_id, got.ns, got.nr, got.length) == (5, 0, 1, 2, 22)
    assert (start, end) == (12, 22)


@pytest.mark.parametrize("first", [b"\xc8\x03", b"\xc8\x01", b"\x00\x03"])
def test_other_versions_are_rejected(first):
    with pytest.raises(UnsupportedVersion):
        decode_header(first + bytes(10))


@pytest.mark.parametrize(
    "wire",
    [
        bytes.fromhex("8802 000c 0001 0000 0000 0000"),  # control without L
        bytes.fromhex("c002 0008 0001 0000"),  # control without S
        bytes.fromhex("ca02 000e 0001 0000 0000 0000 0000"),  # control with O
        bytes.fromhex("c802 00ff 0001 0000 0000 0000"),  # length beyond the datagram
        bytes.fromhex("0202 0001 0001 0010"),  # offset pad beyond the end
        bytes.fromhex("4002"),
    ],
)
def test_malformed_headers(wire):
    with pytest.raises(DecodeError):
        decode_header(wire)


def test_trailing_bytes_after_length_are_ignored():
    wire = encode_header(Header(False, 1, 2, length=0), 3) + b"abc" + b"PAD"
    h, start, end = decode_header(wire)
    assert wire[start:end] == b"abc"


headers = st.builds(
    lambda ctl, tid, sid, seq, ns, nr, length, off, prio: Header(
        ctl, tid, sid, ns if (seq or ctl) else None, nr if (seq or ctl) else None,
        0 if (length or ctl) else None, None if ctl else off, False if ctl else prio),
    st.booleans(), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.booleans(), st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF), st.booleans(), st.one_of(st.none(), st.integers(0, 8)), st.booleans(),
)


@given(headers, st.binary(max_size=50))
def test_header_round_trip(h, payload):
    wire = encode_header(h, len(payload)) + payload
    got, start, end = decode_header(wire)
    assert wire[start:end] == payload
    assert (got.is_control, got.tunnel_id, got.session_id, got.ns, got.nr, got.offset_size, got.priority) == (
        h.is_control, h.tunnel_id, h.session_id, h.ns, h.nr, h.offset_size, h.priority)
    assert encode_header(got, len(payload)) == wire[:start]


@given(st.binary(max_size=40))
def test_random_bytes_raise_only_decode_error(data):
    try:
        decode_header(data)
    except DecodeError:
        pass
