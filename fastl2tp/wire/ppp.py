"""PPP frames, control-protocol packets and configuration-option lists (RFC 1661 §2, §5, §6).

```
PPP frame in an L2TP data message (RFC 2661 §5.4: no flags, no FCS, no async escaping):
  [FF 03] Protocol(1|2) Information...
Control-protocol packet (LCP, IPCP, IPv6CP, CCP ...; RFC 1661 §5):
  Code(1) Identifier(1) Length(2) Data(Length-4) [padding]
Configuration option (RFC 1661 §6):
  Type(1) Length(1, >= 2) Data(Length-2)
```

Pure codecs: decoding raises only :class:`fastl2tp.errors.DecodeError`; nothing here keeps state.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import DecodeError, LocalUsageError
from .buffer import Reader, Writer

ADDRESS_ALL_STATIONS = 0xFF  # RFC 1662 §3.1: the All-Stations address
CONTROL_UI = 0x03  # RFC 1662 §3.1: Unnumbered Information
ACFC_HEADER = bytes((ADDRESS_ALL_STATIONS, CONTROL_UI))

DEFAULT_MRU = 1500  # RFC 1661 §6.1: the MRU when none is negotiated
CP_HEADER_LEN = 4  # RFC 1661 §5: Code, Identifier, Length
OPTION_HEADER_LEN = 2  # RFC 1661 §6: Type, Length


class Protocol(enum.IntEnum):
    """PPP protocol numbers (RFC 1661 §2; IANA "PPP DLL Protocol Numbers")."""

    IPV4 = 0x0021  # RFC 1332
    BRIDGED = 0x0031  # RFC 3518 §4: bridged LAN frames (BCP's data protocol)
    MP = 0x003D  # RFC 1990 multilink
    IPV6 = 0x0057  # RFC 5072
    COMPRESSED = 0x00FD  # RFC 1962 compressed datagram (MPPE: RFC 3078)
    IPCP = 0x8021  # RFC 1332
    BCP = 0x8031  # RFC 3518
    IPV6CP = 0x8057  # RFC 5072
    CCP = 0x80FD  # RFC 1962
    LCP = 0xC021  # RFC 1661
    PAP = 0xC023  # RFC 1334
    LQR = 0xC025  # RFC 1989
    CHAP = 0xC223  # RFC 1994
    EAP = 0xC227  # RFC 3748


class Code(enum.IntEnum):
    """Control-protocol packet codes (RFC 1661 §5; 12-13 RFC 1570 §2; 14-15 RFC 1962 §3)."""

    CONFIGURE_REQUEST = 1
    CONFIGURE_ACK = 2
    CONFIGURE_NAK = 3
    CONFIGURE_REJECT = 4
    TERMINATE_REQUEST = 5
    TERMINATE_ACK = 6
    CODE_REJECT = 7
    PROTOCOL_REJECT = 8  # LCP only
    ECHO_REQUEST = 9  # LCP only
    ECHO_REPLY = 10  # LCP only
    DISCARD_REQUEST = 11  # LCP only
    IDENTIFICATION = 12  # LCP only, RFC 1570 §2.1
    TIME_REMAINING = 13  # LCP only, RFC 1570 §2.2
    RESET_REQUEST = 14  # CCP only, RFC 1962 §3
    RESET_ACK = 15  # CCP only, RFC 1962 §3


def is_valid_protocol(protocol: int) -> bool:
    """RFC 1661 §2: the low bit of the low octet is 1 and the low bit of the high octet is 0."""
    return 0 <= protocol <= 0xFFFF and protocol & 0x0001 == 1 and protocol & 0x0100 == 0


# --- frame header --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """A PPP frame: the protocol number and the information field that follows it."""

    protocol: int
    payload: bytes


def decode_frame(data: bytes | bytearray | memoryview) -> Frame:
    """Decode a PPP frame header; address/control (FF 03) is optional (ACFC, RFC 1661 §6.6) and the
    protocol may be one byte (PFC, RFC 1661 §6.5). Both compressions are accepted whether or not they
    were negotiated, as RFC 1661 §6.5/§6.6 recommend."""
    r = Reader(data)
    if r.remaining() >= 2 and r.data[r.pos] == ADDRESS_ALL_STATIONS and r.data[r.pos + 1] == CONTROL_UI:
        r.pos += 2
    first = r.u8("protocol")
    if first & 0x01:  # an odd first octet is a compressed (one-octet) protocol field
        protocol = first
    else:
        protocol = (first << 8) | r.u8("protocol")
        if not is_valid_protocol(protocol):
            raise DecodeError(f"invalid protocol 0x{protocol:04x}", offset=r.pos - 2, field="protocol")
    return Frame(protocol, r.rest())


def encode_frame_header(protocol: int, *, acfc: bool = False, pfc: bool = False) -> bytes:
    """The bytes before the information field. By default FF 03 and a two-octet protocol, which every
    peer accepts (SoftEther drops anything else). LCP frames never use ACFC (RFC 1661 §6.6)."""
    if not is_valid_protocol(protocol):
        raise LocalUsageError(f"invalid PPP protocol 0x{protocol:04x}")
    head = b"" if acfc and protocol != Protocol.LCP else ACFC_HEADER
    if pfc and protocol < 0x100:
        return head + bytes((protocol,))
    return head + protocol.to_bytes(2, "big")


def encode_frame(frame: Frame, *, acfc: bool = False, pfc: bool = False) -> bytes:
    return encode_frame_header(frame.protocol, acfc=acfc, pfc=pfc) + frame.payload


# --- control-protocol packets --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpPacket:
    """A control-protocol packet (RFC 1661 §5). ``code`` is an int: unknown codes must survive
    decoding so that they can be Code-Rejected."""

    code: int
    identifier: int
    data: bytes = b""


def decode_cp(payload: bytes | bytearray | memoryview) -> CpPacket:
    """Decode a control packet. Length is checked against the buffer; octets after Length are
    padding and ignored (RFC 1661 §5)."""
    r = Reader(payload)
    code = r.u8("code")
    identifier = r.u8("identifier")
    length = r.u16("length")
    if length < CP_HEADER_LEN:
        raise DecodeError(f"length {length} < {CP_HEADER_LEN}", offset=2, field="length")
    data = r.bytes(length - CP_HEADER_LEN, "data")
    return CpPacket(code, identifier, data)


def encode_cp(packet: CpPacket) -> bytes:
    length = CP_HEADER_LEN + len(packet.data)
    if not (0 <= packet.code <= 0xFF and 0 <= packet.identifier <= 0xFF) or length > 0xFFFF:
        raise LocalUsageError(f"cannot encode {packet!r}")
    w = Writer()
    w.u8(packet.code)
    w.u8(packet.identifier)
    w.u16(length)
    w.bytes(packet.data)
    return w.getvalue()


# --- configuration options -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Option:
    """One configuration option as it is on the wire. Unknown options stay in this raw form, which is
    exactly what a Configure-Reject must echo (RFC 1661 §5.4)."""

    type: int
    data: bytes = b""


def decode_options(data: bytes | bytearray | memoryview) -> tuple[Option, ...]:
    """Decode the option list of a Configure-Request/Ack/Nak/Reject. An option whose Length is below 2
    or runs past the end raises DecodeError (RFC 1661 §6: Length includes Type and Length)."""
    r = Reader(data)
    out: list[Option] = []
    while not r.eof():
        start = r.pos
        typ = r.u8("option type")
        length = r.u8("option length")
        if length < OPTION_HEADER_LEN:
            raise DecodeError(f"option {typ} length {length} < 2", offset=start + 1, field="option length")
        if length - OPTION_HEADER_LEN > r.remaining():
            raise DecodeError(f"option {typ} length {length} runs past the end", offset=start + 1,
                              field="option length")
        out.append(Option(typ, r.bytes(length - OPTION_HEADER_LEN, "option data")))
    return tuple(out)


def encode_options(options: Iterable[Option]) -> bytes:
    w = Writer()
    for opt in options:
        if not 0 <= opt.type <= 0xFF or len(opt.data) > 0xFF - OPTION_HEADER_LEN:
            raise LocalUsageError(f"cannot encode option {opt.type} of {len(opt.data)} bytes")
        w.u8(opt.type)
        w.u8(OPTION_HEADER_LEN + len(opt.data))
        w.bytes(opt.data)
    return w.getvalue()


# --- LCP packet bodies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MagicData:
    """The body of Echo-Request/Echo-Reply/Discard-Request/Identification (RFC 1661 §5.8, RFC 1570):
    a Magic-Number and opaque data."""

    magic: int
    data: bytes = b""


def decode_magic_data(data: bytes) -> MagicData:
    r = Reader(data)
    return MagicData(r.u32("magic-number"), r.rest())


def encode_magic_data(body: MagicData) -> bytes:
    return (body.magic & 0xFFFFFFFF).to_bytes(4, "big") + body.data


@dataclass(frozen=True, slots=True)
class ProtocolRejectBody:
    """The body of an LCP Protocol-Reject (RFC 1661 §5.7): the rejected protocol and information."""

    protocol: int
    information: bytes = b""


def decode_protocol_reject(data: bytes) -> ProtocolRejectBody:
    r = Reader(data)
    return ProtocolRejectBody(r.u16("rejected-protocol"), r.rest())


def encode_protocol_reject(body: ProtocolRejectBody) -> bytes:
    return (body.protocol & 0xFFFF).to_bytes(2, "big") + body.information
