"""Bridged frames of BCP (fastl2tp.wire.bcp, RFC 3518 §4): fixed vectors, the flags, round trips and
random input."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastl2tp.errors import DecodeError, LocalUsageError
from fastl2tp.wire.bcp import (
    BRIDGED_ETHERNET_HEADER,
    ETHERNET_MIN_LEN,
    BcpFlag,
    BridgedFrame,
    MacType,
    decode_bridged_frame,
    encode_bridged_frame,
    is_bridge_control,
    lan_fcs,
)
from fastl2tp.wire.ppp import (
    Frame,
    Protocol,
    decode_frame,
    encode_frame,
    is_valid_protocol,
)

BROADCAST = b"\xff" * 6
SRC = bytes.fromhex("020000000001")
ARP = BROADCAST + SRC + b"\x08\x06" + bytes.fromhex("0001080006040001") + SRC + bytes(4) + bytes(6) + bytes(4)
IPV4 = bytes.fromhex("020000000002") + SRC + b"\x08\x00" + bytes(range(64))


# --- fixed vectors ---------------------------------------------------------------------------------


def test_protocol_numbers() -> None:
    assert Protocol.BRIDGED == 0x0031 and Protocol.BCP == 0x8031
    assert is_valid_protocol(Protocol.BRIDGED) and is_valid_protocol(Protocol.BCP)
    assert encode_frame(Frame(Protocol.BRIDGED, BRIDGED_ETHERNET_HEADER + ARP)) == b"\xff\x03\x00\x31\x00\x01" + ARP
    assert decode_frame(b"\xff\x03\x00\x31\x00\x01" + ARP) == Frame(0x0031, b"\x00\x01" + ARP)


def test_plain_ethernet_is_two_octets_then_the_frame() -> None:
    assert encode_bridged_frame(IPV4) == b"\x00\x01" + IPV4
    assert decode_bridged_frame(b"\x00\x01" + IPV4) == BridgedFrame(IPV4)
    got = decode_bridged_frame(b"\x00\x01" + IPV4)
    assert got.is_ethernet and got.fcs is None and got.fcs_ok() is None
    assert not (got.zero_padded or got.bridge_control or got.pads)


def test_lan_fcs_is_crc32_least_significant_octet_first() -> None:
    assert lan_fcs(b"123456789") == bytes.fromhex("2639f4cb")  # the CRC-32 check value 0xCBF43926
    assert lan_fcs(IPV4) == (zlib.crc32(IPV4) & 0xFFFFFFFF).to_bytes(4, "little")


def test_fcs_flag_appends_and_splits_the_lan_fcs() -> None:
    data = encode_bridged_frame(IPV4, fcs=True)
    assert data == b"\x80\x01" + IPV4 + lan_fcs(IPV4)
    got = decode_bridged_frame(data, check_fcs=True)
    assert got.frame == IPV4 and got.fcs == lan_fcs(IPV4) and got.fcs_ok() is True
    # A wrong FCS is only reported unless checked.
    bad = data[:-1] + bytes((data[-1] ^ 0xFF,))
    assert decode_bridged_frame(bad).fcs_ok() is False
    with pytest.raises(DecodeError, match="FCS"):
        decode_bridged_frame(bad, check_fcs=True)
    with pytest.raises(DecodeError):
        decode_bridged_frame(b"\x80\x01\x00\x00\x00")  # F without room for the FCS


def test_tinygram_restores_the_zero_pad() -> None:
    assert len(ARP) == 42
    data = encode_bridged_frame(ARP, tinygram=True)
    assert data[0] == BcpFlag.Z and data[1] == MacType.IEEE_802_3
    assert len(data) < 2 + ETHERNET_MIN_LEN
    assert data[2:] == ARP.rstrip(b"\0")  # ARP's trailing zero target addresses go too
    got = decode_bridged_frame(data)
    assert got.zero_padded and got.frame == ARP.ljust(60, b"\0")
    # A peer's Z frame whose tail was cut anywhere comes back as 60 octets.
    assert decode_bridged_frame(b"\x20\x01" + ARP[:20]).frame == ARP[:20].ljust(60, b"\0")
    # Never below the 14-octet header, and only frames up to the minimum are compressed.
    header_only = bytes(14)
    assert encode_bridged_frame(header_only, tinygram=True) == b"\x20\x01" + header_only
    assert encode_bridged_frame(IPV4, tinygram=True) == b"\x00\x01" + IPV4  # 78 octets: left alone


def test_tinygram_with_fcs_covers_the_restored_frame() -> None:
    data = encode_bridged_frame(ARP, fcs=True, tinygram=True)
    assert data[0] == BcpFlag.F | BcpFlag.Z
    got = decode_bridged_frame(data, check_fcs=True)
    assert got.frame == ARP.ljust(60, b"\0") and got.fcs == lan_fcs(ARP.ljust(60, b"\0"))


def test_pads_are_stripped_after_the_fcs() -> None:
    data = encode_bridged_frame(IPV4, fcs=True, pads=3)
    assert data[0] == BcpFlag.F | 3 and data.endswith(lan_fcs(IPV4) + b"\0\0\0")
    got = decode_bridged_frame(data, check_fcs=True)
    assert got.frame == IPV4 and got.pads == 3
    # Pads need not be zero on receive.
    assert decode_bridged_frame(b"\x02\x01" + IPV4 + b"\xaa\xbb").frame == IPV4
    with pytest.raises(DecodeError, match="pad"):
        decode_bridged_frame(b"\x0f\x01" + bytes(3))


def test_bridge_control_flag() -> None:
    bpdu = bytes.fromhex("0180c2000000") + SRC + b"\x00\x26" + bytes.fromhex("424203") + bytes(35)
    assert is_bridge_control(bpdu) and is_bridge_control(bytes.fromhex("0180c200000e") + SRC)
    assert not is_bridge_control(IPV4) and not is_bridge_control(bytes.fromhex("0180c2000010") + SRC)
    assert not is_bridge_control(b"\x01\x80")
    data = encode_bridged_frame(bpdu, bridge_control=True)
    assert data[:2] == b"\x10\x01"
    got = decode_bridged_frame(data)
    assert got.bridge_control and got.frame == bpdu


def test_lan_id_flag_is_refused() -> None:
    with pytest.raises(DecodeError, match="LAN-ID"):
        decode_bridged_frame(bytes((BcpFlag.I, 1)) + IPV4)


def test_other_mac_types_have_a_pad_octet() -> None:
    token_ring = bytes.fromhex("1040") + BROADCAST + SRC + b"payload"  # AC, FC, addresses...
    for mac in (MacType.IEEE_802_4, MacType.IEEE_802_5_NONCANONICAL, MacType.FDDI_NONCANONICAL,
                MacType.IEEE_802_5, MacType.FDDI):
        data = encode_bridged_frame(token_ring, mac)
        assert data == bytes((0, mac, 0)) + token_ring
        got = decode_bridged_frame(data)
        assert got.mac_type == mac and got.frame == token_ring and not got.is_ethernet
    with pytest.raises(DecodeError):
        decode_bridged_frame(bytes((0, MacType.IEEE_802_5, 0)))  # nothing after the pad octet
    with pytest.raises(DecodeError, match="tinygram"):
        decode_bridged_frame(bytes((BcpFlag.Z, MacType.FDDI, 0)) + token_ring)


@pytest.mark.parametrize("mac", [0, 5, 10, 13, 255])
def test_reserved_mac_types_are_refused(mac: int) -> None:
    with pytest.raises(DecodeError, match="MAC type"):
        decode_bridged_frame(bytes((0, mac)) + IPV4)
    with pytest.raises(LocalUsageError):
        encode_bridged_frame(IPV4, mac)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x01", b"\x00\x01" + bytes(13)])
def test_short_input_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_bridged_frame(data)


def test_encoder_refuses_bad_arguments() -> None:
    for kwargs in ({"pads": 16}, {"pads": -1}):
        with pytest.raises(LocalUsageError):
            encode_bridged_frame(IPV4, **kwargs)
    with pytest.raises(LocalUsageError):
        encode_bridged_frame(bytes(13))  # shorter than an Ethernet header
    with pytest.raises(LocalUsageError):
        encode_bridged_frame(b"x", MacType.FDDI, tinygram=True)


# --- properties ------------------------------------------------------------------------------------

ethernet_frames = st.binary(min_size=14, max_size=1600)


@given(ethernet_frames, st.booleans(), st.booleans(), st.integers(0, 15))
def test_round_trip_ethernet(frame: bytes, fcs: bool, bridge_control: bool, pads: int) -> None:
    data = encode_bridged_frame(frame, fcs=fcs, bridge_control=bridge_control, pads=pads)
    got = decode_bridged_frame(data, check_fcs=True)
    assert got == BridgedFrame(frame, MacType.IEEE_802_3, lan_fcs(frame) if fcs else None, False,
                               bridge_control, pads)
    assert encode_bridged_frame(got.frame, got.mac_type, got.fcs is not None, bridge_control=got.bridge_control,
                                pads=got.pads) == data


@given(st.binary(min_size=14, max_size=80), st.booleans())
def test_round_trip_tinygram(frame: bytes, fcs: bool) -> None:
    got = decode_bridged_frame(encode_bridged_frame(frame, fcs=fcs, tinygram=True), check_fcs=True)
    if len(frame) <= ETHERNET_MIN_LEN:
        assert got.zero_padded and got.frame == frame.ljust(ETHERNET_MIN_LEN, b"\0")
    else:
        assert not got.zero_padded and got.frame == frame
    assert got.fcs_ok() is (True if fcs else None)


@given(st.sampled_from(sorted(MacType)), st.binary(min_size=1, max_size=200), st.booleans())
def test_round_trip_any_mac_type(mac: int, frame: bytes, fcs: bool) -> None:
    if mac == MacType.IEEE_802_3:
        frame = frame.ljust(14, b"\x01")
    got = decode_bridged_frame(encode_bridged_frame(frame, mac, fcs))
    assert (got.mac_type, got.frame, got.fcs_ok()) == (mac, frame, True if fcs else None)


@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_raise_only_decode_error(data: bytes, check_fcs: bool) -> None:
    try:
        got = decode_bridged_frame(data, check_fcs=check_fcs)
    except DecodeError:
        return
    assert isinstance(got, BridgedFrame)
    assert got.mac_type in set(MacType)
    assert len(got.frame) >= (14 if got.is_ethernet else 1)
    assert got.fcs is None or len(got.fcs) == 4
