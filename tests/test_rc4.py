"""fastl2tp._rc4: RC4 (RFC 6229 vectors, cryptography's ARC4), SHA-1 (FIPS 180 vectors, hashlib) and
the MPPE key change (RFC 3079 §3.5 vectors, a pure-Python reference over 512 key changes)."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp import _rc4

# --- RFC 6229 §2: keystream (plaintext of zeros) at offsets, 32 bytes from each ---------------------------

RFC6229: dict[str, dict[int, str]] = {
    # 40-bit
    "0102030405": {
        0: "b2396305f03dc027ccc3524a0a1118a86982944f18fc82d589c403a47a0d0919",
        240: "28cb1132c96ce286421dcaadb8b69eae1cfcf62b03eddb641d77dfcf7f8d8c93",
        496: "42b7d0cdd918a8a33dd51781c81f40416459844432a7da923cfb3eb4980661f6",
        752: "ec10327bde2beefd18f9277680457e22eb62638d4f0ba1fe9fca20e05bf8ff2b",
        1008: "45129048e6a0ed0b56b490338f078da530abbcc7c20b01609f23ee2d5f6bb7df",
        1520: "3294f744d8f9790507e70f62e5bbceead8729db41882259bee4f825325f5a130",
        2032: "1eb14a0c13b3bf47fa2a0ba93ad45b8bcc582f8ba9f265e2b1be9112e975d2d7",
        3056: "f2e30f9bd102ecbf75aaade9bc35c43cec0e11c479dc329dc8da7968fe965681",
        4080: "068326a2118416d21f9d04b2cd1ca050ff25b58995996707e51fbdf08b34d875",
    },
    # 56-bit
    "01020304050607": {
        0: "293f02d47f37c9b633f2af5285feb46be620f1390d19bd84e2e0fd752031afc1",
        240: "914f02531c9218810df60f67e338154cd0fdb583073ce85ab83917740ec011d5",
        1520: "d2aa902bd42d0d7cfd340cd45810529f78b272c96e42eab4c60bd914e39d06e3",
        4080: "f3172ceffc3b3d997c85ccd5af1a950ce74b0b9731227fd37c0ec08a47ddd8b8",
    },
    # 64-bit
    "0102030405060708": {
        0: "97ab8a1bf0afb96132f2f67258da15a88263efdb45c4a18684ef87e6b19e5b09",
        240: "9636ebc9841926f4f7d1f362bddf6e18d0a990ff2c05fef5b90373c9ff4b870a",
        4080: "d5fa5a3469d29aaaf83d23589db8c85b3fb46e2c8f0f068edce8cdcd7dfc5862",
    },
    # 128-bit
    "0102030405060708090a0b0c0d0e0f10": {
        0: "9ac7cc9a609d1ef7b2932899cde41b975248c4959014126a6e8a84f11d1a9e1c",
        240: "065902e4b620f6cc36c8589f66432f2bd39d566bc6bce3010768151549f3873f",
        496: "b6d1e6c4a5e4771cad79538df295fb11c68c1d5c559a974123df1dbc52a43b89",
        752: "c5ecf88de897fd57fed301701b82a259eccbe13de1fcc91c11a0b26c0bc8fa4d",
        1008: "e7a72574f8782ae26aabcf9ebcd66065bdf0324e6083dcc6d3cedd3ca8c53c16",
        1520: "b40110c4190b5622a96116b0017ed297ffa0b514647ec04f6306b892ae661181",
        2032: "d03d1bc03cd33d70dff9fa5d71963ebd8a44126411eaa78bd51e8d87a8879bf5",
        3056: "fabeb76028ade2d0e48722e46c4615a3c05d88abd50357f935a63c59ee537623",
        4080: "ff38265c1642c1abe8d3c2fe5e572bf8a36a4c301ae8ac13610ccbc12256cacc",
    },
    # 256-bit
    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20": {
        0: "eaa6bd25880bf93d3f5d1e4ca2611d91cfa45c9f7e714b54bdfa80027cb14380",
        1520: "40f250b26d1f096a4afd4c340a5888153e34135c79db010200767651cf263073",
        4080: "a13a7c79c7e119b5ab0296ab28c300b9f3e4c0a2e02d1d01f7f0a74618af2b48",
    },
    # 40-bit, second key set
    "833222772a": {
        0: "80ad97bdc973df8a2e879e92a497efda20f060c2f2e5126501d3d4fea10d5fc0",
        240: "faa148e99046181fec6b2085f3b20ed9f0daf5bab3d596839857846f73fbfe5a",
        2032: "e7119bd6dd9b22afe8f89585432881e2785b60fd7ec4e9fcb6545f350d660fab",
        4080: "6349d126a37afcba89794f9804914fdcbf42c3018c2f7c66bfde524975768115",
    },
    # 128-bit, second key set
    "ebb46227c6cc8b37641910833222772a": {
        0: "720c94b63edf44e131d950ca211a5a30c366fdeacf9ca80436be7c358424d20b",
        240: "b3394a40aabf75cba42282ef25a0059f4847d81da4942dbc249defc48c922b9f",
        1008: "b60595514f24bc9fe522a6cad7393644b515a8c5011754f59003058bdb81514e",
        4080: "a2221a11b833ccb498a59540f0545f4a5bbeb4787d59e5373fdbea6c6f75c29b",
    },
}


@pytest.mark.parametrize("key_hex", sorted(RFC6229))
def test_rfc6229_one_call(key_hex):
    stream = _rc4.RC4(bytes.fromhex(key_hex)).crypt(bytes(4112))
    for offset, expected in RFC6229[key_hex].items():
        assert stream[offset : offset + 32].hex() == expected, f"key {key_hex} at {offset}"


@pytest.mark.parametrize("key_hex", sorted(RFC6229))
def test_rfc6229_in_odd_pieces(key_hex):
    """The same keystream through many calls of odd sizes (the 8-byte loop and its byte tail)."""
    rc4 = _rc4.RC4(bytes.fromhex(key_hex))
    pieces, total, size = [], 0, 1
    while total < 4112:
        n = min(size, 4112 - total)
        pieces.append(rc4.crypt(bytes(n)))
        total += n
        size = size % 13 + 1
    stream = b"".join(pieces)
    for offset, expected in RFC6229[key_hex].items():
        assert stream[offset : offset + 32].hex() == expected


def test_crypt_into_in_place_matches_crypt():
    data = bytes(range(256)) * 7
    buf = bytearray(data)
    _rc4.RC4(b"Key").crypt_into(buf)
    assert bytes(buf) == _rc4.RC4(b"Key").crypt(data)
    mv = memoryview(buf)[3:1000]
    _rc4.RC4(b"k2").crypt_into(mv)  # a non-bytes writable buffer, at an unaligned offset
    assert bytes(buf[3:1000]) == _rc4.RC4(b"k2").crypt(_rc4.RC4(b"Key").crypt(data)[3:1000])


def test_wikipedia_vector():
    assert _rc4.RC4(b"Key").crypt(b"Plaintext").hex().upper() == "BBF316E8D940AF0AD3"


@pytest.mark.parametrize("bad", [b"", bytes(257)])
def test_key_length_is_checked(bad):
    with pytest.raises(ValueError):
        _rc4.RC4(bad)


def test_read_only_buffer_is_refused_for_in_place():
    with pytest.raises(BufferError):
        _rc4.RC4(b"k").crypt_into(b"immutable")


def _arc4(key: bytes, data: bytes) -> bytes:
    return Cipher(ARC4(key), mode=None).encryptor().update(data)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from([5, 7, 8, 10, 16, 20, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       data=st.binary(max_size=3000),
       cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6))
def test_against_cryptography(key, data, cuts):
    """Same output as OpenSSL's RC4 (through cryptography, which takes these key sizes only), also when
    fed in arbitrary pieces."""
    expected = _arc4(key, data)
    assert _rc4.RC4(key).crypt(data) == expected
    rc4 = _rc4.RC4(key)
    bounds = sorted({0, len(data), *[c for c in cuts if c <= len(data)]})
    out = b"".join(rc4.crypt(data[a:b]) for a, b in itertools.pairwise(bounds))
    assert out == expected


# --- SHA-1 (FIPS 180 / RFC 3174 vectors) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "message, digest",
    [
        (b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        (b"a" * 1_000_000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
        (b"0123456701234567012345670123456701234567012345670123456701234567" * 10,
         "dea356a2cddd90c7a7ecedc5ebb563934f460452"),
    ],
)
def test_sha1_vectors(message, digest):
    assert _rc4.sha1(message).hex() == digest


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_sha1_against_hashlib(data):
    assert _rc4.sha1(data) == hashlib.sha1(data).digest()


@pytest.mark.parametrize("n", [55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129])
def test_sha1_padding_boundaries(n):
    data = bytes((i * 7) & 0xFF for i in range(n))
    assert _rc4.sha1(data) == hashlib.sha1(data).digest()


# --- MPPE: a pure-Python reference ----------------------------------------------------------------------

SHA_PAD1 = bytes(40)
SHA_PAD2 = b"\xf2" * 40


def py_rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) & 0xFF
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for byte in data:
        i = (i + 1) & 0xFF
        j = (j + s[i]) & 0xFF
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) & 0xFF])
    return bytes(out)


def py_get_new_key_from_sha(start: bytes, session: bytes, key_len: int) -> bytes:
    return hashlib.sha1(start[:key_len] + SHA_PAD1 + session[:key_len] + SHA_PAD2).digest()[:key_len]


def py_reduce(key: bytes, bits: int) -> bytes:
    if bits == 40:
        return b"\xd1\x26\x9e" + key[3:]
    if bits == 56:
        return b"\xd1" + key[1:]
    return key


def py_key_len(bits: int) -> int:
    return 16 if bits == 128 else 8


def py_initial_key(start: bytes, bits: int) -> bytes:
    n = py_key_len(bits)
    return py_reduce(py_get_new_key_from_sha(start, start, n), bits)


def py_change_key(start: bytes, session: bytes, bits: int) -> bytes:
    n = py_key_len(bits)
    interim = py_get_new_key_from_sha(start, session, n)
    return py_reduce(py_rc4(interim, interim), bits)


# --- RFC 3079 §3.5 (MS-CHAPv2 example, the server's send key) ----------------------------------------------

RFC3079_START_KEY = bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")


@pytest.mark.parametrize(
    "bits, session_key, encrypted",
    [
        # §3.5.1, §3.5.3: SendSessionKey and rc4(SendSessionKey, "test message")
        (40, "D1269EC49FA62E3E", "929137917E5803D668D75898"),
        (128, "405CB2247A7956E6E211007AE27B22D4", "81848317DF68846272FB5ABE"),
        # §3.5.2: the session key; the printed ciphertext's last octet is an RFC misprint (58 for B8),
        # so the ciphertext is checked against OpenSSL's RC4 instead
        (56, "D15C00C49FA62E3E", None),
    ],
)
def test_rfc3079_initial_session_keys(bits, session_key, encrypted):
    keys = _rc4.MppeKeyState(RFC3079_START_KEY, bits)
    assert keys.bits == bits
    assert keys.session_key.hex().upper() == session_key
    assert _rc4.initial_session_key(RFC3079_START_KEY, bits).hex().upper() == session_key
    ciphertext = keys.crypt(b"test message")
    assert ciphertext == _arc4(bytes.fromhex(session_key), b"test message")
    if encrypted is not None:
        assert ciphertext.hex().upper() == encrypted


def test_get_new_key_from_sha_matches_reference():
    start, session = bytes(range(16)), bytes(range(100, 116))
    for n in (8, 16):
        assert _rc4.get_new_key_from_sha(start, session, n) == py_get_new_key_from_sha(start, session, n)


@pytest.mark.parametrize("bits", [40, 56, 128])
def test_512_key_changes_against_reference(bits):
    """The key change sequence of RFC 3078 §7.3, and a stateless packet encrypted after each."""
    start = hashlib.sha1(b"master key %d" % bits).digest()[:16]
    keys = _rc4.MppeKeyState(start, bits)
    ref = py_initial_key(start, bits)
    assert keys.session_key == ref
    packet = bytes(range(256)) * 2
    for n in range(512):
        following = py_change_key(start, ref, bits)
        assert _rc4.change_key(start, ref, bits) == following
        keys.change_key()
        ref = following
        assert keys.session_key == ref, f"key change {n + 1}"
        if n % 16 == 0:
            assert keys.crypt(packet) == py_rc4(ref, packet)
        else:
            assert keys.crypt(packet) == _arc4(ref, packet)


@pytest.mark.parametrize("bits", [40, 56, 128])
def test_stateless_crypt_into_is_change_key_then_rc4(bits):
    start = bytes(range(1, 17))
    keys = _rc4.MppeKeyState(start, bits)
    ref = py_initial_key(start, bits)
    buf = bytearray(b"x" * 1400)
    expected = bytes(buf)
    for _ in range(5):
        ref = py_change_key(start, ref, bits)
        expected = _arc4(ref, expected)
    keys.stateless_crypt_into(buf, 5)
    assert bytes(buf) == expected
    assert keys.session_key == ref


def test_stateful_keystream_runs_on_and_rekey_restarts_it():
    keys = _rc4.MppeKeyState(RFC3079_START_KEY, 128)
    session = keys.session_key
    first = keys.crypt(b"a" * 10) + keys.crypt(b"b" * 10)
    assert first == _arc4(session, b"a" * 10 + b"b" * 10)
    keys.rekey()
    assert keys.crypt(b"a" * 10) == first[:10]


@pytest.mark.parametrize("bits", [0, 39, 64, 256])
def test_bad_strength_is_refused(bits):
    with pytest.raises(ValueError):
        _rc4.MppeKeyState(bytes(16), bits)
    with pytest.raises(ValueError):
        _rc4.change_key(bytes(16), bytes(16), bits)


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        _rc4.MppeKeyState(bytes(8), 128)
    with pytest.raises(ValueError):
        _rc4.change_key(bytes(16), bytes(7), 40)
    with pytest.raises(ValueError):
        _rc4.get_new_key_from_sha(bytes(16), bytes(16), 17)


@settings(max_examples=40, deadline=None)
@given(key=st.binary(min_size=1, max_size=256), data=st.binary(max_size=300))
def test_any_key_length_against_python_reference(key, data):
    assert _rc4.RC4(key).crypt(data) == py_rc4(key, data)


@pytest.mark.parametrize("bits", [40, 56, 128])
def test_skip_is_repeated_change_key(bits):
    """``skip(n)`` (the receiver catching up on n lost stateless packets, one RC4 key schedule at the end)
    lands on the same session key and keystream as n key changes."""
    start = hashlib.sha1(b"skip %d" % bits).digest()[:16]
    for n in (0, 1, 2, 7, 300):
        stepped = _rc4.MppeKeyState(start, bits)
        for _ in range(n):
            stepped.change_key()
        skipped = _rc4.MppeKeyState(start, bits)
        skipped.skip(n)
        assert skipped.session_key == stepped.session_key
        assert skipped.crypt(bytes(64)) == stepped.crypt(bytes(64))
    with pytest.raises(ValueError):
        _rc4.MppeKeyState(start, bits).skip(-1)
