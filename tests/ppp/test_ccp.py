"""CCP with MPPE (RFC 1962, RFC 3078 §2): the option codec, negotiation tables between two machines, the
link's use-encryption policy, Reset-Request/Ack, and replays of pppd's and SoftEther's captures."""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from fastl2tp.errors import DecodeError
from fastl2tp.ppp.auth import verify_locally
from fastl2tp.ppp.ccp import (
    Ccp,
    CcpConfig,
    CcpOption,
    CcpValues,
    MppeBit,
    MppeMode,
    ResetAcked,
    ResetRequested,
    decode_mppe,
    describe_mppe,
    encode_mppe,
    mppe_bits,
)
from fastl2tp.ppp.events import (
    AuthResult,
    EncryptionDown,
    EncryptionRefused,
    EncryptionResetAcked,
    EncryptionResetRequested,
    EncryptionUp,
    LinkDown,
    NetworkUp,
    Role,
)
from fastl2tp.ppp.fsm import LayerFinished, LayerUp, State
from fastl2tp.ppp.ipcp import IpcpConfig
from fastl2tp.ppp.lcp import LcpConfig
from fastl2tp.ppp.link import (
    ENCRYPTION_NEEDS_MSCHAP,
    ENCRYPTION_REFUSED,
    Encryption,
    LinkConfig,
    Phase,
    PppLink,
)
from fastl2tp.ppp.mppe import MppeDecryptor, MppeEncryptor
from fastl2tp.wire.auth import AuthMethod, decode_chap, decode_mschap2_response
from fastl2tp.wire.ppp import (
    Code,
    CpPacket,
    Option,
    Protocol,
    decode_cp,
    decode_options,
    encode_cp,
    encode_options,
)
from tests.pcaputil import TRACES, PppCapture, ppp_frames
from tests.ppp.link_harness import LinkPair, Replay, ScriptedRng, reference
from tests.ppp.ppp_harness import Pair, events

M = AuthMethod
H, S, L, MB, C, D = (int(b) for b in (MppeBit.H, MppeBit.S, MppeBit.L, MppeBit.M, MppeBit.C, MppeBit.D))
LNS, LAC = "192.0.2.10", "192.0.2.20"
SE, SE_CLIENT = "10.99.0.1", "10.99.0.2"
PPPD_LCP = LcpConfig(mru=1500, max_mtu=1500, keepalive_timeout_s=30.0)


# --- codec -------------------------------------------------------------------------------------------


def test_mppe_option_codec() -> None:
    assert encode_mppe(H | S) == bytes.fromhex("01000040")
    assert decode_mppe(bytes.fromhex("01000020")) == H | L
    assert mppe_bits(128, True) == H | S and mppe_bits(40, False) == L and mppe_bits(56, True) == H | MB
    for bad in (b"", b"\x01\x00\x00", b"\x01\x00\x00\x40\x00"):
        with pytest.raises(DecodeError):
            decode_mppe(bad)
    assert describe_mppe(H | S | L | C) == "MPPE 128-bit 40-bit stateless MPPC"
    assert str(MppeMode(128, True)) == "MPPE128 stateless" and str(MppeMode(40, False)) == "MPPE40 stateful"
    assert CcpValues(MppeMode(128, True), MppeMode(128, True)).encoding == "MPPE128 stateless"
    assert CcpValues(MppeMode(128, True), MppeMode(40, False)).encoding == "MPPE128 stateless/MPPE40 stateful"
    assert CcpValues(MppeMode(128, True), MppeMode(40, False)).agreed is None
    assert CcpValues(None, None).encoding == ""
    with pytest.raises(ValueError):
        CcpConfig(allow_40=False, allow_128=False)


# --- negotiation tables (two machines) ---------------------------------------------------------------


def ccp_pair(a: CcpConfig, b: CcpConfig) -> tuple[Pair, list, list]:
    p = Pair(Ccp(a), Ccp(b))
    p.start(0.0)
    p.run(0.0, 60.0)
    return p, events(p.a), events(p.b)


def up_values(evs: list) -> CcpValues | None:
    ups = [e.values for e in evs if isinstance(e, LayerUp)]
    return ups[-1] if ups else None


