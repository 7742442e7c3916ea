"""A pure-Python MPPE (RFC 3078 packets, RFC 3079 keys): the test oracle of the data plane's MPPE.

Written from the RFCs with hashlib and a plain RC4, independent of ``fastl2tp._rc4``. One direction per
object: ``MppeSender`` makes the 2-octet MPPE header + ciphertext of an inner frame (protocol + information),
``MppeReceiver`` is a strict in-order receiver used to read what the data plane sends.
"""

from __future__ import annotations

import hashlib

SHA_PAD1 = bytes(40)
SHA_PAD2 = b"\xf2" * 40
BIT_A, BIT_B, BIT_C, BIT_D = 0x80, 0x40, 0x20, 0x10


class Rc4:
    """RC4 with a running keystream (plain Python: slow, but obviously the textbook algorithm)."""

    def __init__(self, key: bytes) -> None:
        s = list(range(256))
        j = 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) & 0xFF
            s[i], s[j] = s[j], s[i]
        self.s, self.i, self.j = s, 0, 0

    def crypt(self, data: bytes) -> bytes:
        s, i, j = self.s, self.i, self.j
        out = bytearray(len(data))
        for k, byte in enumerate(data):
            i = (i + 1) & 0xFF
            j = (j + s[i]) & 0xFF
            s[i], s[j] = s[j], s[i]
            out[k] = byte ^ s[(s[i] + s[j]) & 0xFF]
        self.i, self.j = i, j
        return bytes(out)


def key_len(bits: int) -> int:
    return 16 if bits == 128 else 8


def reduce(key: bytes, bits: int) -> bytes:
    """RFC 3079 §2/§3: the 40-bit key salted with D1 26 9E, the 56-bit one with D1."""
    if bits == 40:
        return b"\xd1\x26\x9e" + key[3:]
    if bits == 56:
        return b"\xd1" + key[1:]
    return key


def get_new_key_from_sha(start: bytes, session: bytes, n: int) -> bytes:
    return hashlib.sha1(start[:n] + SHA_PAD1 + session[:n] + SHA_PAD2).digest()[:n]


def initial_session_key(start: bytes, bits: int) -> bytes:
    n = key_len(bits)
    return reduce(get_new_key_from_sha(start, start, n), bits)


def change_key(start: bytes, session: bytes, bits: int) -> bytes:
    """RFC 3078 §7.3: interim = GetNewKeyFromSHA(start, session); new = RC4(interim, interim), reduced."""
    n = key_len(bits)
    interim = get_new_key_from_sha(start, session, n)
    return reduce(Rc4(interim).crypt(interim), bits)


class _Direction:
    def __init__(self, start_key: bytes, bits: int, stateless: bool) -> None:
        self.start = start_key[: key_len(bits)]
        self.bits = bits
        self.stateless = stateless
        self.session = initial_session_key(self.start, bits)
        self.rc4 = Rc4(self.session)

    def change(self) -> None:
        self.session = change_key(self.start, self.session, self.bits)
        self.rc4 = Rc4(self.session)


class MppeSender(_Direction):
    """Counts from 0. Stateless: key change + A on every packet. Stateful: key change + A on flag packets
    (count & 0xFF == 0xFF). ``flush(dialect)`` answers a Reset-Request on the next packet the way RFC 3078
    is read by BSD ("reinit": RC4 restarted with the same key) or by pppd ("rekey": a key change)."""

    def __init__(self, start_key: bytes, bits: int, stateless: bool) -> None:
        super().__init__(start_key, bits, stateless)
        self.count = 0
        self.pending: str | None = None

    def flush(self, dialect: str) -> None:
        assert dialect in ("reinit", "rekey")
        self.pending = dialect

    def encrypt(self, inner: bytes, *, count: int | None = None) -> bytes:
        """The MPPE payload (header + ciphertext) of ``inner`` (protocol field + information)."""
        if count is not None:
            self.count = count
        c = self.count
        bits = BIT_D
        if self.stateless or (c & 0xFF) == 0xFF:
            self.change()
            bits |= BIT_A
        elif self.pending == "rekey":
            self.change()
            bits |= BIT_A
        elif self.pending == "reinit":
            self.rc4 = Rc4(self.session)
            bits |= BIT_A
        self.pending = None
        self.count = (c + 1) & 0xFFF
        return bytes([bits | c >> 8, c & 0xFF]) + self.rc4.crypt(inner)


class MppeReceiver(_Direction):
    """Reads what a correct sender sends with nothing lost (stateless or stateful, flushes as key changes
    on flag packets, and after a jump of the count to a flag packet, the way the data plane flushes)."""

    def __init__(self, start_key: bytes, bits: int, stateless: bool) -> None:
        super().__init__(start_key, bits, stateless)
        self.last = 0xFFF

    def decrypt(self, payload: bytes) -> tuple[int, int, bytes]:
        """``(flag bits, count, inner frame)``; asserts the header is well-formed."""
        bits, count = payload[0] & 0xF0, ((payload[0] & 0x0F) << 8) | payload[1]
        assert bits & BIT_D and not bits & (BIT_B | BIT_C), hex(bits)
        d = (count - self.last) & 0xFFF
        assert d >= 1
        if self.stateless:
            assert bits & BIT_A
            for _ in range(d):
                self.change()
        else:
            # flag packets skipped by a jump of the count (none when in sequence)
            for x in range(self.last + 1, self.last + d):
                if (x & 0xFF) == 0xFF:
                    self.session = change_key(self.start, self.session, self.bits)
            if (count & 0xFF) == 0xFF:
                assert bits & BIT_A, "flag packet without the A bit"
                self.change()
            else:
                assert d == 1 and not bits & BIT_A, (d, hex(bits))
        self.last = count
        return bits, count, self.rc4.crypt(payload[2:])
