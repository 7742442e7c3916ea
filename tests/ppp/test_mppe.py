"""MPPE keys (RFC 3079 §2.5/§3.5 vectors) and the reference packet codec (RFC 3078), checked against the
encrypted pings of pppd's captures (linux-xl2tpd-pppd, user ex / password lkjrht): the keys recomputed
from the captured MS-CHAP exchange must decrypt every 0x00FD frame to an IPv4 ICMP echo."""

from __future__ import annotations

import pytest

from fastl2tp.errors import LocalUsageError
from fastl2tp.ppp.auth import MppeKeyMaterial, crypto
from fastl2tp.ppp.mppe import (
    MppeDecryptor,
    MppeEncryptor,
    MppeKeys,
    change_key,
    derive_keys,
    initial_session_key,
    rc4,
    salt,
    split_protocol,
)
from fastl2tp.wire.auth import (
    AuthMethod,
    ChapChallenge,
    ChapResponse,
    decode_chap,
    decode_mschap1_response,
    decode_mschap2_response,
)
from tests.pcaputil import TRACES, PppCapture, ppp_frames

h = bytes.fromhex
# RFC 3079 §3.5: the server's send start key (= the client's receive start key) from MasterKey FDECE371...
MASTER = h("FDECE3717A8C838CB388E527AE3CDD31")
SERVER_SEND_128 = h("8B7CDC149B993A1BA118CB153F56DCCB")
LNS, LAC = "192.0.2.10", "192.0.2.20"


# --- keys ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits,session,cipher", [
    (40, "D1269EC49FA62E3E", "929137917E5803D668D75898"),  # §3.5.1
    (56, "D15C00C49FA62E3E", "3F106833FA448DA842BC57B8"),  # §3.5.2 (the RFC prints ...5758: an erratum)
    (128, "405CB2247A7956E6E211007AE27B22D4", "81848317DF68846272FB5ABE"),  # §3.5.3
])
def test_rfc3079_section_3_5_session_keys_and_sample_message(bits: int, session: str, cipher: str) -> None:
    keys = derive_keys(MppeKeyMaterial(AuthMethod.MSCHAP2, master_key=MASTER), is_server=True, bits=bits,
                       stateless=True)
    n = 16 if bits == 128 else 8
    assert keys.send_start == SERVER_SEND_128[:n]
    assert keys.send_session == h(session) == initial_session_key(SERVER_SEND_128, bits)
    assert rc4(keys.send_session, b"test message") == h(cipher)
    # the client's view is the mirror image
    client = derive_keys(MppeKeyMaterial(AuthMethod.MSCHAP2, master_key=MASTER), is_server=False, bits=bits,
                         stateless=True)
    assert (client.recv_start, client.recv_session) == (keys.send_start, keys.send_session)
    assert (client.send_start, client.send_session) == (keys.recv_start, keys.recv_session)
    assert keys.key_length == n and keys.encoding == f"MPPE{bits} stateless"


def test_rfc3079_section_2_5_mschapv1_keys() -> None:
    """MS-CHAPv1 (RFC 3079 §2.5.3): one start key for both directions, the 128-bit session key."""
    hh = crypto.hash_nt_password_hash(crypto.nt_password_hash("clientPass"))
    material = MppeKeyMaterial(AuthMethod.MSCHAP1, password_hash_hash=hh, challenge=h("102DB5DF085D3041"))
    keys = derive_keys(material, is_server=True, bits=128, stateless=False)
    assert keys.send_start == keys.recv_start == h("A8947850CFC0ACC1D1789FB62DDCDDB0")
    assert keys.send_session == keys.recv_session == initial_session_key(keys.send_start, 128)
    assert keys.encoding == "MPPE128 stateful"


def test_salts_and_key_change() -> None:
    key = bytes(range(1, 9))
    assert salt(key, 40) == b"\xd1\x26\x9e" + key[3:]
    assert salt(key, 56) == b"\xd1" + key[1:]
    k1 = change_key(SERVER_SEND_128, initial_session_key(SERVER_SEND_128, 128), 128)
    interim = crypto.get_new_key_from_sha(SERVER_SEND_128, initial_session_key(SERVER_SEND_128, 128), 16)
    assert k1 == rc4(interim, interim) and len(k1) == 16
    assert change_key(SERVER_SEND_128, initial_session_key(SERVER_SEND_128, 40), 40)[:3] == b"\xd1\x26\x9e"