DEFAULT = CcpConfig()
ONLY_128 = CcpConfig(allow_40=False)
ONLY_40 = CcpConfig(allow_128=False)
WITH_56 = CcpConfig(allow_56=True)
ONLY_56 = CcpConfig(allow_40=False, allow_128=False, allow_56=True)
STATEFUL = CcpConfig(prefer_stateful=True)
NO_STATEFUL = CcpConfig(allow_stateful=False)
STATEFUL_ONLY_40 = CcpConfig(prefer_stateful=True, allow_128=False)

# (a, b) -> the agreed mode (the same on both sides), or None: negotiation fails on both
TABLE = [
    ("defaults", DEFAULT, DEFAULT, MppeMode(128, True)),
    ("128 vs 40+128", ONLY_128, DEFAULT, MppeMode(128, True)),
    ("40 vs 40+128", ONLY_40, DEFAULT, MppeMode(40, True)),
    ("40+128 vs 40", DEFAULT, ONLY_40, MppeMode(40, True)),
    ("40 vs 128", ONLY_40, ONLY_128, None),
    ("56 on both", WITH_56, WITH_56, MppeMode(128, True)),
    ("only 56 vs 56", ONLY_56, WITH_56, MppeMode(56, True)),
    ("stateful preferred vs defaults", STATEFUL, DEFAULT, MppeMode(128, True)),  # a preference yields
    ("defaults vs stateful preferred", DEFAULT, STATEFUL, MppeMode(128, True)),
    ("stateful vs stateful", STATEFUL, STATEFUL, MppeMode(128, False)),
    ("stateful vs stateless only", STATEFUL, NO_STATEFUL, MppeMode(128, True)),
    ("stateful 40 vs defaults", STATEFUL_ONLY_40, DEFAULT, MppeMode(40, True)),
    ("stateful 40 vs stateful", STATEFUL_ONLY_40, STATEFUL, MppeMode(40, False)),
]


@pytest.mark.parametrize("a,b,agreed", [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_negotiation_table(a: CcpConfig, b: CcpConfig, agreed: MppeMode | None) -> None:
    p, ea, eb = ccp_pair(a, b)
    va, vb = up_values(ea), up_values(eb)
    if agreed is None:
        assert va is None or va.agreed is None
        assert any(isinstance(e, LayerFinished) for e in ea + eb)
        return
    assert va is not None and vb is not None
    assert va.agreed == vb.agreed == agreed
    assert va.encoding == str(agreed)
    # every final request named exactly one strength, never C or D
    for _, pkt in p.log:
        if pkt.code == Code.CONFIGURE_ACK:
            [opt] = decode_options(pkt.data)
            bits = decode_mppe(opt.data)
            assert bits in (mppe_bits(agreed.bits, agreed.stateless),) and not bits & (C | D)


def judge(config: CcpConfig, request: bytes) -> CpPacket:
    """Our answer to one peer Configure-Request (we are in Req-Sent)."""
    ccp = Ccp(config)
    ccp.open(0.0)
    ccp.lower_up(0.0)
    ccp.take_output()
    ccp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 7, request)), 0.0)
    [(_, answer)] = ccp.take_output()
    return decode_cp(answer)


def mppe(bits: int) -> bytes:
    return encode_options([Option(CcpOption.MPPE, encode_mppe(bits))])


@pytest.mark.parametrize("config,request_bits,code,answer", [
    (DEFAULT, H | S, Code.CONFIGURE_ACK, H | S),
    (DEFAULT, H | L, Code.CONFIGURE_ACK, H | L),
    (DEFAULT, H | S | L, Code.CONFIGURE_NAK, H | S),  # the strongest common strength
    (ONLY_40, H | S | L, Code.CONFIGURE_NAK, H | L),
    (DEFAULT, H | S | C, Code.CONFIGURE_NAK, H | S),  # MPPC refused
    (DEFAULT, H | S | D, Code.CONFIGURE_NAK, H | S),  # obsolete D cleared
    (DEFAULT, H | S | 0x00100000, Code.CONFIGURE_NAK, H | S),  # unknown bits cleared
    (DEFAULT, H | MB, Code.CONFIGURE_NAK, H | S),  # 56-bit not allowed: ours instead
    (ONLY_128, H | L, Code.CONFIGURE_NAK, H | S),
    (DEFAULT, C, Code.CONFIGURE_NAK, H | S),  # MPPC only
    (DEFAULT, S, Code.CONFIGURE_NAK, H | S),  # stateful: Nak'd once (the peer may insist)
    (NO_STATEFUL, S, Code.CONFIGURE_NAK, H | S),
    (STATEFUL, H | S, Code.CONFIGURE_ACK, H | S),  # a stateful preference yields to stateless
])
def test_judging_the_peer_request(config: CcpConfig, request_bits: int, code: int, answer: int) -> None:
    reply = judge(config, mppe(request_bits))
    assert reply.code == code and reply.identifier == 7
    [opt] = decode_options(reply.data)
    assert opt.type == CcpOption.MPPE and decode_mppe(opt.data) == answer


