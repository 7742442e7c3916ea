"""fastl2tp.radius.packets against RFC examples and an independent server side (tests/radius_unit)."""

from __future__ import annotations

import hashlib
import hmac
import struct
from ipaddress import IPv4Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrad import packet as pyrad_packet

from fastl2tp.errors import AuthError, DecodeError, LocalUsageError
from fastl2tp.ppp.auth import crypto
from fastl2tp.radius import packets as rp
from fastl2tp.radius.packets import (
    AccessRequest,
    AccountingRequest,
    AcctAuthentic,
    AcctStatusType,
    ChapPassword,
    Code,
    EncodedRequest,
    ErrorCause,
    MsChap1Response,
    MsChap2Response,
    Nas,
    PapPassword,
    TerminateCause,
)

from . import attr, attributes, sign_reply, sign_request, u32, values, vsa

h = bytes.fromhex
MS, MT = 311, 14988
SECRET = b"testing123"
RA = h("000102030405060708090a0b0c0d0e0f")
NAS = Nas(IPv4Address("192.0.2.1"), "fastl2tp")


def pap_request(**kw) -> AccessRequest:
    return AccessRequest(**{"user_name": b"alice", "credentials": PapPassword(b"secret"), "nas": NAS,
                            "calling_station_id": "198.51.100.7", "called_station_id": "192.0.2.1",
                            "acct_session_id": "81000001", **kw})


def sent_pap() -> EncodedRequest:
    return pap_request().encode(SECRET, 7, RA)


# --- RFC 2865 §7.1 ---------------------------------------------------------------------------------

RFC2865_RA = h("0f403f9473978057bd83d5cb98f4227a")
RFC2865_SECRET = b"xyzzy5461"
RFC2865_ACCEPT = h("02000026" "86fe220e7624ba2a1005f6bf9b55e0b2" "0606000000010f06000000000e06c0a80103")


def test_rfc2865_7_1_user_password_hiding():
    req = AccessRequest(b"nemo", PapPassword(b"arctangent"), Nas(IPv4Address("192.168.1.16")), nas_port=3)
    sent = req.encode(RFC2865_SECRET, 0, RFC2865_RA)
    assert values(sent.data, 2) == [h("0dbe708d93d413ce3196e43f782a0aee")]
    assert values(sent.data, 1) == [b"nemo"]
    assert values(sent.data, 4) == [h("c0a80110")]
    assert values(sent.data, 5) == [u32(3)]
    assert sent.data[4:20] == RFC2865_RA and sent.data[1] == 0


def test_rfc2865_7_1_access_accept_response_authenticator():
    assert rp.response_authenticator(RFC2865_ACCEPT, RFC2865_SECRET, RFC2865_RA) == RFC2865_ACCEPT[4:20]
    # The RFC's reply predates the Message-Authenticator: we require one (Blast-RADIUS)...
    sent = AccessRequest(b"nemo", PapPassword(b"arctangent"), Nas(IPv4Address("192.168.1.16"))).encode(
        RFC2865_SECRET, 0, RFC2865_RA)
    with pytest.raises(DecodeError, match="no Message-Authenticator"):
        rp.parse_access_reply(sent, RFC2865_ACCEPT)
    # ...and only a request sent without one would take it
    legacy = EncodedRequest(Code.ACCESS_REQUEST, 0, RFC2865_RA, b"", RFC2865_SECRET, message_authenticator=False)
    result = rp.parse_access_reply(legacy, RFC2865_ACCEPT)
    assert result.accepted and result.code == Code.ACCESS_ACCEPT
    with pytest.raises(DecodeError, match="Response Authenticator"):
        rp.parse_access_reply(legacy, RFC2865_ACCEPT[:-1] + b"\x04")


def test_long_password_is_hidden_in_chained_blocks():
    pw = b"0123456789abcdefXYZ"  # 19 octets: two blocks, the second chained on the first ciphertext
    sent = pap_request(credentials=PapPassword(pw)).encode(SECRET, 1, RA)
    (hidden,) = values(sent.data, 2)
    assert len(hidden) == 32
    b1 = hashlib.md5(SECRET + RA).digest()
    c1 = bytes(a ^ b for a, b in zip(pw[:16], b1))
    b2 = hashlib.md5(SECRET + c1).digest()
    c2 = bytes(a ^ b for a, b in zip(pw[16:].ljust(16, b"\0"), b2))
    assert hidden == c1 + c2
    with pytest.raises(AuthError):
        PapPassword(b"x" * 129)


