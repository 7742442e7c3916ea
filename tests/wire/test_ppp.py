"""PPP frame, control-packet and option-list codecs (fastl2tp.wire.ppp)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastl2tp.errors import DecodeError, LocalUsageError
from fastl2tp.wire.ppp import (
    Code,
    CpPacket,
    Frame,
    MagicData,
    Option,
    Protocol,
    ProtocolRejectBody,
    decode_cp,
    decode_frame,
    decode_magic_data,
    decode_options,
    decode_protocol_reject,
    encode_cp,
    encode_frame,
    encode_frame_header,
    encode_magic_data,
    encode_options,
    encode_protocol_reject,
    is_valid_protocol,
)

# --- frames --------------------------------------------------------------------------------------


def test_frame_default_encoding_has_ff03_and_two_byte_protocol() -> None:
    assert encode_frame(Frame(Protocol.IPV4, b"xy")) == b"\xff\x03\x00\x21xy"
    assert encode_frame_header(Protocol.LCP) == b"\xff\x03\xc0\x21"


def test_frame_compressed_forms_are_accepted() -> None:
    full = decode_frame(b"\xff\x03\x00\x21payload")
    assert full == Frame(0x0021, b"payload")
    assert decode_frame(b"\x00\x21payload") == full  # ACFC
    assert decode_frame(b"\xff\x03\x21payload") == full  # PFC
    assert decode_frame(b"\x21payload") == full  # both
    assert decode_frame(b"\xc0\x21\x01\x01\x00\x04") == Frame(Protocol.LCP, b"\x01\x01\x00\x04")


def test_frame_compression_on_encode() -> None:
    assert encode_frame(Frame(0x21, b"x"), acfc=True, pfc=True) == b"\x21x"
    assert encode_frame(Frame(Protocol.IPCP, b"x"), pfc=True) == b"\xff\x03\x80\x21x"  # PFC only < 0x100
    # LCP always carries address and control (RFC 1661 §6.6)
    assert encode_frame(Frame(Protocol.LCP, b"x"), acfc=True) == b"\xff\x03\xc0\x21x"


@pytest.mark.parametrize("data", [b"", b"\xff\x03", b"\xff\x03\x00", b"\x00", b"\x00\x20", b"\x02\x00x"])
def test_frame_bad(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_frame(data)


def test_protocol_validity() -> None:
    assert is_valid_protocol(0xC021) and is_valid_protocol(0x0021) and is_valid_protocol(0x8057)
    assert not is_valid_protocol(0x0020) and not is_valid_protocol(0x0121)
    with pytest.raises(LocalUsageError):
        encode_frame_header(0x0100)


# --- control packets -----------------------------------------------------------------------------


def test_cp_roundtrip_and_padding_ignored() -> None:
    # pppd's LCP Configure-Request from linux-xl2tpd-pppd/pap-nomppe.pcap
    raw = bytes.fromhex("010100100206000000000506dea37835")
    pkt = decode_cp(raw)
    assert pkt == CpPacket(Code.CONFIGURE_REQUEST, 1, bytes.fromhex("0206000000000506dea37835"))
    assert encode_cp(pkt) == raw
    assert decode_cp(raw + b"\x00\x00padding") == pkt


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01", b"\x01\x01\x00", b"\x01\x01\x00\x03", b"\x01\x01\x00\x05", b"\x01\x01\x00\x10abc"],
)
def test_cp_bad_length(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_cp(data)


def test_unknown_code_survives() -> None:
    assert decode_cp(b"\x63\x05\x00\x05z") == CpPacket(0x63, 5, b"z")


# --- options -------------------------------------------------------------------------------------


def test_options_decode() -> None:
    data = bytes.fromhex("0206000000000305c223810506a1f2d7f70702")
    assert decode_options(data) == (
        Option(2, b"\x00\x00\x00\x00"),
        Option(3, b"\xc2\x23\x81"),
        Option(5, bytes.fromhex("a1f2d7f7")),
        Option(7, b""),
    )
    assert encode_options(decode_options(data)) == data


@pytest.mark.parametrize("data", [b"\x01", b"\x01\x00", b"\x01\x01", b"\x01\x04\x05", b"\x07\x02\x05\x09\x00"])
def test_options_bad(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_options(data)


def test_options_encode_limits() -> None:
    with pytest.raises(LocalUsageError):
        encode_options([Option(1, bytes(254))])
    assert len(encode_options([Option(1, bytes(253))])) == 255


def test_lcp_bodies() -> None:
    assert decode_magic_data(b"\x00\x00\x00\x00Aho") == MagicData(0, b"Aho")
    assert encode_magic_data(MagicData(0x01020304, b"x")) == b"\x01\x02\x03\x04x"
    with pytest.raises(DecodeError):
        decode_magic_data(b"\x00\x00\x00")
    body = decode_protocol_reject(bytes.fromhex("80fd0106000a120601000040"))
    assert body == ProtocolRejectBody(Protocol.CCP, bytes.fromhex("0106000a120601000040"))
    assert encode_protocol_reject(body) == bytes.fromhex("80fd0106000a120601000040")
    with pytest.raises(DecodeError):
        decode_protocol_reject(b"\x80")


# --- properties ----------------------------------------------------------------------------------

packets = st.builds(CpPacket, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=600))
options = st.lists(st.builds(Option, st.integers(0, 255), st.binary(max_size=253)), max_size=20)
protocols = st.integers(0, 0xFFFF).filter(is_valid_protocol)


@given(packets)
def test_cp_property_roundtrip(pkt: CpPacket) -> None:
    assert decode_cp(encode_cp(pkt)) == pkt


@given(options)
def test_options_property_roundtrip(opts: list[Option]) -> None:
    assert decode_options(encode_options(opts)) == tuple(opts)


@given(protocols, st.binary(max_size=64), st.booleans(), st.booleans())
def test_frame_property_roundtrip(protocol: int, payload: bytes, acfc: bool, pfc: bool) -> None:
    assert decode_frame(encode_frame(Frame(protocol, payload), acfc=acfc, pfc=pfc)) == Frame(protocol, payload)


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    for decode in (decode_cp, decode_options, decode_frame, decode_magic_data, decode_protocol_reject):
        try:
            decode(data)
        except DecodeError:
            pass
