"""The FreeRADIUS fixture (issue 7) proven with FreeRADIUS's own ``radclient`` and, for the
Message-Authenticator, with a hand-made Access-Request: PAP with the configured reply attributes,
rejects, CHAP, MS-CHAPv1, MS-CHAPv2 with MS-CHAP2-Success and MPPE keys (checked against RFC 2759/3079),
accounting records in the detail file, and a backup server beside the primary."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct

import pytest

from fastl2tp.ppp.auth import crypto
from tests.netns import NetnsFactory, requires_netns
from tests.radius_server import (
    RadiusClient,
    RadiusUser,
    Value,
    parse_detail,
    users_file,
)

SECRET = "testing123"

ALICE_REPLY: dict[str, Value | list[Value]] = {
    "Framed-IP-Address": "10.77.0.2",
    "Framed-Route": ["10.78.0.0/24", "10.79.0.0/16 0.0.0.0 5"],
    "Framed-Pool": "pool-a",
    "Session-Timeout": 3600,
    "Idle-Timeout": 300,
    "Acct-Interim-Interval": 60,
    "Class": "gold-class",
    "Mikrotik-Group": "vip",
    "Mikrotik-Rate-Limit": "10M/20M",
    "Reply-Message": 'Welcome, "alice"',
}

USERS = [
    RadiusUser("alice", "alice-pw", ALICE_REPLY),
    RadiusUser("carol", "carol-pw", {"Framed-IP-Address": "10.77.0.3"}),
    RadiusUser("mallory", "mallory-pw", {"Reply-Message": "account disabled"}, reject=True),
]


def in_netns(fn):
    """``@pytest.mark.netns`` and skipped where namespaces cannot be made (as ``tests.netns.netns_only``)."""
    return pytest.mark.netns(requires_netns(fn))


class _RadiusNetns(NetnsFactory):
    PREFIX = f"fl2r-{os.getpid()}-"


@pytest.fixture
def rns():
    """One namespace ``fl2r-<pid>-<n>-radius`` (the ``netns`` machinery with this suite's prefix)."""
    factory = _RadiusNetns()
    try:
        yield factory.new("radius")
    finally:
        factory.cleanup()


@pytest.fixture
def server(rns, freeradius):  # rns first: the server stops before its namespace goes
    """FreeRADIUS on 127.0.0.1:1812/1813 inside a fresh namespace."""
    return freeradius(USERS, clients=[("127.0.0.1", SECRET)], ns=rns)


# --- pure parts ------------------------------------------------------------------------------------


def test_users_file_text():
    text = users_file([RadiusUser("u", 'p"w', {"Framed-Route": ["a", "b"], "Session-Timeout": 5}, reject=True)])
    assert 'u\tCleartext-Password := "p\\"w", Auth-Type := Reject\n' in text
    assert '\tFramed-Route += "a",\n\tFramed-Route += "b",\n\tSession-Timeout += 5\n' in text
    with pytest.raises(ValueError):
        users_file([RadiusUser("a b", "x")])


def test_parse_detail():
    text = ("Tue Nov 25 13:21:37 2025\n\tAcct-Status-Type = Start\n\tUser-Name = \"a\\\"b\"\n\tClass = 0x01\n\n"
            "Tue Nov 25 13:21:38 2025\n\tAcct-Status-Type = Stop\n\tClass = 0x01\n\tClass = 0x02\n\n")
    recs = parse_detail(text)
    assert [r["Acct-Status-Type"] for r in recs] == ["Start", "Stop"]
    assert recs[0]["User-Name"] == 'a"b' and recs[0].header.startswith("Tue")
    assert recs[1].getall("Class") == ["0x01", "0x02"]


# --- against the real server -----------------------------------------------------------------------



@in_netns
def test_pap_accept_carries_the_reply_attributes(server):
    r = server.radclient("auth", {"User-Name": "alice", "User-Password": "alice-pw", "NAS-Port-Type": "Virtual"})
    assert r.code == "Access-Accept", r.stdout + r.stderr
    assert r["Framed-IP-Address"] == "10.77.0.2"
    assert r.getall("Framed-Route") == ["10.78.0.0/24", "10.79.0.0/16 0.0.0.0 5"]
    assert r["Framed-Pool"] == "pool-a"
    assert r["Session-Timeout"] == "3600" and r["Idle-Timeout"] == "300"
    assert r["Acct-Interim-Interval"] == "60"
    assert r["Class"] == "0x" + b"gold-class".hex()
    assert r["Mikrotik-Group"] == "vip" and r["Mikrotik-Rate-Limit"] == "10M/20M"  # vendor 14988 known
    assert r["Reply-Message"] == 'Welcome, "alice"'
    assert "Message-Authenticator" in r  # added by the generated post-auth (and checked by radclient)
    # Status-Server is answered too (a client may probe a dead server with it)
    assert server.radclient("status", {"Message-Authenticator": b"\0"}).code == "Access-Accept"


@in_netns
def test_rejects(server):
    wrong = server.radclient("auth", {"User-Name": "alice", "User-Password": "nope"})
    assert wrong.code == "Access-Reject"
    assert "Framed-IP-Address" not in wrong and "Class" not in wrong  # attr_filter.access_reject
    disabled = server.radclient("auth", {"User-Name": "mallory", "User-Password": "mallory-pw"})
    assert disabled.code == "Access-Reject" and disabled["Reply-Message"] == "account disabled"
    unknown = server.radclient("auth", {"User-Name": "nobody", "User-Password": "x"})
    assert unknown.code == "Access-Reject"
    bad_secret = server.radclient("auth", {"User-Name": "alice", "User-Password": "alice-pw"}, secret="wrong",
                                  timeout=0.5)
    assert bad_secret.code != "Access-Accept"  # an accept signed with the right secret fails radclient's check


def _chap(password: bytes, ident: int = 7, challenge: bytes = bytes(range(16))) -> dict:
    return {"CHAP-Password": bytes([ident]) + hashlib.md5(bytes([ident]) + password + challenge).digest(),
            "CHAP-Challenge": challenge}


@in_netns
def test_chap(server):
    ok = server.radclient("auth", {"User-Name": "carol", **_chap(b"carol-pw")})
    assert ok.code == "Access-Accept" and ok["Framed-IP-Address"] == "10.77.0.3", ok.stdout + ok.stderr
    assert server.radclient("auth", {"User-Name": "carol", **_chap(b"other")}).code == "Access-Reject"


def _mschap_v1(password: str, challenge: bytes, ident: int = 1) -> dict:
    nt = crypto.nt_challenge_response(challenge, crypto.nt_password_hash(password))
    return {"MS-CHAP-Challenge": challenge, "MS-CHAP-Response": bytes([ident, 1]) + bytes(24) + nt}


def _mschap_v2(user: str, password: str, auth_chal: bytes, peer_chal: bytes, ident: int = 9) -> tuple[dict, bytes]:
    nt = crypto.generate_nt_response(auth_chal, peer_chal, user.encode(), crypto.nt_password_hash(password))
    resp = bytes([ident, 0]) + peer_chal + bytes(8) + nt
    return {"MS-CHAP-Challenge": auth_chal, "MS-CHAP2-Response": resp}, nt


def _octets(value: str) -> bytes:
    assert value.startswith("0x"), value
    return bytes.fromhex(value[2:])


@in_netns
def test_mschap_v1(server):
    chal = bytes.fromhex("0102030405060708")
    ok = server.radclient("auth", {"User-Name": "carol", **_mschap_v1("carol-pw", chal)})
    assert ok.code == "Access-Accept", ok.stdout + ok.stderr
    assert "MS-CHAP-MPPE-Keys" in ok and "MS-MPPE-Encryption-Policy" in ok
    bad = server.radclient("auth", {"User-Name": "carol", **_mschap_v1("wrong", chal)})
    assert bad.code == "Access-Reject" and "E=691" in bad["MS-CHAP-Error"]


@in_netns
def test_mschap_v2_success_and_mppe_keys(server):
    user, password = "alice", "alice-pw"
    auth_chal, peer_chal = bytes(range(16, 32)), bytes(range(32, 48))
    attrs, nt = _mschap_v2(user, password, auth_chal, peer_chal)
    r = server.radclient("auth", {"User-Name": user, **attrs})
    assert r.code == "Access-Accept", r.stdout + r.stderr
    assert r["Framed-IP-Address"] == "10.77.0.2"
    pw_hash = crypto.nt_password_hash(password)
    success = _octets(r["MS-CHAP2-Success"])
    assert success[0] == 9  # the ident of the response
    assert success[1:].decode() == crypto.generate_authenticator_response(pw_hash, nt, peer_chal, auth_chal,
                                                                            user.encode())
    # RFC 2548: decrypted by radclient with the secret; RFC 3079: the NAS's send key is the server's send key
    master = crypto.get_master_key(crypto.hash_nt_password_hash(pw_hash), nt)
    assert _octets(r["MS-MPPE-Send-Key"]) == crypto.get_asymmetric_start_key(master, 16, True, True)
    assert _octets(r["MS-MPPE-Recv-Key"]) == crypto.get_asymmetric_start_key(master, 16, False, True)
    bad_attrs, _ = _mschap_v2(user, "wrong", auth_chal, peer_chal)
    bad = server.radclient("auth", {"User-Name": user, **bad_attrs})
    assert bad.code == "Access-Reject" and "E=691" in bad["MS-CHAP-Error"]
    assert "MS-MPPE-Send-Key" not in bad


@in_netns
def test_accounting_lands_in_the_detail_file(server):
    base = {"User-Name": "alice", "Acct-Session-Id": "sess-1", "NAS-Port-Type": "Virtual",
            "Framed-IP-Address": "10.77.0.2", "Class": b"gold-class"}
    for status, extra in (("Start", {}),
                          ("Interim-Update", {"Acct-Session-Time": 60, "Acct-Input-Octets": 1000}),
                          ("Stop", {"Acct-Session-Time": 90, "Acct-Input-Octets": 5000, "Acct-Output-Octets": 7000,
                                    "Acct-Input-Gigawords": 1, "Acct-Terminate-Cause": "User-Request"})):
        r = server.radclient("acct", {**base, "Acct-Status-Type": status, **extra})
        assert r.code == "Accounting-Response", r.stdout + r.stderr
    recs = server.wait_detail(lambda r: r.get("Acct-Session-Id") == "sess-1", count=3)
    assert [r["Acct-Status-Type"] for r in recs] == ["Start", "Interim-Update", "Stop"]
    stop = recs[-1]
    assert stop["Acct-Input-Octets"] == "5000" and stop["Acct-Output-Octets"] == "7000"
    assert stop["Acct-Input-Gigawords"] == "1" and stop["Acct-Terminate-Cause"] == "User-Request"
    assert stop["Class"] == "0x" + b"gold-class".hex() and stop["Framed-IP-Address"] == "10.77.0.2"


@in_netns
def test_backup_server_answers_when_the_primary_is_down(rns, freeradius):
    primary = freeradius(USERS, clients=[("127.0.0.0/8", SECRET)], ns=rns, name="primary")
    backup = freeradius(USERS, clients=[("127.0.0.0/8", "backup-secret")], ns=rns, name="backup",
                        address="127.0.0.2", auth_port=11812, acct_port=11813)
    login = {"User-Name": "alice", "User-Password": "alice-pw"}
    assert primary.radclient("auth", login).code == "Access-Accept"
    assert backup.radclient("auth", login).code == "Access-Accept"
    primary.stop()
    assert not primary.running
    assert primary.radclient("auth", login, timeout=0.5).code is None  # nobody listens any more
    assert backup.radclient("auth", login).code == "Access-Accept"
    r = backup.radclient("acct", {"User-Name": "alice", "Acct-Status-Type": "Start", "Acct-Session-Id": "b-1"})
    assert r.code == "Accounting-Response"
    assert backup.wait_detail(lambda r: r.get("Acct-Session-Id") == "b-1")
    assert primary.detail_records() == []


# --- on the host's loopback, with a hand-made packet ------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _access_request(user: str, password: str, secret: bytes, ident: int = 42) -> tuple[bytes, bytes]:
    """An RFC 2865 Access-Request (User-Password hidden, §5.2) with a Message-Authenticator (RFC 3579 §3.2)."""
    authenticator = os.urandom(16)
    p = password.encode().ljust((len(password) + 15) // 16 * 16 or 16, b"\0")
    hidden, prev = b"", authenticator
    for i in range(0, len(p), 16):
        block = bytes(a ^ b for a, b in zip(p[i:i + 16], hashlib.md5(secret + prev).digest()))
        hidden, prev = hidden + block, block
    attrs = bytes([1, 2 + len(user)]) + user.encode() + bytes([2, 2 + len(hidden)]) + hidden + bytes([80, 18]) + bytes(16)
    pkt = struct.pack("!BBH", 1, ident, 20 + len(attrs)) + authenticator + attrs
    mac = hmac.new(secret, pkt, hashlib.md5).digest()
    return pkt[:-16] + mac, authenticator


def _reply_attrs(data: bytes) -> dict[int, tuple[int, bytes]]:
    """type -> (offset, value) of the (last) attribute of each type in a RADIUS packet."""
    out, i = {}, 20
    while i < len(data):
        t, n = data[i], data[i + 1]
        out[t], i = (i, data[i + 2:i + n]), i + n
    return out


def test_replies_carry_a_valid_message_authenticator_on_loopback(freeradius):
    """On the host (no namespace), on free ports: Accept and Reject both carry a Message-Authenticator
    that verifies (RFC 3579 §3.2: HMAC-MD5 over the reply with the request authenticator), and a
    correct Response Authenticator (RFC 2865 §3)."""
    secret = b"loopback-secret"
    srv = freeradius(USERS, clients=[RadiusClient("127.0.0.1", secret.decode())],
                     auth_port=_free_udp_port(), acct_port=_free_udp_port())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        for password, want in (("alice-pw", 2), ("nope", 3)):
            pkt, req_auth = _access_request("alice", password, secret)
            s.sendto(pkt, ("127.0.0.1", srv.auth_port))
            data, _ = s.recvfrom(4096)
            assert data[0] == want and data[1] == 42
            assert data[4:20] == hashlib.md5(data[:4] + req_auth + data[20:] + secret).digest()
            assert 80 in _reply_attrs(data), f"no Message-Authenticator in code {data[0]}"
            off, mac = _reply_attrs(data)[80]
            assert len(mac) == 16
            zeroed = data[:4] + req_auth + data[20:off + 2] + bytes(16) + data[off + 18:]
            assert hmac.compare_digest(mac, hmac.new(secret, zeroed, hashlib.md5).digest())