# --- what every Access-Request carries -------------------------------------------------------------


def test_access_request_attributes_and_message_authenticator_rfc3579():
    sent = sent_pap()
    data = sent.data
    assert data[0] == Code.ACCESS_REQUEST and data[1] == 7 and struct.unpack("!H", data[2:4])[0] == len(data)
    attrs = attributes(data)
    # Message-Authenticator first (the Blast-RADIUS advice), HMAC-MD5 over the packet with it zeroed
    assert attrs[0][0] == 80 and len(attrs[0][1]) == 16
    zeroed = data[:20] + attr(80, bytes(16)) + data[38:]
    assert hmac.new(SECRET, zeroed, hashlib.md5).digest() == attrs[0][1]
    assert rp.message_authenticator(data, SECRET, RA) == attrs[0][1]
    got = dict(attrs)
    assert got[1] == b"alice"
    assert got[4] == h("c0000201") and got[32] == b"fastl2tp"
    assert got[61] == u32(5)  # NAS-Port-Type Virtual
    assert got[6] == u32(2)  # Service-Type Framed-User
    assert got[7] == u32(1)  # Framed-Protocol PPP
    assert got[31] == b"198.51.100.7" and got[30] == b"192.0.2.1" and got[44] == b"81000001"
    assert sent.authenticator == RA and data[4:20] == RA


def test_pyrad_verifies_our_message_authenticator():
    pkt = pyrad_packet.AuthPacket(packet=sent_pap().data, secret=SECRET, dict=rp.dictionary())
    assert pkt.verify_message_authenticator()
    assert pkt.PwDecrypt(pkt[2][0]) == "secret"


def test_nas_needs_an_identity_and_long_station_ids_are_cut():
    with pytest.raises(LocalUsageError):
        Nas()
    sent = pap_request(calling_station_id="9" * 400).encode(SECRET, 1, RA)
    assert values(sent.data, 31) == [b"9" * 253]
    with pytest.raises(AuthError):
        pap_request(user_name=b"u" * 254)


def test_chap_password_layout_rfc2865_7_2():
    # RFC 2865 §7.2: CHAP ID 0x16 and the 16-octet response make the 19-octet CHAP-Password
    response = h("e97557c316185895f293ff6344077275")
    challenge = h("2aee86f08d0d55969ca5978e0d3367a2")
    sent = AccessRequest(b"flopsy", ChapPassword(0x16, challenge, response), NAS).encode(SECRET, 1, RA)
    assert attr(3, values(sent.data, 3)[0]) == h("031316") + response
    assert values(sent.data, 60) == [challenge]
    assert values(sent.data, 2) == []
    with pytest.raises(AuthError):
        ChapPassword(1, challenge, response[:15])


def test_chap_password_starting_with_0x_is_sent_raw():
    # pyrad's octets encoder would hex-decode b"0x..." values: we set octets raw
    response = b"0x" + b"12345678901234"
    sent = AccessRequest(b"u", ChapPassword(0x30, b"0x1234", response), NAS).encode(SECRET, 1, RA)
    assert values(sent.data, 3) == [b"\x30" + response]
    assert values(sent.data, 60) == [b"0x1234"]


def test_mschap1_attributes_layout_rfc2548():
    challenge = h("102db5df085d3041")
    pw_hash = crypto.nt_password_hash("MyPw")
    nt = crypto.nt_challenge_response(challenge, pw_hash)
    lm = crypto.lm_challenge_response(challenge, crypto.lm_password_hash("MyPw"))
    sent = AccessRequest(b"User", MsChap1Response(0x21, challenge, lm, nt, 1), NAS).encode(SECRET, 1, RA)
    assert values(sent.data, (MS, 11)) == [challenge]
    (resp,) = values(sent.data, (MS, 1))
    assert len(resp) == 50 and resp[0] == 0x21 and resp[1] == 1 and resp[2:26] == lm and resp[26:] == nt
    # one Vendor-Specific per attribute, RFC 2548 §2: type 26, length, vendor 311, vendor type, vendor length
    raw = sent.data
    assert h("1a3a00000137") + bytes((1, 52)) + resp in raw
    with pytest.raises(AuthError):
        MsChap1Response(1, challenge[:7], lm, nt, 1)