def test_keys_are_secret_and_checked() -> None:
    keys = derive_keys(MppeKeyMaterial(AuthMethod.MSCHAP2, master_key=MASTER), is_server=True, bits=128,
                       stateless=True)
    assert SERVER_SEND_128.hex() not in repr(keys).lower() and "8B7C" not in repr(keys).upper()
    with pytest.raises(LocalUsageError):
        MppeKeys(b"x" * 8, b"x" * 8, b"x" * 8, b"x" * 8, bits=128, stateless=True)
    with pytest.raises(LocalUsageError):
        derive_keys(MppeKeyMaterial(AuthMethod.MSCHAP2), is_server=True, bits=128, stateless=True)
    with pytest.raises(LocalUsageError):
        derive_keys(MppeKeyMaterial(AuthMethod.MSCHAP2, master_key=MASTER), is_server=True, bits=64,
                    stateless=True)


# --- the reference codec -----------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [40, 56, 128])
@pytest.mark.parametrize("stateless", [True, False], ids=["stateless", "stateful"])
def test_key_change_sequence_over_512_packets(bits: int, stateless: bool) -> None:
    """Round trip over two full flag periods; stateless changes the key every packet, stateful every 256."""
    start = SERVER_SEND_128
    tx, rx = MppeEncryptor(start, bits, stateless), MppeDecryptor(start, bits, stateless)
    for i in range(600):
        plain = b"\x00\x21" + i.to_bytes(2, "big") * 30
        packet = tx.encrypt(plain)
        count = int.from_bytes(packet[:2], "big") & 0xFFF
        assert count == i % 4096
        flushed = bool(packet[0] & 0x80)
        assert packet[0] & 0x10 and flushed == (stateless or (i & 0xFF) == 0xFF)
        assert rx.decrypt(packet) == plain
    assert tx.key_changes == rx.key_changes == (600 if stateless else 2)
    # the session key after n changes is the n-fold change_key of the initial one
    expected = initial_session_key(start, bits)
    for _ in range(tx.key_changes):
        expected = change_key(start, expected, bits)
    assert tx.session == rx.session == expected


def test_stateless_loss_reorder_and_duplicates() -> None:
    tx, rx = MppeEncryptor(SERVER_SEND_128, 128, True), MppeDecryptor(SERVER_SEND_128, 128, True)
    packets = [tx.encrypt(b"\x00\x21" + bytes([i]) * 20) for i in range(10)]
    assert rx.decrypt(packets[0]) == b"\x00\x21" + bytes([0]) * 20
    assert rx.decrypt(packets[3]) == b"\x00\x21" + bytes([3]) * 20  # 1 and 2 lost: keys caught up
    assert rx.decrypt(packets[2]) is None and rx.decrypt(packets[3]) is None  # late, repeated
    assert rx.decrypt(packets[4]) == b"\x00\x21" + bytes([4]) * 20
    assert rx.counters == {"late": 2}
    unflushed = bytes([packets[5][0] & 0x7F]) + packets[5][1:]
    assert rx.decrypt(unflushed) is None and rx.counters["stateless_not_flushed"] == 1
    assert rx.decrypt(packets[5]) == b"\x00\x21" + bytes([5]) * 20


def test_stateful_loss_discards_until_the_flushed_packet_after_a_reset() -> None:
    tx, rx = MppeEncryptor(SERVER_SEND_128, 128, False), MppeDecryptor(SERVER_SEND_128, 128, False)
    sent = [tx.encrypt(b"\x00\x21" + bytes([i & 0xFF]) * 20) for i in range(300)]
    for p in sent[:10]:
        assert rx.decrypt(p) is not None
    assert rx.decrypt(sent[11]) is None and rx.reset_needed and rx.discarding  # 10 lost
    rx.reset_needed = False
    for p in sent[12:]:  # everything else up to 299 (255 is a flag packet: flushed, resynchronises)
        out = rx.decrypt(p)
        if int.from_bytes(p[:2], "big") & 0xFFF < 255:
            assert out is None
        else:
            assert out == b"\x00\x21" + bytes([int.from_bytes(p[:2], "big") & 0xFF]) * 20
    assert not rx.discarding
    # a CCP Reset-Request makes the next packet flushed, which resynchronises a discarding receiver
    lost = tx.encrypt(b"\x00\x21lost")
    assert lost and rx.decrypt(tx.encrypt(b"\x00\x21next")) is None and rx.discarding
    tx.reset()
    flushed = tx.encrypt(b"\x00\x21after reset")
    assert flushed[0] & 0x80 and rx.decrypt(flushed) == b"\x00\x21after reset"
    assert rx.decrypt(tx.encrypt(b"\x00\x21then")) == b"\x00\x21then"