def test_other_ccp_options_are_rejected_and_a_request_without_mppe_gets_a_hint() -> None:
    deflate_and_mppe = encode_options([Option(26, b"\x78\x08"), Option(CcpOption.MPPE, encode_mppe(H | S)),
                                       Option(17, b"\x00\x01\x03")])
    reply = judge(DEFAULT, deflate_and_mppe)
    assert reply.code == Code.CONFIGURE_REJECT
    assert [o.type for o in decode_options(reply.data)] == [26, 17]
    reply = judge(DEFAULT, b"")
    assert reply.code == Code.CONFIGURE_NAK and reply.data == mppe(H | S | L)


def test_stateful_insistence_is_accepted_after_one_nak_and_we_follow() -> None:
    ccp = Ccp(DEFAULT)
    ccp.open(0.0)
    ccp.lower_up(0.0)
    [(_, req)] = ccp.take_output()
    assert decode_cp(req).data == mppe(H | S | L)
    for ident, expect in ((7, Code.CONFIGURE_NAK), (8, Code.CONFIGURE_ACK)):
        ccp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, ident, mppe(S))), 0.0)
        [(_, answer)] = ccp.take_output()
        assert decode_cp(answer).code == expect
    # the peer (which insisted) Naks our stateless request to its stateful one: we follow at once
    ccp.receive(encode_cp(CpPacket(Code.CONFIGURE_NAK, decode_cp(req).identifier, mppe(S))), 0.0)
    [(_, req2)] = ccp.take_output()
    assert decode_cp(req2).data == mppe(S)
    ccp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, decode_cp(req2).identifier, mppe(S))), 0.0)
    assert ccp.state is State.OPENED and ccp.values.agreed == MppeMode(128, False)


def test_stateful_insistence_by_naks_alone() -> None:
    """A peer that only Naks our stateless request to stateful: we keep asking stateless once, then follow."""
    ccp = Ccp(DEFAULT)
    ccp.open(0.0)
    ccp.lower_up(0.0)
    asked = []
    for _ in range(3):
        [(_, req)] = ccp.take_output()
        asked.append(decode_cp(req).data)
        ccp.receive(encode_cp(CpPacket(Code.CONFIGURE_NAK, decode_cp(req).identifier, mppe(S))), 0.0)
    assert asked == [mppe(H | S | L), mppe(H | S), mppe(S)]


def test_stateful_refused_when_not_allowed() -> None:
    ccp = Ccp(NO_STATEFUL)
    ccp.open(0.0)
    ccp.lower_up(0.0)
    [(_, req)] = ccp.take_output()
    ccp.receive(encode_cp(CpPacket(Code.CONFIGURE_NAK, decode_cp(req).identifier, mppe(S))), 0.0)
    [(_, term)] = ccp.take_output()
    assert decode_cp(term).code == Code.TERMINATE_REQUEST and b"insists on stateful" in decode_cp(term).data


def test_a_nak_we_cannot_follow_or_a_reject_fails_the_layer() -> None:
    for config, reply_code, bits, reason in (
        (ONLY_128, Code.CONFIGURE_NAK, H | L, "no common MPPE key length"),
        (DEFAULT, Code.CONFIGURE_REJECT, H | S | L, "rejected MPPE"),
    ):
        ccp = Ccp(config)
        ccp.open(0.0)
        ccp.lower_up(0.0)
        [(_, req)] = ccp.take_output()
        data = mppe(bits) if reply_code == Code.CONFIGURE_NAK else decode_cp(req).data
        ccp.receive(encode_cp(CpPacket(reply_code, decode_cp(req).identifier, data)), 0.0)
        [term] = [decode_cp(p) for _, p in ccp.take_output()]
        assert term.code == Code.TERMINATE_REQUEST and reason in term.data.decode()


