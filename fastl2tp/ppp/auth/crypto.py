"""The hash and cipher arithmetic of MS-CHAP (RFC 2433, RFC 2759) and the MPPE key inputs (RFC 3079).

Functions keep the RFC pseudo-code names in snake_case. Everything here is pure: bytes in, bytes out.

Primitives and where they come from:
- MD4 (RFC 1320): OpenSSL 3 no longer offers it to ``hashlib`` and ``cryptography`` has none, so
  ``md4()`` below is a small implementation checked against the RFC 1320 §A.5 test suite. It only ever
  hashes a password or a 16-octet hash, so speed does not matter.
- DES: ``cryptography``'s TripleDES with K1 = K2 = K3, which is single DES. It lives in
  ``cryptography.hazmat.decrepit`` since cryptography 43 (the old location warns and goes away in 48);
  older releases only have the old one.
- SHA-1: ``hashlib``.

Nothing here logs, and callers must not log what these functions return.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import warnings

from cryptography.hazmat.primitives.ciphers import Cipher, modes

try:  # cryptography >= 43
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES as _TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import (
        TripleDES as _TripleDES,
    )

__all__ = [
    "challenge_hash",
    "challenge_response",
    "check_authenticator_response",
    "des_encrypt",
    "generate_authenticator_response",
    "generate_nt_response",
    "get_asymmetric_start_key",
    "get_master_key",
    "get_new_key_from_sha",
    "get_start_key_v1",
    "hash_nt_password_hash",
    "lm_challenge_response",
    "lm_password_hash",
    "md4",
    "nt_challenge_response",
    "nt_password_hash",
    "strip_domain",
]

# --- MD4 (RFC 1320) ---------------------------------------------------------------------------

_MASK = 0xFFFFFFFF


def _rotl(x: int, s: int) -> int:
    x &= _MASK
    return ((x << s) | (x >> (32 - s))) & _MASK


def md4(data: bytes) -> bytes:
    """The 16-octet MD4 digest of ``data`` (RFC 1320)."""
    msg = bytes(data)
    bit_len = (8 * len(msg)) & 0xFFFFFFFFFFFFFFFF
    msg += b"\x80" + b"\x00" * ((55 - len(msg)) % 64) + struct.pack("<Q", bit_len)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack_from("<16I", msg, off)
        aa, bb, cc, dd = a, b, c, d
        # Round 1: F(x,y,z) = xy v not(x)z; shifts 3, 7, 11, 19.
        for i in range(0, 16, 4):
            a = _rotl(a + ((b & c) | (~b & d)) + x[i], 3)
            d = _rotl(d + ((a & b) | (~a & c)) + x[i + 1], 7)
            c = _rotl(c + ((d & a) | (~d & b)) + x[i + 2], 11)
            b = _rotl(b + ((c & d) | (~c & a)) + x[i + 3], 19)
        # Round 2: G(x,y,z) = xy v xz v yz, constant 0x5A827999; shifts 3, 5, 9, 13.
        for i in range(4):
            a = _rotl(a + ((b & c) | (b & d) | (c & d)) + x[i] + 0x5A827999, 3)
            d = _rotl(d + ((a & b) | (a & c) | (b & c)) + x[i + 4] + 0x5A827999, 5)
            c = _rotl(c + ((d & a) | (d & b) | (a & b)) + x[i + 8] + 0x5A827999, 9)
            b = _rotl(b + ((c & d) | (c & a) | (d & a)) + x[i + 12] + 0x5A827999, 13)
        # Round 3: H(x,y,z) = x xor y xor z, constant 0x6ED9EBA1; shifts 3, 9, 11, 15.
        for i in (0, 2, 1, 3):
            a = _rotl(a + (b ^ c ^ d) + x[i] + 0x6ED9EBA1, 3)
            d = _rotl(d + (a ^ b ^ c) + x[i + 8] + 0x6ED9EBA1, 9)
            c = _rotl(c + (d ^ a ^ b) + x[i + 4] + 0x6ED9EBA1, 11)
            b = _rotl(b + (c ^ d ^ a) + x[i + 12] + 0x6ED9EBA1, 15)
        a = (a + aa) & _MASK
        b = (b + bb) & _MASK
        c = (c + cc) & _MASK
        d = (d + dd) & _MASK
    return struct.pack("<4I", a, b, c, d)


# --- DES with a 7-octet key (RFC 2433 App. A "DesEncrypt") -----------------------------------


def _expand_des_key(key7: bytes) -> bytes:
    """Spread 56 key bits over 8 octets, 7 bits each, with odd parity in the low bit."""
    if len(key7) != 7:
        raise ValueError("DES key must be 7 octets")
    bits = int.from_bytes(key7, "big")
    out = bytearray(8)
    for i in range(8):
        v = ((bits >> (49 - 7 * i)) & 0x7F) << 1
        out[i] = v | ((bin(v).count("1") + 1) & 1)
    return bytes(out)


def _des_ecb(key8: bytes, block: bytes) -> bytes:
    """Single DES of one 8-octet block with an 8-octet key (parity bits ignored)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # only the pre-43 fallback warns
        enc = Cipher(_TripleDES(key8 * 3), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def des_encrypt(clear: bytes, key7: bytes) -> bytes:
    """RFC 2433 DesEncrypt: one 8-octet block under a 7-octet (56-bit) key."""
    if len(clear) != 8:
        raise ValueError("DES block must be 8 octets")
    return _des_ecb(_expand_des_key(key7), clear)


# --- Password hashes and the challenge response (RFC 2433 App. A, RFC 2759 §8) ---------------


def _unicode(password: str) -> bytes:
    return password.encode("utf-16-le")


def nt_password_hash(password: str) -> bytes:
    """NtPasswordHash: MD4 of the password in UTF-16LE (16 octets)."""
    return md4(_unicode(password))


def hash_nt_password_hash(password_hash: bytes) -> bytes:
    """HashNtPasswordHash: MD4 of the NT password hash (16 octets)."""
    return md4(password_hash)


_LM_MAGIC = b"KGS!@#$%"


def lm_password_hash(password: str) -> bytes:
    """LmPasswordHash (RFC 2433 App. A): DES of "KGS!@#$%" under the upper-cased, 14-octet password.

    Characters outside Latin-1 cannot be represented in the OEM password; they become ``?`` as Windows does.
    """
    oem = password.upper().encode("latin-1", errors="replace")[:14].ljust(14, b"\x00")
    return des_encrypt(_LM_MAGIC, oem[:7]) + des_encrypt(_LM_MAGIC, oem[7:])


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """ChallengeResponse: the 8-octet challenge DES-encrypted under the 16-octet hash zero-padded to 21 (24 octets)."""
    if len(challenge) != 8 or len(password_hash) != 16:
        raise ValueError("challenge must be 8 octets and the password hash 16")
    z = password_hash + bytes(5)
    return des_encrypt(challenge, z[0:7]) + des_encrypt(challenge, z[7:14]) + des_encrypt(challenge, z[14:21])


def strip_domain(username: bytes) -> bytes:
    """The user name without a prepended ``DOMAIN\\`` (RFC 2759 §8 hashes only the user part)."""
    return username.rsplit(b"\\", 1)[-1]


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: bytes) -> bytes:
    """ChallengeHash (RFC 2759 §8.2): first 8 octets of SHA1(peer challenge | authenticator challenge | user)."""
    h = hashlib.sha1(peer_challenge + authenticator_challenge + strip_domain(username))
    return h.digest()[:8]


