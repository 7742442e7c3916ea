"""Unit tests of fastl2tp.radius. The helpers below play the RADIUS server's side, written from the
RFCs with hashlib/hmac only (independent of pyrad and of fastl2tp.radius.packets)."""

from __future__ import annotations

import hashlib
import hmac
import struct


def attr(typ: int, value: bytes) -> bytes:
    return bytes((typ, len(value) + 2)) + value


def vsa(vendor: int, typ: int, value: bytes) -> bytes:
    return attr(26, struct.pack("!I", vendor) + bytes((typ, len(value) + 2)) + value)


def u32(n: int) -> bytes:
    return struct.pack("!I", n)


def sign_reply(code: int, identifier: int, request_authenticator: bytes, attrs: bytes, secret: bytes, *,
               with_ma: bool = True, ma_vector: bytes | None = None) -> bytes:
    """A reply as a server builds it: Message-Authenticator first (RFC 3579 §3.2, HMAC-MD5 with the
    Request Authenticator, or ``ma_vector``), then the Response Authenticator (RFC 2865 §3)."""
    if with_ma:
        attrs = attr(80, bytes(16)) + attrs
    head = struct.pack("!BBH", code, identifier, 20 + len(attrs))
    if with_ma:
        vector = request_authenticator if ma_vector is None else ma_vector
        mac = hmac.new(secret, head + vector + attrs, hashlib.md5).digest()
        attrs = attr(80, mac) + attrs[18:]
    auth = hashlib.md5(head + request_authenticator + attrs + secret).digest()
    return head + auth + attrs


def sign_request(code: int, identifier: int, attrs: bytes, secret: bytes, *, with_ma: bool = False) -> bytes:
    """Accounting-Request / Disconnect-Request / CoA-Request: authenticator MD5 over a zero one
    (RFC 2866 §3, RFC 5176 §3.5); the Message-Authenticator, if any, with a zero vector."""
    if with_ma:
        attrs = attr(80, bytes(16)) + attrs
    head = struct.pack("!BBH", code, identifier, 20 + len(attrs))
    if with_ma:
        mac = hmac.new(secret, head + bytes(16) + attrs, hashlib.md5).digest()
        attrs = attr(80, mac) + attrs[18:]
    auth = hashlib.md5(head + bytes(16) + attrs + secret).digest()
    return head + auth + attrs


def attributes(data: bytes) -> list[tuple[int | tuple[int, int], bytes]]:
    """(type or (vendor, type), value) of every attribute of a packet, Vendor-Specific opened."""
    out = []
    pos = 20
    while pos < len(data):
        typ, length = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + length]
        if typ == 26:
            vendor = struct.unpack("!I", value[:4])[0]
            vtyp, vlen = value[4], value[5]
            assert vlen == len(value) - 4, "one vendor attribute per Vendor-Specific"
            out.append(((vendor, vtyp), value[6:]))
        else:
            out.append((typ, value))
        pos += length
    assert pos == len(data)
    return out


def values(data: bytes, key) -> list[bytes]:
    return [v for k, v in attributes(data) if k == key]


class CountingRng:
    """Deterministic ``rng(n)``: 0, 1, 2, ... (mod 256) across calls."""

    def __init__(self, start: int = 0) -> None:
        self.n = start

    def __call__(self, n: int) -> bytes:
        out = bytes((self.n + k) & 0xFF for k in range(n))
        self.n += n
        return out