# --- Reset-Request / Reset-Ack -----------------------------------------------------------------------


def test_reset_request_and_ack() -> None:
    p, _, _ = ccp_pair(STATEFUL, STATEFUL)
    assert p.a.is_opened and p.b.is_opened
    assert p.a.send_reset_request(1.0)
    assert not p.a.send_reset_request(1.5)  # one outstanding per reset_timeout_s
    p.pump(1.5)
    [rb] = events(p.b)
    assert isinstance(rb, ResetRequested)
    [ra] = events(p.a)
    assert isinstance(ra, ResetAcked) and ra.identifier == rb.identifier
    codes = [(who, pkt.code) for who, pkt in p.log[-2:]]
    assert codes == [("a", Code.RESET_REQUEST), ("b", Code.RESET_ACK)]
    assert p.a.send_reset_request(1.6)  # acked: a new one may go at once
    # stale acks and requests outside Opened are counted, not answered
    p.a.receive(encode_cp(CpPacket(Code.RESET_ACK, 200)), 2.0)
    assert p.a.counters["stale_reset_ack"] == 1
    fresh = Ccp(DEFAULT)
    fresh.receive(encode_cp(CpPacket(Code.RESET_REQUEST, 1)), 0.0)
    assert fresh.take_output() == [] and fresh.counters["reset_request_not_opened"] == 1
    assert not fresh.send_reset_request(0.0)


# --- the link's policy ---------------------------------------------------------------------------------

PASSWORD = "lkjrht"


def link_pair(server_enc: Encryption, client_enc: Encryption, method: AuthMethod = M.MSCHAP2,
              server_ccp: CcpConfig = DEFAULT, client_ccp: CcpConfig = DEFAULT) -> LinkPair:
    server = PppLink(Role.SERVER, LinkConfig(
        lcp=LcpConfig(), authenticate=(method,), auth_name="lns", use_encryption=server_enc, ccp=server_ccp,
        ipcp=IpcpConfig(local_address=A("10.0.0.1"), remote_address=A("10.0.0.2"))), rng=ScriptedRng(start=0x5000))
    client = PppLink(Role.CLIENT, LinkConfig(
        lcp=LcpConfig(), allow=(method,), username="ex", password=PASSWORD, use_encryption=client_enc,
        ccp=client_ccp), rng=ScriptedRng(start=0x9000))
    p = LinkPair(server, client, secrets={"ex": PASSWORD})
    p.start(0.0)
    p.run(40.0)
    return p


NO, YES, REQ = Encryption.NO, Encryption.YES, Encryption.REQUIRED
# (server, client) -> outcome on each side: "up" (EncryptionUp), "refused" (EncryptionRefused, link
# stays up), "plain" (no encryption event, link up), "down" (LinkDown with ENCRYPTION_REFUSED), "peer"
# (LinkDown because the other side terminated)
POLICY = [
    (NO, NO, "plain", "plain"),
    (NO, YES, "plain", "refused"),
    (YES, NO, "refused", "plain"),
    (YES, YES, "up", "up"),
    (YES, REQ, "up", "up"),
    (REQ, YES, "up", "up"),
    (REQ, REQ, "up", "up"),
    (NO, REQ, "peer", "down"),
    (REQ, NO, "down", "peer"),
]


@pytest.mark.parametrize("server_enc,client_enc,server_out,client_out", POLICY,
                         ids=[f"{s.value}-{c.value}" for s, c, _, _ in POLICY])
@pytest.mark.parametrize("method", [M.MSCHAP2, M.MSCHAP1])
def test_policy_table(server_enc, client_enc, server_out, client_out, method) -> None:
    p = link_pair(server_enc, client_enc, method)
    for name, outcome in (("server", server_out), ("client", client_out)):
        kinds = p.kinds(name)
        downs = [ev.reason for ev in p.of(name, LinkDown)]
        if outcome in ("up", "refused", "plain"):
            assert downs == [] and "NetworkUp" in kinds, (name, kinds)
            assert ("EncryptionUp" in kinds) == (outcome == "up")
            assert ("EncryptionRefused" in kinds) == (outcome == "refused")
        elif outcome == "down":
            assert downs == [ENCRYPTION_REFUSED]
        else:
            assert downs == [f"peer terminated LCP: {ENCRYPTION_REFUSED}"]
    if server_out == "up":
        [su], [cu] = p.of("server", EncryptionUp), p.of("client", EncryptionUp)
        assert su.encoding == cu.encoding == "MPPE128 stateless"
        assert su.keys.send_start == cu.keys.recv_start and su.keys.recv_start == cu.keys.send_start
        assert su.keys.send_session == cu.keys.recv_session
        # the keys work: what the server encrypts, the client decrypts
        tx = MppeEncryptor(su.keys.send_start, 128, True)
        rx = MppeDecryptor(cu.keys.recv_start, 128, True)
        assert rx.decrypt(tx.encrypt(b"\x00\x21hello")) == b"\x00\x21hello"
        if method is M.MSCHAP1:
            assert su.keys.send_start == su.keys.recv_start  # MS-CHAPv1: one key both ways