def generate_nt_response(
    authenticator_challenge: bytes, peer_challenge: bytes, username: bytes, password_hash: bytes
) -> bytes:
    """GenerateNTResponse (RFC 2759 §8.1), from the NT password hash rather than the password (24 octets)."""
    return challenge_response(challenge_hash(peer_challenge, authenticator_challenge, username), password_hash)


def nt_challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """The MS-CHAPv1 NT-Response (RFC 2433 App. A NtChallengeResponse): 24 octets."""
    return challenge_response(challenge, password_hash)


def lm_challenge_response(challenge: bytes, lm_hash: bytes) -> bytes:
    """The MS-CHAPv1 LM-Response (RFC 2433 App. A LmChallengeResponse): 24 octets."""
    return challenge_response(challenge, lm_hash)


_AUTH_MAGIC1 = b"Magic server to client signing constant"
_AUTH_MAGIC2 = b"Pad to make it do more than one iteration"


def _authenticator_digest(
    password_hash: bytes, nt_response: bytes, peer_challenge: bytes, authenticator_challenge: bytes, username: bytes
) -> bytes:
    digest = hashlib.sha1(hash_nt_password_hash(password_hash) + nt_response + _AUTH_MAGIC1).digest()
    chal = challenge_hash(peer_challenge, authenticator_challenge, username)
    return hashlib.sha1(digest + chal + _AUTH_MAGIC2).digest()


