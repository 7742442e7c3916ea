"""Bridged LAN frames of BCP (RFC 3518 §4; the traffic services of RFC 1638 §3): the pure twin of
what the data path will do per frame, and its test oracle.

```
PPP protocol 0x0031 (Protocol.BRIDGED), information field:
  |F|I|Z|B| Pads |  MAC Type  | [pad octet, non-802.3 types only] | LAN frame ... | [LAN FCS] | [Pads]
  F    0x80  the LAN FCS (4 octets) follows the LAN frame
  I    0x40  a LAN-ID field is present (RFC 1638 LAN-Identification: obsolete, never negotiated
             by us; such a frame is refused)
  Z    0x20  IEEE 802.3 tinygram: the zero pad was removed; the receiver restores it to the 60-octet
             minimum (RFC 1638 §3.3, Tinygram-Compression)
  B    0x10  a bridge control packet (RFC 3518 Bridge-Control-Packet-Indicator)
  Pads 0x0F  octets of padding after the frame (and its FCS) that the receiver strips
MAC Type: 1 IEEE 802.3/Ethernet (canonical), 2 802.4, 3 802.5 non-canonical, 4 FDDI non-canonical,
          11 802.5 canonical, 12 FDDI canonical. Only Ethernet goes through a TAP device; the others
          decode (with their pad octet) so that they can be counted and dropped.
```

So an Ethernet frame without FCS travels as ``00 01`` + the frame (``BRIDGED_ETHERNET_HEADER``).
The PPP header (protocol 0x0031) is the link's business, as for every other payload codec here.
Decoding raises only :class:`fastl2tp.errors.DecodeError`; bad arguments to the encoder raise
:class:`fastl2tp.errors.LocalUsageError`.
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass

from ..errors import DecodeError, LocalUsageError

BRIDGED_HEADER_LEN = 2  # flags, MAC type (IEEE 802.3 has no pad octet)
ETHERNET_HEADER_LEN = 14  # destination, source, type/length
ETHERNET_MIN_LEN = 60  # the IEEE 802.3 minimum frame without FCS (64 with it)
LAN_FCS_LEN = 4
PADS_MASK = 0x0F


class BcpFlag(enum.IntFlag):
    """The flag bits of the bridged-frame header's first octet (RFC 3518 §4)."""

    F = 0x80  # LAN FCS present
    I = 0x40  # LAN-ID present (RFC 1638; obsolete)
    Z = 0x20  # 802.3 pad zero-filled (tinygram compressed)
    B = 0x10  # bridge control packet


class MacType(enum.IntEnum):
    """MAC types of the bridged-frame header and of the MAC-Support option (RFC 3518 §4, §5.3)."""

    IEEE_802_3 = 1  # IEEE 802.3/Ethernet, canonical addresses
    IEEE_802_4 = 2  # canonical addresses
    IEEE_802_5_NONCANONICAL = 3
    FDDI_NONCANONICAL = 4
    IEEE_802_5 = 11  # canonical addresses
    FDDI = 12  # canonical addresses


MAC_TYPES = frozenset(int(t) for t in MacType)
# Every MAC type but 802.3 has a pad octet before the frame, to align its Frame Control field.
_PADDED_TYPES = MAC_TYPES - {MacType.IEEE_802_3}

BRIDGED_ETHERNET_HEADER = bytes((0, MacType.IEEE_802_3))  # no flags, IEEE 802.3: the common case

# IEEE 802.1D reserved group addresses 01-80-C2-00-00-00..0F (BPDUs, LACP, 802.1X, LLDP ...): what a
# sender marks with B once the peer negotiated the Bridge-Control-Packet-Indicator.
_BRIDGE_GROUP_PREFIX = bytes.fromhex("0180c20000")


@dataclass(frozen=True, slots=True)
class BridgedFrame:
    """A decoded bridged frame. ``frame`` is the LAN frame from its destination address (802.3) or
    Frame Control field (the others) on, without LAN FCS and with a tinygram's pad restored; ``fcs``
    is the LAN FCS as carried (F), ``pads`` the trailing padding that was stripped."""

    frame: bytes
    mac_type: int = MacType.IEEE_802_3
    fcs: bytes | None = None
    zero_padded: bool = False
    bridge_control: bool = False
    pads: int = 0

    @property
    def is_ethernet(self) -> bool:
        return self.mac_type == MacType.IEEE_802_3

    def fcs_ok(self) -> bool | None:
        """Whether the carried LAN FCS matches the frame; None when no FCS was carried."""
        return None if self.fcs is None else self.fcs == lan_fcs(self.frame)


def lan_fcs(frame: bytes | bytearray | memoryview) -> bytes:
    """The IEEE 802.3 FCS of ``frame`` as it goes on the wire: CRC-32, least significant octet first."""
    return (zlib.crc32(frame) & 0xFFFFFFFF).to_bytes(4, "little")


