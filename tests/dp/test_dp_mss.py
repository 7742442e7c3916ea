"""TCP MSS clamping (_dp.tcp_clamp_mss) on IPv4 and IPv6 SYNs; every changed packet's checksum is
checked by recomputing it from scratch."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp import _dp

SYN, ACK, FIN = 0x02, 0x10, 0x01
SRC4, DST4 = ipaddress.IPv4Address("10.0.103.2").packed, ipaddress.IPv4Address("10.150.1.7").packed
SRC6, DST6 = ipaddress.IPv6Address("2001:db8::2").packed, ipaddress.IPv6Address("2001:db8:1::77").packed


def ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def tcp_segment(options: bytes, flags: int = SYN, payload: bytes = b"") -> bytes:
    options += b"\x00" * (-len(options) % 4)  # EOL padding
    doff = (20 + len(options)) // 4
    return (
        (40000).to_bytes(2, "big") + (443).to_bytes(2, "big") + (0x01020304).to_bytes(4, "big")
        + bytes(4) + bytes([doff << 4, flags]) + (64240).to_bytes(2, "big") + bytes(4)
        + options + payload
    )


def pseudo_header(packet: bytes, tcp_len: int) -> bytes:
    if packet[0] >> 4 == 4:
        return packet[12:20] + bytes([0, 6]) + tcp_len.to_bytes(2, "big")
    return packet[8:40] + tcp_len.to_bytes(4, "big") + bytes([0, 0, 0, 6])


def tcp_offset(packet: bytes) -> int:
    if packet[0] >> 4 == 4:
        return (packet[0] & 0xF) * 4
    off, nh = 40, packet[6]
    while nh != 6:
        nh, off = packet[off], off + (8 if nh == 44 else (packet[off + 1] + 1) * 8)
    return off


def full_checksum(packet: bytes) -> int:
    """The TCP checksum computed from scratch (checksum field taken as zero)."""
    off = tcp_offset(packet)
    end = int.from_bytes(packet[2:4], "big") if packet[0] >> 4 == 4 else 40 + int.from_bytes(packet[4:6], "big")
    tcp = bytearray(packet[off:end])
    tcp[16:18] = b"\x00\x00"
    return ~ones_sum(pseudo_header(packet, len(tcp)) + bytes(tcp)) & 0xFFFF


def with_checksum(packet: bytearray) -> bytearray:
    off = tcp_offset(packet)
    packet[off + 16 : off + 18] = full_checksum(bytes(packet)).to_bytes(2, "big")
    return packet


def ipv4(segment: bytes, *, frag: int = 0, proto: int = 6, ip_options: bytes = b"", pad: bytes = b"") -> bytearray:
    ihl = (20 + len(ip_options)) // 4
    total = ihl * 4 + len(segment)
    hdr = (bytes([0x40 | ihl, 0]) + total.to_bytes(2, "big") + (0x1234).to_bytes(2, "big")
           + frag.to_bytes(2, "big") + bytes([64, proto, 0, 0]) + SRC4 + DST4 + ip_options)
    packet = bytearray(hdr + segment + pad)
    return with_checksum(packet) if proto == 6 and not frag & 0x1FFF else packet


def ipv6(segment: bytes, ext: list[tuple[int, bytes]] | None = None, pad: bytes = b"") -> bytearray:
    """``ext``: extension headers as (type, body) with body sized so that the header is 8n bytes."""
    ext = ext or []
    chain, types = b"", [t for t, _ in ext] + [6]
    for (_, body), nxt in zip(ext, types[1:]):
        hdr_len = (2 + len(body)) // 8 - 1
        chain += bytes([nxt, hdr_len]) + body
    payload = chain + segment
    hdr = (bytes([0x60, 0, 0, 0]) + len(payload).to_bytes(2, "big") + bytes([types[0], 64]) + SRC6 + DST6)
    return with_checksum(bytearray(hdr + payload + pad))


def mss_option(value: int) -> bytes:
    return bytes([2, 4]) + value.to_bytes(2, "big")


def find_mss(packet: bytes) -> int | None:
    """Offset of the first MSS option in the packet (the way a TCP stack reads options), or None."""
    off = tcp_offset(packet)
    doff = (packet[off + 12] >> 4) * 4
    o = off + 20
    while o < off + doff:
        kind = packet[o]
        if kind == 0:
            return None
        if kind == 1:
            o += 1
            continue
        if kind == 2:
            return o
        o += packet[o + 1]
    return None


def mss_of(packet: bytes) -> int | None:
    o = find_mss(packet)
    return None if o is None else int.from_bytes(packet[o + 2 : o + 4], "big")


def assert_checksum_ok(packet: bytes) -> None:
    off = tcp_offset(packet)
    assert int.from_bytes(packet[off + 16 : off + 18], "big") == full_checksum(packet)


@pytest.mark.parametrize("family", ["v4", "v6"])
@pytest.mark.parametrize(
    "options",
    [
        mss_option(1460),
        mss_option(1460) + bytes([1, 3, 3, 7]),                      # + NOP, window scale
        bytes([1]) + mss_option(1460),                               # MSS at an odd offset
        bytes([1, 1, 4, 2]) + mss_option(1460),                      # after NOPs and SACK-permitted
        bytes([4, 2, 8, 10]) + bytes(8) + bytes([1, 1]) + mss_option(65495),  # after timestamps
        bytes([1, 1, 1]) + mss_option(9000) + bytes([1, 1, 1, 1, 1]),
    ],
)
@pytest.mark.parametrize("flags", [SYN, SYN | ACK])
def test_clamps_and_fixes_checksum(family, options, flags):
    segment = tcp_segment(options, flags, payload=b"data" if flags == SYN else b"")
    packet = ipv4(segment) if family == "v4" else ipv6(segment)
    before = bytes(packet)
    assert _dp.clamp_mss(packet, 1360) is True
    assert mss_of(packet) == 1360
    assert_checksum_ok(packet)
    changed = {i for i in range(len(packet)) if packet[i] != before[i]}
    off, mss_at = tcp_offset(before), find_mss(before)
    assert changed <= {off + 16, off + 17, mss_at + 2, mss_at + 3}  # checksum and MSS value only
    assert _dp.clamp_mss(packet, 1360) is False  # idempotent


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_leaves_alone(family):
    make = ipv4 if family == "v4" else ipv6
    cases = [
        make(tcp_segment(mss_option(1200))),                         # already small enough
        make(tcp_segment(mss_option(1360))),                         # equal
        make(tcp_segment(mss_option(1460), flags=ACK)),              # not a SYN
        make(tcp_segment(mss_option(1460), flags=FIN | ACK)),
        make(tcp_segment(b"")),                                      # SYN without options
        make(tcp_segment(bytes([1, 3, 3, 7]))),                      # SYN without MSS
        make(tcp_segment(bytes([0]) + mss_option(1460))),            # MSS after EOL
        make(tcp_segment(bytes([2, 5, 5, 0xB4]))),                   # MSS with a bad length
        make(tcp_segment(bytes([8, 0]) + mss_option(1460))),         # a zero-length option stops parsing
        make(tcp_segment(bytes([8, 40]) + mss_option(1460))),        # option running past the header
    ]
    for packet in cases:
        before = bytes(packet)
        assert _dp.clamp_mss(packet, 1360) is False
        assert bytes(packet) == before


def test_ipv4_not_tcp_fragments_and_malformed():
    syn = tcp_segment(mss_option(1460))
    for packet in (
        ipv4(syn, proto=17),                    # UDP
        ipv4(syn, frag=0x0010),                 # a later fragment (offset 16*8)
        bytearray(ipv4(syn)[:30]),              # truncated (total length > buffer)
        bytearray(b"\x45" + bytes(10)),         # shorter than an IP header
        bytearray(b"\x44" + bytes(59)),         # IHL 4 (< 20 bytes)
        bytearray(b"\x55" + bytes(59)),         # version 5
        bytearray(),
    ):
        before = bytes(packet)
        assert _dp.clamp_mss(packet, 1360) is False
        assert bytes(packet) == before


def test_ipv4_first_fragment_with_more_fragments_is_clamped():
    packet = ipv4(tcp_segment(mss_option(1460)), frag=0x2000)  # MF set, offset 0
    assert _dp.clamp_mss(packet, 1000)
    assert_checksum_ok(packet)


def test_ipv4_with_ip_options_and_link_padding():
    packet = ipv4(tcp_segment(mss_option(1460)), ip_options=bytes([1, 1, 1, 0]), pad=b"\xee" * 6)
    assert _dp.clamp_mss(packet, 1400)
    assert mss_of(packet) == 1400
    assert_checksum_ok(packet)
    assert packet[-6:] == b"\xee" * 6


def test_ipv6_extension_headers():
    syn = tcp_segment(bytes([1]) + mss_option(1440))
    hop = (0, bytes([1, 4, 0, 0, 0, 0]))              # hop-by-hop, PadN
    dst = (60, bytes([1, 12]) + bytes(12))            # destination options, 16 bytes
    frag0 = (44, bytes([0, 0, 0, 0, 0, 1]))           # fragment header, offset 0
    for ext in ([hop], [dst], [hop, dst], [frag0], [hop, frag0, dst]):
        packet = ipv6(syn, ext)
        assert _dp.clamp_mss(packet, 1220), ext
        assert mss_of(packet) == 1220
        assert_checksum_ok(packet)


def test_ipv6_not_clamped():
    syn = tcp_segment(mss_option(1440))
    later_frag = ipv6(syn, [(44, bytes([0, 0x08, 0, 0, 0, 1]))])  # offset 1 (x8 bytes)
    udp = bytearray(ipv6(syn))
    udp[6] = 17
    truncated = bytearray(ipv6(syn)[:60])
    for packet in (later_frag, udp, truncated, bytearray(ipv6(syn)[:39])):
        before = bytes(packet)
        assert _dp.clamp_mss(packet, 1220) is False
        assert bytes(packet) == before


OTHER_OPTIONS = st.sampled_from([
    bytes([1]),                         # NOP
    bytes([3, 3, 7]),                   # window scale
    bytes([4, 2]),                      # SACK permitted
    bytes([8, 10]) + bytes(range(8)),   # timestamps
    bytes([30, 4, 0xAB, 0xCD]),         # unknown kind
])


@settings(max_examples=800, deadline=None)
@given(
    family=st.sampled_from(["v4", "v6"]),
    before=st.lists(OTHER_OPTIONS, max_size=4),
    after=st.lists(OTHER_OPTIONS, max_size=3),
    mss=st.integers(0, 0xFFFF),
    clamp=st.integers(0, 0xFFFF),
    flags=st.integers(0, 0xFF),
    payload=st.binary(max_size=30),
    checksum_seed=st.integers(0, 0xFFFF),
)
def test_property(family, before, after, mss, clamp, flags, payload, checksum_seed):
    options = b"".join(before) + mss_option(mss) + b"".join(after)
    if len(options) > 40:
        options = mss_option(mss)
    # a varying source port moves the checksum through its whole range, 0x0000 and 0xFFFF sums included
    segment = bytearray(tcp_segment(options, flags, payload))
    segment[0:2] = checksum_seed.to_bytes(2, "big")
    packet = ipv4(bytes(segment)) if family == "v4" else ipv6(bytes(segment))
    original = bytes(packet)
    changed = _dp.clamp_mss(packet, clamp)
    assert changed == bool(flags & SYN and mss > clamp)
    assert mss_of(packet) == (min(mss, clamp) if flags & SYN else mss)
    if changed:
        assert_checksum_ok(packet)
        # and the receiver's check: the sum over pseudo-header and segment, checksum included, is 0xFFFF
        off = tcp_offset(packet)
        tcp = bytes(packet[off:])
        assert ones_sum(pseudo_header(bytes(packet), len(tcp)) + tcp) == 0xFFFF
    else:
        assert bytes(packet) == original