def generate_authenticator_response(
    password_hash: bytes, nt_response: bytes, peer_challenge: bytes, authenticator_challenge: bytes, username: bytes
) -> str:
    """GenerateAuthenticatorResponse (RFC 2759 §8.7) from the NT hash: ``"S="`` and 40 upper-case hex digits."""
    return "S=" + _authenticator_digest(
        password_hash, nt_response, peer_challenge, authenticator_challenge, username
    ).hex().upper()


def check_authenticator_response(
    password_hash: bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    username: bytes,
    received: bytes,
) -> bool:
    """CheckAuthenticatorResponse (RFC 2759 §8.8): ``received`` is the 20-octet value decoded from ``S=``."""
    expected = _authenticator_digest(password_hash, nt_response, peer_challenge, authenticator_challenge, username)
    return hmac.compare_digest(expected, bytes(received))


# --- MPPE key inputs (RFC 3079) ----------------------------------------------------------------

_MK_MAGIC1 = b"This is the MPPE Master Key"
_MK_MAGIC2 = b"On the client side, this is the send key; on the server side, it is the receive key."
_MK_MAGIC3 = b"On the client side, this is the receive key; on the server side, it is the send key."
_SHS_PAD1 = bytes(40)
_SHS_PAD2 = b"\xf2" * 40


def get_master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    """GetMasterKey (RFC 3079 §3.4): 16 octets from the hashed NT hash and the MS-CHAPv2 NT-Response."""
    return hashlib.sha1(password_hash_hash + nt_response + _MK_MAGIC1).digest()[:16]


def get_asymmetric_start_key(master_key: bytes, key_length: int, is_send: bool, is_server: bool) -> bytes:
    """GetAsymmetricStartKey (RFC 3079 §3.4): the send or receive start key of one side (8 or 16 octets).

    The client's send key is the server's receive key (Magic2), and the other way round (Magic3).
    """
    if key_length not in (8, 16):
        raise ValueError("key length must be 8 (40/56-bit) or 16 (128-bit)")
    magic = _MK_MAGIC3 if is_send == is_server else _MK_MAGIC2
    return hashlib.sha1(master_key + _SHS_PAD1 + magic + _SHS_PAD2).digest()[:key_length]


def get_new_key_from_sha(start_key: bytes, session_key: bytes, key_length: int) -> bytes:
    """GetNewKeyFromSHA (RFC 3079 §2.4/§3.5): SHA1(start | pad1 | session | pad2), truncated (the interim key).

    The RC4 step of a key change and the 40/56-bit salt belong to MPPE itself (``fastl2tp._rc4``).
    """
    digest = hashlib.sha1(start_key[:key_length] + _SHS_PAD1 + session_key[:key_length] + _SHS_PAD2).digest()
    return digest[:key_length]


def get_start_key_v1(challenge: bytes, password_hash_hash: bytes) -> bytes:
    """Get_Start_Key for MS-CHAPv1 (RFC 3079 §2.4): SHA1(hash-hash | hash-hash | challenge), 16 octets.

    This is the 128-bit initial key (pppd also truncates it for 40-bit); RFC 3079 §2.1 derives 40/56-bit
    keys from the first 8 octets of the LM hash instead.
    """
    return hashlib.sha1(password_hash_hash + password_hash_hash + challenge).digest()[:16]