def is_bridge_control(frame: bytes | bytearray | memoryview) -> bool:
    """An Ethernet frame to one of the IEEE 802.1D reserved group addresses (01-80-C2-00-00-0x)."""
    return len(frame) >= 6 and bytes(frame[:5]) == _BRIDGE_GROUP_PREFIX and frame[5] <= 0x0F


def encode_bridged_frame(
    ethernet_frame: bytes | bytearray | memoryview,
    mac_type: int = MacType.IEEE_802_3,
    fcs: bool = False,
    *,
    tinygram: bool = False,
    bridge_control: bool = False,
    pads: int = 0,
) -> bytes:
    """The information field of a PPP frame of protocol 0x0031 carrying ``ethernet_frame`` (a LAN frame
    without FCS). ``fcs``: append the LAN FCS (computed here) and set F. ``tinygram``: an 802.3 frame
    of at most 60 octets loses its trailing zeros (never its 14-octet header) and gets Z; the FCS then
    covers the frame as the receiver restores it. ``bridge_control`` sets B; ``pads`` (0..15) appends
    that many zero octets of padding."""
    frame = bytes(ethernet_frame)
    if mac_type not in MAC_TYPES:
        raise LocalUsageError(f"bridged frame: unknown MAC type {mac_type}")
    if not 0 <= pads <= PADS_MASK:
        raise LocalUsageError(f"bridged frame: {pads} pad octets, at most {PADS_MASK}")
    minimum = ETHERNET_HEADER_LEN if mac_type == MacType.IEEE_802_3 else 1
    if len(frame) < minimum:
        raise LocalUsageError(f"bridged frame: LAN frame of {len(frame)} octets, at least {minimum}")
    flags = pads
    if bridge_control:
        flags |= BcpFlag.B
    body = frame
    if tinygram:
        if mac_type != MacType.IEEE_802_3:
            raise LocalUsageError("bridged frame: tinygram compression is for IEEE 802.3 frames only")
        if len(frame) <= ETHERNET_MIN_LEN:
            frame = frame.ljust(ETHERNET_MIN_LEN, b"\0")  # what the receiver will restore
            body = frame[:ETHERNET_HEADER_LEN] + frame[ETHERNET_HEADER_LEN:].rstrip(b"\0")
            flags |= BcpFlag.Z
    head = bytes((flags | (BcpFlag.F if fcs else 0), mac_type))
    if mac_type in _PADDED_TYPES:
        head += b"\0"
    return head + body + (lan_fcs(frame) if fcs else b"") + bytes(pads)


def decode_bridged_frame(data: bytes | bytearray | memoryview, *, check_fcs: bool = False) -> BridgedFrame:
    """Decode the information field of a PPP frame of protocol 0x0031. ``check_fcs``: a carried LAN
    FCS that does not match is a DecodeError (by default it is only split off)."""
    data = bytes(data)
    if len(data) < BRIDGED_HEADER_LEN:
        raise DecodeError(f"bridged frame of {len(data)} octets", offset=0, field="bcp header")
    flags, mac_type = data[0], data[1]
    if flags & BcpFlag.I:
        raise DecodeError("bridged frame with a LAN-ID (LAN-Identification is not negotiated)", offset=0,
                          field="bcp flags")
    pos = BRIDGED_HEADER_LEN
    if mac_type in _PADDED_TYPES:
        pos += 1
    elif mac_type != MacType.IEEE_802_3:
        raise DecodeError(f"unknown MAC type {mac_type}", offset=1, field="mac type")
    pads = flags & PADS_MASK
    end = len(data) - pads
    if end < pos:
        raise DecodeError(f"{pads} pad octets in a bridged frame of {len(data)} octets", offset=0,
                          field="pads")
    body = data[pos:end]
    fcs = None
    if flags & BcpFlag.F:
        if len(body) < LAN_FCS_LEN:
            raise DecodeError("bridged frame too short for its LAN FCS", offset=pos, field="lan fcs")
        body, fcs = body[:-LAN_FCS_LEN], body[-LAN_FCS_LEN:]
    zero_padded = bool(flags & BcpFlag.Z)
    if zero_padded:
        if mac_type != MacType.IEEE_802_3:
            raise DecodeError("tinygram flag on a non-802.3 frame", offset=0, field="bcp flags")
        body = body.ljust(ETHERNET_MIN_LEN, b"\0")
    minimum = ETHERNET_HEADER_LEN if mac_type == MacType.IEEE_802_3 else 1
    if len(body) < minimum:
        raise DecodeError(f"LAN frame of {len(body)} octets, at least {minimum}", offset=pos, field="lan frame")
    if check_fcs and fcs is not None and fcs != lan_fcs(body):
        raise DecodeError("LAN FCS mismatch", offset=end - LAN_FCS_LEN, field="lan fcs")
    return BridgedFrame(body, mac_type, fcs, zero_padded, bool(flags & BcpFlag.B), pads)