@pytest.mark.parametrize("server_ccp,client_ccp,encoding", [
    (ONLY_40, DEFAULT, "MPPE40 stateless"),
    (STATEFUL, STATEFUL, "MPPE128 stateful"),
    (ONLY_56, WITH_56, "MPPE56 stateless"),
])
def test_link_negotiates_strength_and_mode(server_ccp, client_ccp, encoding) -> None:
    p = link_pair(YES, YES, server_ccp=server_ccp, client_ccp=client_ccp)
    [su], [cu] = p.of("server", EncryptionUp), p.of("client", EncryptionUp)
    assert su.encoding == cu.encoding == encoding
    assert su.keys.bits == int(encoding[4:].split()[0]) and su.keys.stateless == encoding.endswith("stateless")


@pytest.mark.parametrize("enc", [YES, REQ])
def test_40_vs_128_mismatch(enc: Encryption) -> None:
    p = link_pair(enc, YES, server_ccp=ONLY_128, client_ccp=ONLY_40)
    assert p.of("server", EncryptionUp) == [] and p.of("client", EncryptionUp) == []
    if enc is YES:
        [sr], [cr] = p.of("server", EncryptionRefused), p.of("client", EncryptionRefused)
        assert p.server.phase is Phase.NETWORK and p.client.phase is Phase.NETWORK
        assert "MPPE" in sr.reason and "MPPE" in cr.reason
    else:
        assert [ev.reason for ev in p.of("server", LinkDown)] == [ENCRYPTION_REFUSED]


@pytest.mark.parametrize("method", [M.PAP, M.CHAP])
def test_mppe_needs_mschap(method: AuthMethod) -> None:
    p = link_pair(YES, YES, method)
    for name in ("server", "client"):
        [refused] = p.of(name, EncryptionRefused)
        assert "MS-CHAP" in refused.reason and p.of(name, NetworkUp)
    p = link_pair(REQ, YES, method)
    assert [ev.reason for ev in p.of("server", LinkDown)] == [ENCRYPTION_NEEDS_MSCHAP]
    assert p.of("server", AuthResult)[0].succeeded and p.of("server", NetworkUp) == []


def test_per_user_policy_from_complete_auth_and_link_level_resets() -> None:
    server = PppLink(Role.SERVER, LinkConfig(authenticate=(M.MSCHAP2,), ccp=STATEFUL), rng=ScriptedRng(start=0x5000))
    client = PppLink(Role.CLIENT, LinkConfig(allow=(M.MSCHAP2,), username="ex", password=PASSWORD,
                                             use_encryption=YES, ccp=STATEFUL), rng=ScriptedRng(start=0x9000))
    p = LinkPair(server, client, secrets={"ex": PASSWORD})

    def complete(item, now):
        name, ev = item
        p.link(name).complete_auth(ev.request_id, verify_locally(ev.request, PASSWORD), now,
                                   ipcp=IpcpConfig(remote_address=A("10.0.0.2")), use_encryption=REQ)
    p._complete = complete  # type: ignore[method-assign]
    p.start(0.0)
    p.run(20.0)
    assert server.use_encryption is REQ
    [su] = p.of("server", EncryptionUp)
    assert su.encoding == "MPPE128 stateful"
    assert client.send_reset_request(21.0)
    p._drain(21.0)
    p.run(22.0)
    assert p.kinds("server")[-1] == "EncryptionResetRequested"
    assert p.kinds("client")[-1] == "EncryptionResetAcked"
    assert isinstance(p.of("server", EncryptionResetRequested)[0], EncryptionResetRequested)
    assert isinstance(p.of("client", EncryptionResetAcked)[0], EncryptionResetAcked)
    # MPPE data is only counted; the peer renegotiating CCP takes encryption down until it is up again
    server.receive_frame(b"\xff\x03\x00\xfd\x90\x00" + bytes(20), 22.0)
    assert server.counters["mppe_seen"] == 1
    client.ccp.open(22.0)  # nothing: already open
    client.ccp.close("test", 22.0)
    p.run(30.0)
    assert [type(ev).__name__ for ev in p.of("client", EncryptionDown)] == ["EncryptionDown"]
    assert p.of("server", EncryptionDown) and [ev.reason for ev in p.of("server", LinkDown)] == [
        ENCRYPTION_REFUSED]


