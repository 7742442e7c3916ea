"""RC4 and MPPE micro-benchmarks: ours vs cryptography's (OpenSSL) ARC4 in the same run."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from fastl2tp import _rc4

PACKET = 1400
KEY = bytes(range(16))


@pytest.mark.parametrize("impl", ["fastl2tp", "cryptography"])
def test_rc4_1400(benchmark, per_item, impl):
    """Bulk RC4 over one 1400-byte packet per call (a running keystream: stateful MPPE)."""
    buf = bytearray(os.urandom(PACKET))
    if impl == "fastl2tp":
        fn = _rc4.RC4(KEY).crypt_into
    else:
        fn = Cipher(ARC4(KEY), mode=None).encryptor().update
    benchmark(fn, buf)
    per_item(1, PACKET)


def test_rc4_1400_x64_in_c(benchmark, per_item):
    """64 packets per call through the C loop: RC4 throughput without the Python call per packet."""
    rc4 = _rc4.RC4(KEY)
    buf = bytearray(os.urandom(PACKET * 64))
    benchmark(rc4.crypt_into, buf)
    per_item(64, PACKET)


@pytest.mark.parametrize("packets_per_call", [1, 64])
def test_mppe_stateless_1400(benchmark, per_item, packets_per_call):
    """MPPE-128 stateless: a key change (SHA-1 + RC4 of the key) and RC4 over 1400 bytes, per packet."""
    keys = _rc4.MppeKeyState(KEY, 128)
    buf = bytearray(os.urandom(PACKET))
    benchmark(keys.stateless_crypt_into, buf, packets_per_call)
    per_item(packets_per_call, PACKET)


def test_mppe_stateless_1400_cryptography(benchmark, per_item):
    """The same with hashlib + cryptography and a new cipher per packet (what Python code would do)."""
    state = {"key": KEY}
    pad1, pad2 = bytes(40), b"\xf2" * 40
    packet = os.urandom(PACKET)

    def one_packet():
        session = state["key"]
        interim = hashlib.sha1(KEY + pad1 + session + pad2).digest()[:16]
        session = Cipher(ARC4(interim), mode=None).encryptor().update(interim)
        state["key"] = session
        return Cipher(ARC4(session), mode=None).encryptor().update(packet)

    benchmark(one_packet)
    per_item(1, PACKET)


def test_mppe_catch_up_per_skipped_key(benchmark, per_item):
    """A stateless receiver after a loss: one key change per lost packet (no RC4 key schedule of the
    intermediate keys), 64 per call; ns per skipped packet."""
    keys = _rc4.MppeKeyState(KEY, 128)
    benchmark(keys.skip, 64)
    per_item(64)