AUTH_CH = h("5B5D7C7D7B3F2F3E3C2C602132262628")  # RFC 2759 §9.2
PEER_CH = h("21402324255E262A28295F2B3A337C7E")
NT_RESPONSE = h("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")


def mschap2_request() -> AccessRequest:
    return AccessRequest(b"User", MsChap2Response(0x42, AUTH_CH, PEER_CH, NT_RESPONSE, 0), NAS)


def test_mschap2_attributes_layout_rfc2548():
    sent = mschap2_request().encode(SECRET, 9, RA)
    assert values(sent.data, (MS, 11)) == [AUTH_CH]
    (resp,) = values(sent.data, (MS, 25))
    assert resp == bytes((0x42, 0)) + PEER_CH + bytes(8) + NT_RESPONSE
    assert len(resp) == 50


def test_mschap2_login_with_keys_from_the_server():
    """The server side as FreeRADIUS's rlm_mschap does it: check the NT-Response, answer with
    MS-CHAP2-Success and the RFC 3079 keys in MS-MPPE-Send/Recv-Key."""
    sent = mschap2_request().encode(SECRET, 9, RA)
    (resp,) = values(sent.data, (MS, 25))
    pw_hash = crypto.nt_password_hash("clientPass")
    assert crypto.generate_nt_response(AUTH_CH, resp[2:18], b"User", pw_hash) == resp[26:]
    success = crypto.generate_authenticator_response(pw_hash, resp[26:], resp[2:18], AUTH_CH, b"User")
    master = crypto.get_master_key(crypto.hash_nt_password_hash(pw_hash), resp[26:])
    send = crypto.get_asymmetric_start_key(master, 16, True, True)
    recv = crypto.get_asymmetric_start_key(master, 16, False, True)
    reply = sign_reply(2, 9, RA, vsa(MS, 26, bytes((0x42,)) + success.encode())
                       + vsa(MS, 16, rp.encrypt_salted(send, SECRET, RA, h("8001")))
                       + vsa(MS, 17, rp.encrypt_salted(recv, SECRET, RA, h("8002")))
                       + vsa(MS, 7, u32(1)) + vsa(MS, 8, u32(6)), SECRET)
    result = rp.parse_access_reply(sent, reply)
    assert result.accepted
    assert result.mschap2_success == "S=407A5589115FD0D6209F510FE9C04566932CDA56"
    assert result.mppe_send_key == h("8B7CDC149B993A1BA118CB153F56DCCB")
    assert result.mppe_recv_key == h("D5F0E9521E3EA9589645E86051C82226")
    assert result.mppe_encryption_policy == rp.MppeEncryptionPolicy.ALLOWED and not result.mppe_required
    assert result.mppe_encryption_types == rp.MppeEncryptionTypes.RC4_128 | rp.MppeEncryptionTypes.RC4_40
    assert "mppe_send_key" not in repr(result)


# --- MPPE key salting (RFC 2548 §2.4.2) -------------------------------------------------------------

# A fixed vector from OpenBSD's libradius regression tests (test25): shared secret, the Request
# Authenticator, MS-MPPE-Send-Key as sent and the key within.
OB_SECRET = b"hogehogefugafuga"
OB_RA = h("678ae6ed696e1bd10ae2fea105d46a56")
OB_ENCRYPTED = h("8036" "f4abbe2117fb3e4a7874dce91c5b0449" "8ec7720f168688562dbc88e21cab6271")
OB_KEY = h("fc6ea418373d8e90c136fae3735e37d1")


def test_mppe_key_fixed_vector():
    assert rp.decrypt_salted(OB_ENCRYPTED, OB_SECRET, OB_RA) == OB_KEY
    assert rp.encrypt_salted(OB_KEY, OB_SECRET, OB_RA, OB_ENCRYPTED[:2]) == OB_ENCRYPTED