def test_per_user_key_lengths_from_complete_auth() -> None:
    """The user's profile (or RADIUS MS-MPPE-Encryption-Types) decides the key lengths at login,
    replacing the link's configuration: a server configured for 128 negotiates 40 for this user."""
    server = PppLink(Role.SERVER, LinkConfig(authenticate=(M.MSCHAP2,), ccp=ONLY_128, use_encryption=YES),
                     rng=ScriptedRng(start=0x5000))
    client = PppLink(Role.CLIENT, LinkConfig(allow=(M.MSCHAP2,), username="ex", password=PASSWORD,
                                             use_encryption=YES), rng=ScriptedRng(start=0x9000))
    p = LinkPair(server, client, secrets={"ex": PASSWORD})

    def complete(item, now):
        name, ev = item
        p.link(name).complete_auth(ev.request_id, verify_locally(ev.request, PASSWORD), now,
                                   ipcp=IpcpConfig(remote_address=A("10.0.0.2")), ccp=ONLY_40)
    p._complete = complete  # type: ignore[method-assign]
    p.start(0.0)
    p.run(20.0)
    [su], [cu] = p.of("server", EncryptionUp), p.of("client", EncryptionUp)
    assert su.encoding == cu.encoding == "MPPE40 stateless"


# --- replays ---------------------------------------------------------------------------------------


def captures(name: str) -> list[PppCapture]:
    return ppp_frames(TRACES / name)


def option(caps: list[PppCapture], src: str, protocol: int, typ: int) -> bytes:
    for c in caps:
        if c.src == src and c.protocol == protocol and c.payload[0] == Code.CONFIGURE_REQUEST:
            for opt in decode_options(decode_cp(c.payload).data):
                if opt.type == typ:
                    return opt.data
    raise AssertionError(f"no option {typ} from {src}")


PPPD_MPPE = [("linux-xl2tpd-pppd/mschapv2-mppe128.pcap", ONLY_128, "MPPE128 stateless"),
             ("linux-xl2tpd-pppd/mschapv2-mppe40.pcap", ONLY_40, "MPPE40 stateless")]


def check_replay(r: Replay, caps: list[PppCapture], us: str, peer: str, encoding: str) -> None:
    assert r.mismatches == []
    # our CCP packets are byte for byte what the pppd on our side sent (request and Ack)
    assert r.ours(Protocol.CCP) == reference(caps, us, Protocol.CCP)
    [up] = r.of(EncryptionUp)
    assert up.encoding == encoding
    # and the keys we derived decrypt the peer's encrypted frames to IPv4/IPv6
    bits = up.keys.bits
    rx = MppeDecryptor(up.keys.recv_start, bits, up.keys.stateless)
    frames = [c for c in caps if c.src == peer and c.protocol == 0x00FD]
    assert frames and all((rx.decrypt(c.payload) or b"\xff")[:2] in (b"\x00\x21", b"\x00\x57") for c in frames)
    assert r.link.counters["mppe_seen"] == len(frames)


