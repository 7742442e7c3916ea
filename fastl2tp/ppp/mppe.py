"""MPPE keys (RFC 3079) and a pure-Python reference of MPPE packets (RFC 3078 §3-§8).

Keys: :func:`derive_keys` turns the MS-CHAP key material of an authentication
(:class:`~fastl2tp.ppp.auth.MppeKeyMaterial`) into :class:`MppeKeys` for the negotiated strength and
our side of the MS-CHAP exchange: the send/receive *start* keys (RFC 3079 §2.4/§3.4, 8 octets for
40/56-bit, 16 for 128-bit) and the *initial session* keys (GetNewKeyFromSHA(start, start), then the
salt of the weak variants: ``D1 26 9E`` over the first three octets for 40-bit, ``D1`` over the first
for 56-bit; RFC 3079 §2.1/§3.1). That frozen value is what the runtime hands the data plane.

Key change (RFC 3078 §7.3): interim = GetNewKeyFromSHA(start, session); session = RC4(interim,
interim); salted again for 40/56-bit. Stateless mode (H bit) changes the key before *every* packet
(so packet 0 is already sent with the first changed key); stateful mode changes it on each "flag"
packet (coherency count low octet 0xFF) and on the first packet after a CCP Reset-Request, and sets
the flushed bit (A) on those packets; otherwise its RC4 stream runs on from packet to packet.

The packet classes (:class:`MppeEncryptor`, :class:`MppeDecryptor`) are the *test oracle* of the
Cython data path (``fastl2tp._dp``/``_rc4``), written for clarity, one Python object per packet:
never use them on the data path. Their behaviour follows the Linux ``ppp_mppe`` module, which is what
pppd peers run: coherency count starting at 0, the first packet of a stateful session not flushed,
late stateless packets (more than half the count space behind) discarded, and in stateful mode a lost
packet puts the receiver in a discard state until a flushed packet arrives (the caller sends the CCP
Reset-Request when ``reset_needed`` becomes True). Unlike Linux, a stateless packet that repeats the
last coherency count is dropped (it would decrypt to garbage with a used key stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher

try:  # cryptography >= 43
    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4 as _ARC4
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import ARC4 as _ARC4

from ..errors import LocalUsageError
from .auth import MppeKeyMaterial
from .auth.crypto import get_new_key_from_sha

__all__ = [
    "CCOUNT_SPACE",
    "FLAG_A_FLUSHED",
    "FLAG_B",
    "FLAG_C_COMPRESSED",
    "FLAG_D_ENCRYPTED",
    "SALT_40",
    "SALT_56",
    "MppeDecryptor",
    "MppeEncryptor",
    "MppeKeys",
    "change_key",
    "derive_keys",
    "initial_session_key",
    "key_length",
    "rc4",
    "salt",
    "split_protocol",
]

KEY_BITS = (40, 56, 128)
SALT_40 = b"\xd1\x26\x9e"  # RFC 3079 §2.1/§3.1: the first 3 octets of a 40-bit key
SALT_56 = b"\xd1"  # RFC 3079 §2.2/§3.2: the first octet of a 56-bit key

# The MPPE header (RFC 3078 §3): four flag bits and a 12-bit coherency count, in two octets.
FLAG_A_FLUSHED = 0x80  # the key changed and RC4 was reinitialised before this packet
FLAG_B = 0x40  # MPPC: history reset (never set by MPPE alone)
FLAG_C_COMPRESSED = 0x20  # MPPC compressed (never: we refuse MPPC)
FLAG_D_ENCRYPTED = 0x10
CCOUNT_SPACE = 0x1000
HEADER_LEN = 2


def key_length(bits: int) -> int:
    """Octets of a key of ``bits`` strength: 8 for 40/56-bit, 16 for 128-bit."""
    if bits not in KEY_BITS:
        raise LocalUsageError(f"MPPE key strength must be 40, 56 or 128 bits, not {bits}")
    return 16 if bits == 128 else 8


def salt(key: bytes, bits: int) -> bytes:
    """Reduce an 8-octet key to 40 or 56 effective bits (a 128-bit key is returned as is)."""
    if bits == 40:
        return SALT_40 + key[3:8]
    if bits == 56:
        return SALT_56 + key[1:8]
    return bytes(key[: key_length(bits)])


def rc4(key: bytes, data: bytes) -> bytes:
    """One RC4 encryption (= decryption) of ``data`` from a fresh key schedule."""
    return Cipher(_ARC4(bytes(key)), mode=None).encryptor().update(bytes(data))


def initial_session_key(start_key: bytes, bits: int) -> bytes:
    """The session key before the first key change: GetNewKeyFromSHA(start, start), salted."""
    n = key_length(bits)
    return salt(get_new_key_from_sha(start_key[:n], start_key[:n], n), bits)


def change_key(start_key: bytes, session_key: bytes, bits: int) -> bytes:
    """One MPPE key change (RFC 3078 §7.3): the next session key."""
    n = key_length(bits)
    interim = get_new_key_from_sha(start_key[:n], session_key[:n], n)
    return salt(rc4(interim, interim), bits)


@dataclass(frozen=True, slots=True)
class MppeKeys:
    """The keys of one MPPE session from our point of view; handed by the runtime to the data plane.

    ``send_*`` encrypt what we send, ``recv_*`` decrypt what the peer sends. ``*_start`` are the
    master (start) keys that every key change goes back to; ``*_session`` the initial session keys
    (already salted for 40/56-bit). ``bits`` is 40, 56 or 128; ``stateless`` the H bit. Secret:
    none of the keys appears in ``repr``.
    """

    send_start: bytes = field(repr=False)
    recv_start: bytes = field(repr=False)
    send_session: bytes = field(repr=False)
    recv_session: bytes = field(repr=False)
    bits: int
    stateless: bool

    def __post_init__(self) -> None:
        n = key_length(self.bits)
        for name in ("send_start", "recv_start", "send_session", "recv_session"):
            if len(getattr(self, name)) != n:
                raise LocalUsageError(f"MppeKeys.{name}: {len(getattr(self, name))} octets, expected {n}")

    @property
    def key_length(self) -> int:
        return key_length(self.bits)

    @property
    def encoding(self) -> str:
        """RouterOS style: ``MPPE128 stateless``, ``MPPE40 stateful``."""
        return f"MPPE{self.bits} {'stateless' if self.stateless else 'stateful'}"


def derive_keys(material: MppeKeyMaterial, *, is_server: bool, bits: int, stateless: bool) -> MppeKeys:
    """MppeKeys from MS-CHAP key material. ``is_server``: we were the MS-CHAP authenticator (RFC 3079
    §3.3's IsServer; for an L2TP LNS that authenticates its peer, True). Raises LocalUsageError for
    material without keys."""
    n = key_length(bits)
    send, recv = material.start_keys(is_server=is_server, key_length=n)
    return MppeKeys(
        send_start=bytes(send),
        recv_start=bytes(recv),
        send_session=initial_session_key(send, bits),
        recv_session=initial_session_key(recv, bits),
        bits=bits,
        stateless=stateless,
    )


def split_protocol(plain: bytes) -> tuple[int, bytes]:
    """(PPP protocol, payload) of a decrypted MPPE payload; the protocol may be compressed (PFC)."""
    if not plain:
        raise ValueError("empty MPPE payload")
    if plain[0] & 1:
        return plain[0], plain[1:]
    if len(plain) < 2:
        raise ValueError("truncated protocol field")
    return int.from_bytes(plain[:2], "big"), plain[2:]


# --- the reference packet codec (test oracle of the data plane) -------------------------------------


class _Direction:
    def __init__(self, start_key: bytes, bits: int, stateless: bool, session_key: bytes | None = None):
        self.bits = bits
        self.stateless = stateless
        self.start = bytes(start_key[: key_length(bits)])
        self.session = session_key if session_key is not None else initial_session_key(self.start, bits)
        self.ccount = CCOUNT_SPACE - 1  # so that the first packet carries count 0
        self.key_changes = 0
        self._stream = Cipher(_ARC4(self.session), mode=None).encryptor()

    def rekey(self) -> None:
        self.session = change_key(self.start, self.session, self.bits)
        self.key_changes += 1
        self._stream = Cipher(_ARC4(self.session), mode=None).encryptor()

    def crypt(self, data: bytes) -> bytes:
        return self._stream.update(bytes(data))


class MppeEncryptor(_Direction):
    """Builds MPPE packets (the information field of PPP protocol 0x00FD) from one direction's keys:
    ``MppeEncryptor(keys.send_start, keys.bits, keys.stateless)``."""

    def __init__(self, start_key: bytes, bits: int, stateless: bool, session_key: bytes | None = None):
        super().__init__(start_key, bits, stateless, session_key)
        self._flush_next = False

    def reset(self) -> None:
        """The peer sent a CCP Reset-Request (stateful mode): the next packet changes key and is flushed."""
        self._flush_next = True

    def encrypt(self, plain: bytes) -> bytes:
        """``plain`` is the PPP protocol field and the payload (e.g. ``00 21`` + an IPv4 packet)."""
        self.ccount = (self.ccount + 1) % CCOUNT_SPACE
        flushed = self.stateless or (self.ccount & 0xFF) == 0xFF or self._flush_next
        if flushed:
            self.rekey()
            self._flush_next = False
        flags = FLAG_D_ENCRYPTED | (FLAG_A_FLUSHED if flushed else 0)
        header = ((flags << 8) | self.ccount).to_bytes(2, "big")
        return header + self.crypt(plain)


class MppeDecryptor(_Direction):
    """Decrypts MPPE packets of one direction: ``MppeDecryptor(keys.recv_start, keys.bits,
    keys.stateless)``. ``decrypt`` returns the plaintext (protocol field + payload) or None for a
    packet that must be dropped, counting why in ``counters``. In stateful mode ``reset_needed``
    turns True when a loss is detected: send a CCP Reset-Request and set it back to False."""

    def __init__(self, start_key: bytes, bits: int, stateless: bool, session_key: bytes | None = None):
        super().__init__(start_key, bits, stateless, session_key)
        self.discarding = False
        self.reset_needed = False
        self.counters: dict[str, int] = {}

    def _drop(self, why: str) -> None:
        self.counters[why] = self.counters.get(why, 0) + 1

    def decrypt(self, packet: bytes) -> bytes | None:
        if len(packet) < HEADER_LEN + 1:
            self._drop("short")
            return None
        flags = packet[0] & 0xF0
        ccount = int.from_bytes(packet[:2], "big") & 0x0FFF
        flushed = bool(flags & FLAG_A_FLUSHED)
        if not flags & FLAG_D_ENCRYPTED or flags & FLAG_C_COMPRESSED:
            self._drop("not_encrypted" if not flags & FLAG_D_ENCRYPTED else "compressed")
            return None
        if self.stateless:
            if not flushed:
                self._drop("stateless_not_flushed")
                return None
            ahead = (ccount - self.ccount) % CCOUNT_SPACE
            if ahead == 0 or ahead > CCOUNT_SPACE // 2:
                self._drop("late")  # behind us (or a repeat): its key is gone
                return None
            while self.ccount != ccount:  # one key change per packet sent, lost ones included
                self.rekey()
                self.ccount = (self.ccount + 1) % CCOUNT_SPACE
        else:
            if (ccount & 0xFF) == 0xFF and not flushed:
                self._drop("flag_not_flushed")
                return None
            if not self.discarding:
                self.ccount = (self.ccount + 1) % CCOUNT_SPACE
                if ccount != self.ccount:
                    self.discarding = True
                    self.reset_needed = True
                    self._drop("lost")
                    return None
            elif not flushed:
                self._drop("discarding")
                return None
            else:  # the first flushed packet after a loss: catch up on the flag packets we missed
                while (ccount & ~0xFF) != (self.ccount & ~0xFF):
                    self.rekey()
                    self.ccount = (self.ccount + 0x100) % CCOUNT_SPACE
                self.discarding = False
                self.ccount = ccount
            if flushed:
                self.rekey()
        return self.crypt(packet[HEADER_LEN:])