def test_mppe_key_by_the_rfc_formula():
    """RFC 2548 §2.4.2 written out: b(1) = MD5(S + R + A), c(1) = p(1) xor b(1), b(2) = MD5(S + c(1))."""
    key = bytes(range(16))
    salt = h("8a5b")
    p = bytes((16,)) + key + bytes(15)
    b1 = hashlib.md5(SECRET + RA + salt).digest()
    c1 = bytes(x ^ y for x, y in zip(p[:16], b1))
    b2 = hashlib.md5(SECRET + c1).digest()
    c2 = bytes(x ^ y for x, y in zip(p[16:], b2))
    assert rp.encrypt_salted(key, SECRET, RA, salt) == salt + c1 + c2
    assert rp.decrypt_salted(salt + c1 + c2, SECRET, RA) == key


@given(st.binary(max_size=64), st.binary(min_size=2, max_size=2), st.binary(min_size=16, max_size=16))
def test_mppe_key_round_trip_and_pyrad_agrees(key, salt, ra):
    enc = rp.encrypt_salted(key, SECRET, ra, salt)
    assert enc[0] & 0x80 and (len(enc) - 2) % 16 == 0
    assert rp.decrypt_salted(enc, SECRET, ra) == key
    # pyrad's own salt decryption (RFC 2868 §3.5, the same scheme) reads ours
    pkt = pyrad_packet.Packet(code=2, secret=SECRET, authenticator=ra, dict=rp.dictionary())
    pkt.request_authenticator = ra
    assert pkt.SaltDecrypt(enc) == key
    # and ours reads pyrad's
    pkt2 = pyrad_packet.Packet(code=2, secret=SECRET, authenticator=ra, dict=rp.dictionary())
    pkt2.request_authenticator = ra
    assert rp.decrypt_salted(pkt2.SaltCrypt(key), SECRET, ra) == key


def test_mppe_key_malformed():
    with pytest.raises(DecodeError, match="high bit"):
        rp.decrypt_salted(b"\x00" + OB_ENCRYPTED[1:], OB_SECRET, OB_RA)
    with pytest.raises(DecodeError):
        rp.decrypt_salted(OB_ENCRYPTED[:-1], OB_SECRET, OB_RA)
    too_long = rp.encrypt_salted(b"k" * 14, SECRET, RA, h("8000"))  # one block; then claim 200 octets
    p = bytes((200,)) + b"k" * 14 + b"\0"
    forged = h("8000") + bytes(a ^ b for a, b in zip(p, hashlib.md5(SECRET + RA + h("8000")).digest()))
    assert len(forged) == len(too_long)
    with pytest.raises(DecodeError, match="key length"):
        rp.decrypt_salted(forged, SECRET, RA)


# --- reading replies ---------------------------------------------------------------------------------


def full_accept(sent: EncodedRequest) -> bytes:
    attrs = (
        attr(8, h("0a000005")) + attr(9, h("ffffff00")) + attr(88, b"pool1")
        + attr(22, b"10.1.0.0/24 10.0.0.5 1") + attr(22, b"10.2.0.0/16")
        + attr(27, u32(3600)) + attr(28, u32(300)) + attr(85, u32(60)) + attr(12, u32(1400))
        + attr(25, b"class-one") + attr(25, b"\x00\x01binary")
        + attr(18, b"Welcome, ") + attr(18, b"alice")
        + attr(97, h("0040") + h("20010db800010002")) + attr(123, h("0038") + h("20010db8aa00bb"))
        + attr(100, b"v6pool") + attr(99, b"2001:db8:5::/48 :: 1")
        + vsa(MT, 3, b"gold") + vsa(MT, 8, b"10M/20M") + vsa(MT, 19, b"paying") + vsa(MT, 22, b"pd-pool")
        + vsa(MS, 7, u32(2)) + vsa(MS, 8, u32(4))
        + attr(200, b"unknown to us") + vsa(9, 1, b"cisco-avpair=x")
    )
    return sign_reply(2, sent.identifier, sent.authenticator, attrs, SECRET)