def test_split_protocol() -> None:
    assert split_protocol(b"\x00\x21abc") == (0x21, b"abc")
    assert split_protocol(b"\x21abc") == (0x21, b"abc")  # PFC
    with pytest.raises(ValueError):
        split_protocol(b"")


# --- the captures ------------------------------------------------------------------------------------


def _capture_keys(caps: list[PppCapture], bits: int) -> MppeKeys:
    """The LAC's (MS-CHAP client's) keys, recomputed from the captured challenge/response and lkjrht."""
    chap = [decode_chap(c.payload) for c in caps if c.protocol == 0xC223]
    challenge = next(p for p in chap if isinstance(p, ChapChallenge))
    response = next(p for p in chap if isinstance(p, ChapResponse))
    hh = crypto.hash_nt_password_hash(crypto.nt_password_hash("lkjrht"))
    if len(challenge.value) == 16:
        r2 = decode_mschap2_response(response.value)
        material = MppeKeyMaterial(AuthMethod.MSCHAP2, master_key=crypto.get_master_key(hh, r2.nt_response))
    else:
        r1 = decode_mschap1_response(response.value)
        assert r1.use_nt
        material = MppeKeyMaterial(AuthMethod.MSCHAP1, password_hash_hash=hh, challenge=challenge.value)
    return derive_keys(material, is_server=False, bits=bits, stateless=True)


def _is_icmp_echo(plain: bytes, icmp_type: int) -> bool:
    protocol, ip = split_protocol(plain)
    return protocol == 0x21 and ip[0] >> 4 == 4 and ip[9] == 1 and ip[(ip[0] & 0xF) * 4] == icmp_type


def test_first_encrypted_ping_of_mschapv2_mppe128_decrypts() -> None:
    caps = ppp_frames(TRACES / "linux-xl2tpd-pppd/mschapv2-mppe128.pcap")
    keys = _capture_keys(caps, 128)
    rx = MppeDecryptor(keys.send_start, 128, stateless=True)
    frames = [c for c in caps if c.protocol == 0x00FD and c.src == LAC]
    # the LAC's first encrypted frame is an IPv6 router solicitation, the next its first ping
    plain = rx.decrypt(frames[0].payload)
    assert plain is not None and split_protocol(plain)[0] == 0x57
    plain = rx.decrypt(frames[1].payload)
    assert plain is not None and _is_icmp_echo(plain, 8)  # an IPv4 ICMP echo request
    _, ip = split_protocol(plain)
    assert ip[12:16] == bytes([10, 0, 103, 2]) and ip[16:20] == bytes([10, 0, 103, 1])


@pytest.mark.parametrize("name,bits", [("mschapv2-mppe128", 128), ("mschapv2-mppe40", 40),
                                       ("mschapv1-mppe128", 128)])
def test_every_encrypted_frame_of_the_captures_decrypts(name: str, bits: int) -> None:
    caps = ppp_frames(TRACES / f"linux-xl2tpd-pppd/{name}.pcap")
    keys = _capture_keys(caps, bits)
    from_lac = MppeDecryptor(keys.send_start, bits, stateless=True)
    from_lns = MppeDecryptor(keys.recv_start, bits, stateless=True)
    seen = 0
    for c in caps:
        if c.protocol != 0x00FD:
            continue
        plain = (from_lac if c.src == LAC else from_lns).decrypt(c.payload)
        assert plain is not None, c.index
        protocol, _ = split_protocol(plain)
        assert protocol in (0x21, 0x57), c.index  # IPv4 pings (and IPv6 router solicitations)
        if protocol == 0x21:
            assert _is_icmp_echo(plain, 8) or _is_icmp_echo(plain, 0)
        seen += 1
    assert seen >= 14
    # and our encryptor, fed the same plaintext, produces the LAC's bytes
    tx = MppeEncryptor(keys.send_start, bits, stateless=True)
    check = MppeDecryptor(keys.send_start, bits, stateless=True)
    for c in caps:
        if c.protocol == 0x00FD and c.src == LAC:
            assert tx.encrypt(check.decrypt(c.payload)) == c.payload
