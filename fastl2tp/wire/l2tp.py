"""L2TPv2 header codec (RFC 2661 §3.1).

```
 0                   1                   2                   3
 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
|T|L|x|x|S|x|O|P|x|x|x|x|  Ver  |          Length (opt)         |
|           Tunnel ID           |           Session ID          |
|             Ns (opt)          |             Nr (opt)          |
|      Offset Size (opt)        |    Offset pad... (opt)
```

This is the pure-Python twin of the header parser in ``fastl2tp._dp`` and its test oracle. It is also
what the control plane uses to read control-message headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DecodeError

FLAG_T = 0x8000  # control message
FLAG_L = 0x4000  # length present
FLAG_S = 0x0800  # Ns/Nr present
FLAG_O = 0x0200  # offset size present
FLAG_P = 0x0100  # priority (data messages only)
VERSION_MASK = 0x000F
RESERVED_MASK = 0x30F0 | 0x0400  # the x bits of the first word
L2TP_VERSION = 2  # RFC 2661; 3 is L2TPv3 (RFC 3931), 1 is L2F
UDP_PORT = 1701


class UnsupportedVersion(DecodeError):
    """A header whose Ver field is not 2 (§3.1: such packets MUST be discarded)."""

    def __init__(self, version: int):
        self.version = version
        super().__init__(f"L2TP version {version} is not supported", offset=1, field="version")


@dataclass(frozen=True, slots=True)
class Header:
    """A decoded L2TP header. ``ns``/``nr`` are None when the S bit is clear, and so on."""

    is_control: bool
    tunnel_id: int
    session_id: int
    ns: int | None = None
    nr: int | None = None
    length: int | None = None
    offset_size: int | None = None
    priority: bool = False

    @property
    def size(self) -> int:
        """Bytes of header on the wire, offset padding included."""
        n = 6
        if self.length is not None:
            n += 2
        if self.ns is not None:
            n += 4
        if self.offset_size is not None:
            n += 2 + self.offset_size
        return n


def decode_header(data: bytes | bytearray | memoryview) -> tuple[Header, int, int]:
    """Decode the header of one datagram.

    Returns ``(header, payload_start, payload_end)``. ``payload_end`` honours the Length field (bytes
    after it are UDP padding and ignored). Control messages must carry L and S and may not carry O or P.
    """
    n = len(data)
    if n < 6:
        raise DecodeError("datagram shorter than an L2TP header", offset=0, field="header")
    flags = (data[0] << 8) | data[1]
    version = flags & VERSION_MASK
    if version != L2TP_VERSION:
        raise UnsupportedVersion(version)
    is_control = bool(flags & FLAG_T)
    pos = 2
    length = None
    if flags & FLAG_L:
        if n < 4:
            raise DecodeError("truncated length field", offset=2, field="length")
        length = (data[2] << 8) | data[3]
        pos = 4
    elif is_control:
        raise DecodeError("control message without the L bit", offset=0, field="flags")
    if n < pos + 4:
        raise DecodeError("truncated tunnel/session id", offset=pos, field="tunnel_id")
    tunnel_id = (data[pos] << 8) | data[pos + 1]
    session_id = (data[pos + 2] << 8) | data[pos + 3]
    pos += 4
    ns = nr = None
    if flags & FLAG_S:
        if n < pos + 4:
            raise DecodeError("truncated Ns/Nr", offset=pos, field="ns")
        ns = (data[pos] << 8) | data[pos + 1]
        nr = (data[pos + 2] << 8) | data[pos + 3]
        pos += 4
    elif is_control:
        raise DecodeError("control message without the S bit", offset=0, field="flags")
    offset_size = None
    if flags & FLAG_O:
        if is_control:
            raise DecodeError("control message with the O bit", offset=0, field="flags")
        if n < pos + 2:
            raise DecodeError("truncated offset size", offset=pos, field="offset_size")
        offset_size = (data[pos] << 8) | data[pos + 1]
        pos += 2 + offset_size
    priority = bool(flags & FLAG_P)
    if priority and is_control:
        raise DecodeError("control message with the P bit", offset=0, field="flags")
    end = n
    if length is not None:
        if length > n:
            raise DecodeError(f"length field {length} exceeds datagram of {n} bytes", offset=2, field="length")
        end = length
    if pos > end:
        raise DecodeError("header runs past the end of the message", offset=pos, field="offset_pad")
    return (
        Header(is_control, tunnel_id, session_id, ns, nr, length, offset_size, priority),
        pos,
        end,
    )


def encode_header(header: Header, payload_len: int) -> bytes:
    """Encode ``header`` for a payload of ``payload_len`` bytes; the Length field (if the header has
    one) is computed, whatever ``header.length`` says. Offset padding is zeros."""
    flags = L2TP_VERSION
    if header.is_control:
        flags |= FLAG_T | FLAG_L | FLAG_S
        if header.ns is None or header.nr is None:
            raise ValueError("control messages need Ns and Nr")
        if header.offset_size is not None or header.priority:
            raise ValueError("control messages carry neither offset nor priority")
    has_length = header.is_control or header.length is not None
    if has_length:
        flags |= FLAG_L
    if header.ns is not None:
        flags |= FLAG_S
    if header.offset_size is not None:
        flags |= FLAG_O
    if header.priority:
        flags |= FLAG_P
    total = header.size + (2 if has_length and header.length is None else 0) + payload_len
    if total > 0xFFFF and has_length:
        raise ValueError("message too long for the Length field")
    out = bytearray(flags.to_bytes(2, "big"))
    if has_length:
        out += total.to_bytes(2, "big")
    out += header.tunnel_id.to_bytes(2, "big") + header.session_id.to_bytes(2, "big")
    if header.ns is not None:
        out += header.ns.to_bytes(2, "big") + (header.nr or 0).to_bytes(2, "big")
    if header.offset_size is not None:
        out += header.offset_size.to_bytes(2, "big") + bytes(header.offset_size)
    return bytes(out)