def test_access_accept_read():
    sent = sent_pap()
    r = rp.parse_access_reply(sent, full_accept(sent))
    assert r.accepted and r.code == Code.ACCESS_ACCEPT and r.reason == ""
    assert r.framed_ip_address == IPv4Address("10.0.0.5")
    assert r.framed_ip_netmask == IPv4Address("255.255.255.0")
    assert r.framed_pool == "pool1"
    assert r.framed_routes == ("10.1.0.0/24 10.0.0.5 1", "10.2.0.0/16")
    assert (r.session_timeout_s, r.idle_timeout_s, r.acct_interim_interval_s, r.framed_mtu) == (3600, 300, 60, 1400)
    assert r.classes == (b"class-one", b"\x00\x01binary")
    assert r.reply_messages == ("Welcome, ", "alice") and r.reply_message == "Welcome, alice"
    assert r.framed_ipv6_prefixes == (IPv6Network("2001:db8:1:2::/64"),)
    assert r.delegated_ipv6_prefix == IPv6Network("2001:db8:aa00:bb00::/56")
    assert r.framed_ipv6_pool == "v6pool" and r.framed_ipv6_routes == ("2001:db8:5::/48 :: 1",)
    assert (r.mikrotik_group, r.mikrotik_rate_limit, r.mikrotik_address_list) == ("gold", "10M/20M", "paying")
    assert r.mikrotik_delegated_ipv6_pool == "pd-pool"
    assert r.mppe_required and r.mppe_encryption_types == rp.MppeEncryptionTypes.RC4_128
    assert r.mppe_send_key is None and r.mschap2_success is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.255.0.9", "224.0.0.1", "255.255.255.254", "255.255.255.255"])
def test_pool_markers(address):
    sent = sent_pap()
    reply = sign_reply(2, 7, RA, attr(8, IPv4Address(address).packed) + attr(88, b"p"), SECRET)
    r = rp.parse_access_reply(sent, reply)
    assert r.accepted and r.framed_ip_address is None and r.framed_pool == "p"


def test_access_reject_with_mschap_error():
    sent = mschap2_request().encode(SECRET, 3, RA)
    reply = sign_reply(3, 3, RA, vsa(MS, 2, b"\x42E=691 R=0 C=00000000000000000000000000000000 V=3")
                       + attr(18, b"bad password"), SECRET)
    r = rp.parse_access_reply(sent, reply)
    assert not r.accepted and r.reason == "Access-Reject" and r.code == Code.ACCESS_REJECT
    assert r.mschap_error.startswith("E=691 R=0") and r.mschap_error_code == 691
    assert r.reply_message == "bad password"


def test_access_challenge_is_a_refusal():
    sent = sent_pap()
    r = rp.parse_access_reply(sent, sign_reply(11, 7, RA, attr(24, b"state"), SECRET))
    assert not r.accepted and "Challenge" in r.reason


def test_mschap1_mppe_keys_decrypted():
    # RFC 2548 §2.4.1, as FreeRADIUS sends it: LM key (8) + NT hash hash (16), hidden like User-Password
    lm_key = h("0102030405060708")
    nt_key = crypto.hash_nt_password_hash(crypto.nt_password_hash("MyPw"))
    plain = lm_key + nt_key + bytes(8)
    b1 = hashlib.md5(SECRET + RA).digest()
    c1 = bytes(x ^ y for x, y in zip(plain[:16], b1))
    c2 = bytes(x ^ y for x, y in zip(plain[16:], hashlib.md5(SECRET + c1).digest()))
    sent = sent_pap()
    r = rp.parse_access_reply(sent, sign_reply(2, 7, RA, vsa(MS, 12, c1 + c2), SECRET))
    assert r.mschap_mppe_keys == (lm_key, nt_key)


# --- replies refused ---------------------------------------------------------------------------------


def test_reply_without_message_authenticator_refused():
    sent = sent_pap()
    reply = sign_reply(2, 7, RA, attr(8, h("0a000005")), SECRET, with_ma=False)
    with pytest.raises(DecodeError, match="Blast-RADIUS"):
        rp.parse_access_reply(sent, reply)


def test_reply_with_forged_message_authenticator_refused():
    sent = sent_pap()
    good = sign_reply(2, 7, RA, attr(8, h("0a000005")), SECRET)
    # an attacker who cannot compute the HMAC but fixes up the MD5 Response Authenticator (Blast-RADIUS)
    attrs = attr(80, b"\x55" * 16) + good[38:]
    head = good[:4]
    forged = head + hashlib.md5(head + RA + attrs + SECRET).digest() + attrs
    with pytest.raises(DecodeError, match="wrong Message-Authenticator"):
        rp.parse_access_reply(sent, forged)
    # the HMAC computed with the Response Authenticator instead of the Request Authenticator is wrong too
    wrong_vector = sign_reply(2, 7, RA, attr(8, h("0a000005")), SECRET, ma_vector=bytes(16))
    with pytest.raises(DecodeError, match="wrong Message-Authenticator"):
        rp.parse_access_reply(sent, wrong_vector)