@pytest.mark.parametrize("path,ccp,encoding", PPPD_MPPE, ids=["mppe128", "mppe40"])
def test_pppd_lac_against_our_server(path: str, ccp: CcpConfig, encoding: str) -> None:
    caps = captures(path)
    challenge = decode_chap(next(c.payload for c in caps if c.protocol == 0xC223))
    chunks = {4: [option(caps, LNS, Protocol.LCP, 5)], 1: [bytes((challenge.identifier,))],
              16: [challenge.value], 8: [option(caps, LNS, Protocol.IPV6CP, 1)]}
    config = LinkConfig(lcp=PPPD_LCP, authenticate=(M.MSCHAP2,), auth_name="st-lns", use_ipv6=True,
                        use_encryption=REQ, ccp=ccp)
    link = PppLink(Role.SERVER, config, rng=ScriptedRng(chunks))
    lns_ipcp = IpcpConfig(local_address=A("10.0.103.1"), remote_address=A("10.0.103.2"))
    r = Replay(link, caps, us=LNS, peer=LAC, secrets={"ex": "lkjrht"}, ipcp_for=lambda user: lns_ipcp)
    r.run()
    check_replay(r, caps, LNS, LAC, encoding)
    assert r.kinds() == ["AuthRequested", "AuthResult", "EncryptionUp", "Ipv6Up", "NetworkUp", "LinkDown"]


@pytest.mark.parametrize("path,ccp,encoding", PPPD_MPPE, ids=["mppe128", "mppe40"])
def test_pppd_lns_against_our_client(path: str, ccp: CcpConfig, encoding: str) -> None:
    caps = captures(path)
    response = decode_chap(next(c.payload for c in caps if c.protocol == 0xC223 and c.src == LAC))
    chunks = {4: [option(caps, LAC, Protocol.LCP, 5)], 8: [option(caps, LAC, Protocol.IPV6CP, 1)],
              16: [decode_mschap2_response(response.value).peer_challenge]}
    config = LinkConfig(lcp=PPPD_LCP, allow=(M.MSCHAP2,), username="ex", password="lkjrht", use_ipv6=True,
                        use_encryption=REQ, ccp=ccp)
    link = PppLink(Role.CLIENT, config, rng=ScriptedRng(chunks))

    def close(cap: PppCapture, now: float) -> None:
        if cap.protocol == Protocol.LCP and cap.payload[0] == Code.TERMINATE_REQUEST:
            link.close(decode_cp(cap.payload).data.decode(), now)
    r = Replay(link, caps, us=LAC, peer=LNS, on_reference=close)
    r.run()
    check_replay(r, caps, LAC, LNS, encoding)
    assert r.ours(0xC223) == reference(caps, LAC, 0xC223)  # the MS-CHAPv2 Response, as the LAC's
    assert "EncryptionUp" in r.kinds() and "NetworkUp" in r.kinds()


@pytest.mark.parametrize("enc", [YES, REQ])
def test_softether_protocol_rejects_ccp(enc: Encryption) -> None:
    """SoftEther answers CCP with an LCP Protocol-Reject (ccp-mppe-offer.pcap, frame 30). Our client,
    authenticated with MS-CHAPv2 and offering MPPE, gets that very frame: with yes it goes on
    unencrypted, with required it terminates with the reason."""
    caps = captures("softether/ccp-mppe-offer.pcap")
    reject = next(c for c in caps if c.src == SE and c.protocol == Protocol.LCP
                  and c.payload[0] == Code.PROTOCOL_REJECT)
    assert decode_cp(reject.payload).data[:2] == b"\x80\xfd"
    server = PppLink(Role.SERVER, LinkConfig(authenticate=(M.MSCHAP2,), ipcp=IpcpConfig(
        remote_address=A("192.168.30.10"))), rng=ScriptedRng(start=0x5000))
    client = PppLink(Role.CLIENT, LinkConfig(allow=(M.MSCHAP2,), username="ex", password=PASSWORD,
                                             use_encryption=enc), rng=ScriptedRng(start=0x9000))

    def softether(sender: str, now: float, frame: bytes) -> bool:
        """Our server plays SoftEther: the client's CCP is answered with SoftEther's Protocol-Reject."""
        if sender == "client" and frame[2:4] == b"\x80\xfd":
            p.server._frames.append(reject.frame)  # delivered as if the server sent it
            return True
        return False
    p = LinkPair(server, client, secrets={"ex": PASSWORD}, drop=softether)
    p.start(0.0)
    p.run(30.0)
    assert p.of("client", EncryptionUp) == []
    if enc is YES:
        [refused] = p.of("client", EncryptionRefused)
        assert "CCP protocol rejected by peer" in refused.reason
        assert client.phase is Phase.NETWORK and p.of("client", NetworkUp) and p.of("client", LinkDown) == []
    else:
        assert [ev.reason for ev in p.of("client", LinkDown)] == [ENCRYPTION_REFUSED]
        assert client.phase is Phase.DEAD