def test_reply_with_two_or_short_message_authenticators_refused():
    sent = sent_pap()
    with pytest.raises(DecodeError, match="malformed Message-Authenticator"):
        rp.parse_access_reply(sent, sign_reply(2, 7, RA, attr(80, bytes(16)), SECRET))
    with pytest.raises(DecodeError, match="malformed Message-Authenticator"):
        rp.parse_access_reply(sent, sign_reply(2, 7, RA, attr(80, bytes(15)), SECRET, with_ma=False))


def test_reply_with_wrong_secret_identifier_code_or_proxy_state_refused():
    sent = sent_pap()
    with pytest.raises(DecodeError, match="Response Authenticator"):
        rp.parse_access_reply(sent, sign_reply(2, 7, RA, b"", b"other secret"))
    with pytest.raises(DecodeError, match="identifier"):
        rp.parse_access_reply(sent, sign_reply(2, 8, RA, b"", SECRET))
    with pytest.raises(DecodeError, match="code"):
        rp.parse_access_reply(sent, sign_reply(5, 7, RA, b"", SECRET))
    with pytest.raises(DecodeError, match="Proxy-State"):
        rp.parse_access_reply(sent, sign_reply(2, 7, RA, attr(33, b"injected"), SECRET))
    with pytest.raises(DecodeError, match="Framed-IP-Address"):
        rp.parse_access_reply(sent, sign_reply(2, 7, RA, attr(8, b"\x0a\x00\x00"), SECRET))
    with pytest.raises(DecodeError, match="Length"):
        rp.parse_access_reply(sent, sign_reply(2, 7, RA, b"", SECRET)[:-1])


def test_padding_after_length_is_ignored():
    sent = sent_pap()
    assert rp.parse_access_reply(sent, sign_reply(2, 7, RA, attr(27, u32(5)), SECRET) + b"pad").session_timeout_s == 5


# --- random input raises only DecodeError ------------------------------------------------------------

INTERESTING = [1, 8, 9, 12, 18, 22, 25, 27, 28, 33, 80, 85, 88, 97, 99, 100, 123, 200]
VENDOR_TYPES = [(MS, t) for t in (1, 2, 7, 8, 11, 12, 16, 17, 25, 26)] + [(MT, t) for t in (3, 8, 19, 22)]


@st.composite
def attribute_blobs(draw):
    out = b""
    for _ in range(draw(st.integers(0, 8))):
        value = draw(st.binary(max_size=40))
        if draw(st.booleans()):
            vendor, typ = draw(st.sampled_from(VENDOR_TYPES))
            out += vsa(vendor, typ, value)
        else:
            out += attr(draw(st.sampled_from(INTERESTING)), value)
    if draw(st.booleans()):
        out += draw(st.binary(max_size=8))  # trailing garbage
    return out


@given(st.binary(max_size=200))
def test_random_bytes_as_reply_raise_only_decode_error(data):
    sent = sent_pap()
    for parse in (rp.parse_access_reply, rp.parse_accounting_reply):
        s = sent if parse is rp.parse_access_reply else AccountingRequest(
            AcctStatusType.START, NAS, "1").encode(SECRET, 7)
        try:
            parse(s, data)
        except DecodeError:
            pass


@settings(max_examples=300)
@given(attribute_blobs(), st.sampled_from([2, 3, 11]))
def test_authentic_replies_with_random_attributes_raise_only_decode_error(attrs, code):
    """Signed correctly, so every attribute is read: a malformed one raises DecodeError, nothing else."""
    sent = sent_pap()
    try:
        result = rp.parse_access_reply(sent, sign_reply(code, 7, RA, attrs, SECRET))
    except DecodeError:
        return
    assert result.accepted == (code == 2)


@given(st.binary(max_size=200), attribute_blobs())
def test_random_dynauth_requests_raise_only_decode_error(data, attrs):
    for d in (data, sign_request(40, 1, attrs, SECRET), sign_request(43, 1, attrs, SECRET, with_ma=True)):
        try:
            rp.parse_dynauth_request(d, SECRET)
        except DecodeError:
            pass


# --- accounting ----------------------------------------------------------------------------------------


def stop_request(**kw) -> AccountingRequest:
    args = {"status_type": AcctStatusType.STOP, "nas": NAS, "acct_session_id": "81000001", "user_name": b"alice",
            "session_time_s": 3725, "input_octets": (5 << 32) + 1234, "output_octets": 99,
            "input_packets": (1 << 32) + 7, "output_packets": 8, "framed_ip_address": IPv4Address("10.0.0.5"),
            "classes": (b"c1", b"0x1234"), "terminate_cause": TerminateCause.USER_REQUEST,
            "calling_station_id": "198.51.100.7", "authentic": AcctAuthentic.RADIUS, "event_timestamp": 1700000000}
    return AccountingRequest(**{**args, **kw})


def test_accounting_stop_attributes():
    sent = stop_request().encode(SECRET, 200, delay_s=3.7)
    data = sent.data
    assert data[0] == 4 and data[1] == 200
    got = dict(attributes(data))
    assert got[40] == u32(2) and got[44] == b"81000001" and got[1] == b"alice"
    assert got[46] == u32(3725)
    assert got[42] == u32(1234) and got[52] == u32(5)  # Acct-Input-Octets + Gigawords
    assert got[43] == u32(99) and got[53] == u32(0)
    assert got[47] == u32(7) and got[48] == u32(8)  # packets wrap at 2^32
    assert got[8] == h("0a000005") and got[49] == u32(1) and got[45] == u32(1)
    assert got[55] == u32(1700000000) and got[41] == u32(3)
    assert values(data, 25) == [b"c1", b"0x1234"]  # Class echoed raw
    # RFC 2866 §3: the Request Authenticator
    assert data[4:20] == hashlib.md5(data[:4] + bytes(16) + data[20:] + SECRET).digest() == sent.authenticator
    # the Message-Authenticator of an Accounting-Request is computed with a zero authenticator
    (ma,) = values(data, 80)
    assert attributes(data)[0][0] == 80
    zeroed = data[:4] + bytes(16) + attr(80, bytes(16)) + data[38:]
    assert hmac.new(SECRET, zeroed, hashlib.md5).digest() == ma
    # and pyrad accepts it as a server would
    pkt = pyrad_packet.AcctPacket(packet=data, secret=SECRET, dict=rp.dictionary())
    assert pkt.VerifyAcctRequest() and pkt.verify_message_authenticator()


def test_accounting_on_off_and_checks():
    on = AccountingRequest(AcctStatusType.ACCOUNTING_ON, NAS).encode(SECRET, 1)
    got = dict(attributes(on.data))
    assert got[40] == u32(7) and 44 not in got and 61 not in got
    no_ma = AccountingRequest(AcctStatusType.ACCOUNTING_OFF, NAS, with_message_authenticator=False).encode(SECRET, 2)
    assert values(no_ma.data, 80) == []
    with pytest.raises(LocalUsageError):
        AccountingRequest(AcctStatusType.START, NAS)
    with pytest.raises(LocalUsageError):
        AccountingRequest(AcctStatusType.START, NAS, "1", terminate_cause=TerminateCause.ADMIN_RESET)


def test_accounting_response():
    sent = stop_request().encode(SECRET, 9)
    ok = sign_reply(5, 9, sent.authenticator, b"", SECRET, with_ma=False)
    assert rp.parse_accounting_reply(sent, ok) is None
    signed = sign_reply(5, 9, sent.authenticator, b"", SECRET, ma_vector=bytes(16))
    assert rp.parse_accounting_reply(sent, signed) is None
    with pytest.raises(DecodeError, match="Response Authenticator"):
        rp.parse_accounting_reply(sent, sign_reply(5, 9, bytes(16), b"", SECRET, with_ma=False))
    with pytest.raises(DecodeError, match="code"):
        rp.parse_accounting_reply(sent, sign_reply(2, 9, sent.authenticator, b"", SECRET))


# --- dynamic authorization (RFC 5176) ------------------------------------------------------------------


def test_disconnect_request_parsed_and_acked():
    attrs = (attr(1, b"alice") + attr(44, b"81000001") + attr(8, h("0a000005")) + attr(4, h("c0000201"))
             + attr(33, b"ps1") + attr(33, b"ps2"))
    data = sign_request(40, 17, attrs, SECRET, with_ma=True)
    req = rp.parse_dynauth_request(data, SECRET)
    assert req.code == Code.DISCONNECT_REQUEST and req.is_disconnect and req.identifier == 17
    assert req.user_name == b"alice" and req.acct_session_id == "81000001"
    assert req.framed_ip_address == IPv4Address("10.0.0.5") and req.nas_ip_address == IPv4Address("192.0.2.1")
    assert req.proxy_states == (b"ps1", b"ps2") and req.other_attributes == ()

    ack = rp.encode_dynauth_reply(req, SECRET, ack=True)
    assert ack[0] == Code.DISCONNECT_ACK and ack[1] == 17
    assert ack[4:20] == hashlib.md5(ack[:4] + data[4:20] + ack[20:] + SECRET).digest()
    assert values(ack, 33) == [b"ps1", b"ps2"]
    (ma,) = values(ack, 80)
    i = ack.index(attr(80, ma))
    zeroed = ack[:4] + data[4:20] + ack[20:i] + attr(80, bytes(16)) + ack[i + 18:]
    assert hmac.new(SECRET, zeroed, hashlib.md5).digest() == ma


def test_coa_request_nak_with_error_cause():
    attrs = attr(44, b"nope") + attr(27, u32(600)) + attr(28, u32(60)) + vsa(MT, 8, b"2M/2M") + attr(11, b"filter")
    data = sign_request(43, 5, attrs, SECRET)
    req = rp.parse_dynauth_request(data, SECRET)
    assert req.code == Code.COA_REQUEST and not req.is_disconnect
    assert (req.session_timeout_s, req.idle_timeout_s, req.mikrotik_rate_limit) == (600, 60, "2M/2M")
    assert req.other_attributes == ("Filter-Id",)
    nak = rp.encode_dynauth_reply(req, SECRET, ack=False, error_cause=ErrorCause.SESSION_CONTEXT_NOT_FOUND,
                                  with_message_authenticator=False)
    assert nak[0] == Code.COA_NAK and values(nak, 101) == [u32(503)] and values(nak, 80) == []
    assert nak[4:20] == hashlib.md5(nak[:4] + data[4:20] + nak[20:] + SECRET).digest()
    dnak = rp.encode_dynauth_reply(rp.parse_dynauth_request(sign_request(40, 6, attrs, SECRET), SECRET), SECRET,
                                   ack=False, error_cause=ErrorCause.SESSION_CONTEXT_NOT_FOUND)
    assert dnak[0] == Code.DISCONNECT_NAK


def test_dynauth_request_with_bad_authenticators_refused():
    data = sign_request(40, 1, attr(1, b"alice"), SECRET)
    with pytest.raises(DecodeError, match="Request Authenticator"):
        rp.parse_dynauth_request(data, b"wrong")
    with pytest.raises(DecodeError, match="Request Authenticator"):
        rp.parse_dynauth_request(data[:4] + bytes(16) + data[20:], SECRET)
    with pytest.raises(DecodeError, match="code"):
        rp.parse_dynauth_request(sign_request(4, 1, b"", SECRET), SECRET)
    # a Message-Authenticator present must be right
    signed = bytearray(sign_request(40, 1, attr(1, b"alice"), SECRET, with_ma=True))
    signed[22] ^= 1  # inside the HMAC value; fix up the MD5 authenticator so only the HMAC is wrong
    signed[4:20] = hashlib.md5(bytes(signed[:4]) + bytes(16) + bytes(signed[20:]) + SECRET).digest()
    with pytest.raises(DecodeError, match="Message-Authenticator"):
        rp.parse_dynauth_request(bytes(signed), SECRET)


def test_peek():
    assert rp.peek(sign_request(40, 99, b"", SECRET)) == (40, 99)
    with pytest.raises(DecodeError):
        rp.peek(b"\x28")


def test_dictionary_has_the_vendor_attributes():
    d = rp.dictionary()
    assert rp.attribute_key("MS-MPPE-Send-Key") == (MS, 16) and d["MS-MPPE-Send-Key"].encrypt == 2
    assert rp.attribute_key("Mikrotik-Rate-Limit") == (MT, 8)
    assert rp.attribute_key("Error-Cause") == 101
    assert not d.skipped_attributes
