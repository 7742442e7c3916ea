"""PppLink: LCP, authentication and the NCPs composed, both roles over a simulated wire (LinkPair).

Every scenario uses a fake clock; timings are asserted exactly where they are the point (keepalive,
termination). Loss and reordering are seeded, so each run is the same.
"""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastl2tp.errors import LocalUsageError
from fastl2tp.ppp.auth import AuthDecision
from fastl2tp.ppp.events import (
    AuthRequested,
    AuthResult,
    Ipv6Up,
    LinkDown,
    NetworkDown,
    NetworkUp,
    Role,
)
from fastl2tp.ppp.ipcp import IpcpConfig
from fastl2tp.ppp.lcp import LcpConfig
from fastl2tp.ppp.link import (
    ADMINISTRATIVE,
    ENCRYPTION_REFUSED,
    Encryption,
    LinkConfig,
    Phase,
    PppLink,
)
from fastl2tp.wire.auth import AuthMethod
from fastl2tp.wire.ppp import (
    Code,
    CpPacket,
    Protocol,
    decode_cp,
    decode_frame,
    encode_cp,
)
from tests.ppp.link_harness import LinkPair, ScriptedRng, cp, drain_events

M = AuthMethod
PASSWORD = "lkjrht"
LNS_ADDR, PEER_ADDR, DNS = A("10.0.103.1"), A("10.0.103.2"), A("10.0.103.53")
SERVER_IPCP = IpcpConfig(local_address=LNS_ADDR, remote_address=PEER_ADDR, dns_servers=(DNS,))


def server_link(methods: tuple[AuthMethod, ...] = (M.MSCHAP2,), *, keepalive: float | None = None,
                **kw) -> PppLink:
    kw.setdefault("ipcp", SERVER_IPCP)
    config = LinkConfig(lcp=LcpConfig(keepalive_timeout_s=keepalive), authenticate=methods, auth_name="lns", **kw)
    return PppLink(Role.SERVER, config, rng=ScriptedRng(start=0x5000))


def client_link(allow: tuple[AuthMethod, ...] = (M.MSCHAP2,), password: str = PASSWORD, *,
                keepalive: float | None = None, **kw) -> PppLink:
    kw.setdefault("ipcp", IpcpConfig(request_dns=True))
    config = LinkConfig(lcp=LcpConfig(keepalive_timeout_s=keepalive), allow=allow, username="ex",
                        password=password, **kw)
    return PppLink(Role.CLIENT, config, rng=ScriptedRng(start=0x9000))


def pair(server: PppLink | None = None, client: PppLink | None = None, **kw) -> LinkPair:
    p = LinkPair(server or server_link(), client or client_link(), secrets={"ex": PASSWORD}, **kw)
    p.start(0.0)
    return p


def up_pair(**kw) -> LinkPair:
    p = pair(**kw)
    p.run(5.0)
    assert p.server.phase is Phase.NETWORK and p.client.phase is Phase.NETWORK
    assert p.server.ipcp.is_opened and p.client.ipcp.is_opened
    return p


def all_frames_well_formed(p: LinkPair) -> None:
    for _, _, frame in p.log:
        assert frame[:2] == b"\xff\x03" and len(frame) >= 4  # FF 03 and a two-octet protocol, always
        decode_frame(frame)


# --- authentication: each method x outcome x (direct | after a Nak), both roles are ours ---------

OTHER = {M.PAP: M.MSCHAP2, M.CHAP: M.PAP, M.MSCHAP1: M.CHAP, M.MSCHAP2: M.MSCHAP1}


@pytest.mark.parametrize("via_nak", [False, True], ids=["direct", "nak"])
@pytest.mark.parametrize("good", [True, False], ids=["ok", "wrong-password"])
@pytest.mark.parametrize("method", list(M), ids=lambda m: m.value)
def test_auth_method_outcome_and_nak(method: AuthMethod, good: bool, via_nak: bool) -> None:
    offered = (OTHER[method], method) if via_nak else (method,)
    p = pair(server_link(offered), client_link((method,), PASSWORD if good else "wrong"))
    p.run(30.0)
    all_frames_well_formed(p)

    server_lcp_reqs = [b for _, b in p.sent("server", Protocol.LCP, Code.CONFIGURE_REQUEST)]
    client_naks = [b for _, b in p.sent("client", Protocol.LCP, Code.CONFIGURE_NAK)]
    if via_nak:
        # the server first asked for the other method, the client Nak'd to its own, the server followed
        assert server_lcp_reqs[0].data.find(OTHER[method].lcp_data) >= 0
        assert [n.data for n in client_naks] == [b"\x03" + bytes((2 + len(method.lcp_data),)) + method.lcp_data]
        assert server_lcp_reqs[-1].data.find(method.lcp_data) >= 0
    else:
        assert client_naks == []
    [req] = p.of("server", AuthRequested)
    assert req.username == "ex" and req.method is method
    [srv_result] = p.of("server", AuthResult)
    [cli_result] = p.of("client", AuthResult)
    assert (srv_result.role, cli_result.role) == (Role.SERVER, Role.CLIENT)
    assert srv_result.method is cli_result.method is method
    assert srv_result.username == cli_result.username == "ex"

    if good:
        assert p.kinds("server") == ["AuthRequested", "AuthResult", "NetworkUp"]
        assert p.kinds("client") == ["AuthResult", "NetworkUp"]
        assert srv_result.succeeded and cli_result.succeeded
        assert p.server.lcp_values.auth is method and p.client.lcp_values.peer_auth is method
        if method in (M.MSCHAP1, M.MSCHAP2):  # key material for MPPE, on both sides
            assert srv_result.decision.keys is not None and cli_result.decision.keys is not None
        [s_up], [c_up] = p.of("server", NetworkUp), p.of("client", NetworkUp)
        assert (s_up.local_address, s_up.peer_address, s_up.dns) == (LNS_ADDR, PEER_ADDR, (DNS,))
        assert (c_up.local_address, c_up.peer_address, c_up.dns) == (PEER_ADDR, LNS_ADDR, (DNS,))
        assert s_up.mtu == c_up.mtu == 1450
        return

    assert not srv_result.succeeded and not cli_result.succeeded
    assert p.server.phase is Phase.DEAD and p.client.phase is Phase.DEAD
    assert p.kinds("server") == ["AuthRequested", "AuthResult", "LinkDown"]
    assert p.kinds("client") == ["AuthResult", "LinkDown"]
    [s_down], [c_down] = p.of("server", LinkDown), p.of("client", LinkDown)
    mschap = method in (M.MSCHAP1, M.MSCHAP2)
    assert s_down.reason == "authentication failed: user ex: " + ("E=691 " if mschap else "") + "wrong password"
    expected_client = {
        M.PAP: "PAP Authenticate-Nak: Login incorrect",
        M.CHAP: "CHAP Failure: Access denied",
        M.MSCHAP1: "E=691 authentication failure",
        M.MSCHAP2: "E=691 authentication failure",
    }[method]
    assert c_down.reason == f"authentication failed: user ex: {expected_client}"
    if mschap:
        assert srv_result.error_code == cli_result.error_code == 691
    # the server's verdict went out before its Terminate-Request
    server_out = [cp(f) for _, who, f in p.log if who == "server"]
    verdict = next(i for i, (proto, body) in enumerate(server_out)
                   if proto == method.protocol and body[:1] in (b"\x03", b"\x04"))  # PAP Nak / CHAP Failure
    term = next(i for i, (proto, b) in enumerate(server_out)
                if proto == Protocol.LCP and b.code == Code.TERMINATE_REQUEST)
    assert verdict < term


def test_client_allows_nothing_the_server_offers() -> None:
    p = pair(server_link((M.MSCHAP1, M.MSCHAP2)), client_link((M.PAP,)))
    p.run(30.0)
    [down] = p.of("server", LinkDown)
    assert down.reason.startswith("no common authentication method")
    assert p.server.phase is Phase.DEAD and p.of("server", AuthRequested) == []


def test_no_authentication_goes_straight_to_network() -> None:
    p = up_pair(server=server_link(()), client=client_link((M.PAP,)))
    assert p.kinds("server") == ["NetworkUp"] and p.kinds("client") == ["NetworkUp"]
    assert p.server.lcp_values.auth is None


def test_mschap2_client_rejects_a_forged_authenticator_response() -> None:
    server = server_link((M.MSCHAP2,))
    p = LinkPair(server, client_link((M.MSCHAP2,)), secrets={"ex": PASSWORD})
    p.start(0.0)
    # a backend that accepts but returns a wrong S=: the client must fail the link (RFC 2759 §5)
    p._complete = lambda item, now: server.complete_auth(  # type: ignore[method-assign]
        item[1].request_id, AuthDecision(True, authenticator_response="S=" + "0" * 40), now)
    p.run(30.0)
    [c_down] = p.of("client", LinkDown)
    assert c_down.reason == ("authentication failed: user ex: MS-CHAPv2 authenticator response (S=) does not "
                             "verify")
    assert p.client.phase is Phase.DEAD and p.of("client", NetworkUp) == []


# --- addresses from the authentication decision -------------------------------------------------

def test_network_up_carries_the_addresses_assigned_with_the_auth_decision() -> None:
    pools = {"ex": A("10.9.0.7"), "ex2": A("10.9.0.8")}
    for user, addr in pools.items():
        server = server_link((M.MSCHAP2,), ipcp=None)  # addresses decided at authentication time
        client = PppLink(Role.CLIENT, LinkConfig(lcp=LcpConfig(keepalive_timeout_s=None), allow=(M.MSCHAP2,),
                                                 username=user, password="pw-" + user), rng=ScriptedRng())
        p = LinkPair(server, client, secrets={"ex": "pw-ex", "ex2": "pw-ex2"},
                     ipcp_for=lambda u: IpcpConfig(local_address=A("10.9.0.1"), remote_address=pools[u]))
        p.start(0.0)
        p.run(10.0)
        [c_up], [s_up] = p.of("client", NetworkUp), p.of("server", NetworkUp)
        assert c_up.local_address == s_up.peer_address == addr
        assert c_up.peer_address == s_up.local_address == A("10.9.0.1")


def test_server_without_addresses_terminates_with_the_reason() -> None:
    server = server_link((M.PAP,), ipcp=None)
    p = pair(server, client_link((M.PAP,)))  # no ipcp_for: the decision brings no IPCP config
    p.run(10.0)
    [down] = p.of("server", LinkDown)
    assert down.reason.startswith("no IPv4 addresses for user ex")
    assert p.of("server", AuthResult)[0].succeeded


def test_server_without_auth_or_addresses_is_a_usage_error() -> None:
    with pytest.raises(LocalUsageError):
        PppLink(Role.SERVER, LinkConfig(authenticate=(), ipcp=None))
    with pytest.raises(LocalUsageError):
        PppLink(Role.CLIENT, LinkConfig(username=""))


def test_backend_latency_and_stale_answers() -> None:
    p = pair(server_link((M.PAP,)), client_link((M.PAP,)), auth_delay_s=2.0)
    p.run(1.9)
    assert p.server.phase is Phase.AUTHENTICATE and p.kinds("server") == ["AuthRequested"]
    p.run(10.0)
    [up] = p.of("client", NetworkUp)
    assert [t for t, ev in p.events["client"] if isinstance(ev, NetworkUp)] == [2.0]
    assert up.local_address == PEER_ADDR
    [req] = p.of("server", AuthRequested)
    assert p.server.complete_auth(req.request_id, AuthDecision(True), 11.0) is False  # already answered
    assert p.server.complete_auth(999, AuthDecision(False), 11.0) is False
    assert p.server.phase is Phase.NETWORK


# --- loss and reordering -------------------------------------------------------------------------

def chap_verdict(sender: str, frame: bytes) -> bool:
    """CHAP Success/Failure: a lost one is not recovered yet (ChapPeer never retransmits its Response,
    see test_lost_chap_success_is_recovered), so random loss spares it."""
    proto, body = cp(frame)
    return proto == 0xC223 and body[:1] in (b"\x03", b"\x04")


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("method", [M.PAP, M.MSCHAP2], ids=lambda m: m.value)
def test_loss_and_reordering_still_converge(method: AuthMethod, seed: int) -> None:
    server = server_link((M.CHAP, method), keepalive=30.0, use_ipv6=True)
    client = client_link((method,), keepalive=30.0, use_ipv6=True)
    p = pair(server, client, loss=0.2, latency_s=0.01, jitter_s=0.08, seed=seed, auth_delay_s=0.05,
             protect=chap_verdict)
    p.run(120.0)
    all_frames_well_formed(p)
    for name in ("server", "client"):
        assert p.link(name).phase is Phase.NETWORK, (name, p.events[name], p.link(name).counters)
        assert p.link(name).ipcp.is_opened and p.link(name).ipv6cp.is_opened
        assert p.of(name, LinkDown) == []
        # a Configure-Request retransmitted after a lost Ack renegotiates an Opened NCP (RFC 1661 §4.1):
        # every NetworkDown is followed by a NetworkUp, and the last one holds
        downs = p.of(name, NetworkDown)
        for proto, cls in ((Protocol.IPCP, NetworkUp), (Protocol.IPV6CP, Ipv6Up)):
            assert len(p.of(name, cls)) == 1 + sum(d.protocol == proto for d in downs)
    assert p.of("client", NetworkUp)[0].local_address == PEER_ADDR


def test_lost_chap_success_is_recovered() -> None:
    lost: list[bytes] = []

    def drop(sender: str, now: float, frame: bytes) -> bool:
        if sender == "server" and chap_verdict(sender, frame) and not lost:
            lost.append(frame)
            return True
        return False

    p = pair(server_link((M.MSCHAP2,)), client_link((M.MSCHAP2,)), drop=drop)
    p.run(60.0)
    assert lost and p.client.phase is Phase.NETWORK


def test_reordered_ncp_before_auth_verdict_is_discarded_then_retransmitted() -> None:
    # deliver the server's frames to the client in reverse order of each burst: IPCP Configure-Request
    # before CHAP Success; RFC 1661 §3.5 discards it, the restart timer brings it again
    p = pair(server_link((M.CHAP,)), client_link((M.CHAP,)), latency_s=0.0, jitter_s=0.0)
    p.run(30.0)
    assert p.client.phase is Phase.NETWORK
    # now the same with a held-back Success: hold CHAP Success 0.5 s
    p2 = LinkPair(server_link((M.CHAP,)), client_link((M.CHAP,)), secrets={"ex": PASSWORD})
    held: list[bytes] = []

    def drop(sender: str, now: float, frame: bytes) -> bool:
        proto, body = cp(frame)
        if sender == "server" and proto == 0xC223 and body[0] == 3 and not held:
            held.append(frame)
            return True
        return False

    p2.drop = drop
    p2.start(0.0)
    p2.run(0.5)
    assert p2.client.phase is Phase.AUTHENTICATE and p2.client.counters["ncp_before_network"] == 1
    p2.client.receive_frame(held[0], 0.5)
    p2._drain(0.5)
    assert p2.client.phase is Phase.NETWORK
    p2.run(10.0)
    assert p2.of("client", NetworkUp) and p2.of("server", NetworkUp)
    assert [t for t, ev in p2.events["client"] if isinstance(ev, NetworkUp)] == [3.0]  # server's IPCP restart


# --- keepalive -----------------------------------------------------------------------------------

def test_keepalive_down_with_exact_timings() -> None:
    p = up_pair(server=server_link(keepalive=10.0), client=client_link(keepalive=None))
    p.drop = lambda sender, now, frame: sender == "client" and now >= 1.0  # the client falls silent
    p.run(100.0)
    echoes = [t for t, b in p.sent("server", Protocol.LCP, Code.ECHO_REQUEST)]
    assert echoes == [10.0, 11.0, 12.0, 13.0, 14.0]
    [(t_down, down)] = [(t, ev) for t, ev in p.events["server"] if isinstance(ev, LinkDown)]
    assert (t_down, down.reason) == (15.0, "keepalive timeout")
    assert p.server.phase is Phase.DEAD and p.server.get_timer() is None
    assert p.sent("server", Protocol.LCP, Code.TERMINATE_REQUEST) == []  # nothing into a dead link


def test_keepalive_any_frame_is_life_and_answered_echoes_keep_the_link() -> None:
    p = up_pair(server=server_link(keepalive=10.0), client=client_link(keepalive=10.0))
    p.run(300.0)
    assert p.server.phase is Phase.NETWORK and p.client.phase is Phase.NETWORK
    assert p.sent("server", Protocol.LCP, Code.ECHO_REQUEST) and p.sent("client", Protocol.LCP, Code.ECHO_REPLY)
    # a data frame counts as life: the next echo moves out
    before = p.server.get_timer()
    p.server.receive_frame(b"\xff\x03\x00\x21" + bytes(20), 305.0)
    assert p.server.get_timer() == 315.0 != before
    assert p.server.counters["data_seen"] == 1


# --- termination ---------------------------------------------------------------------------------

def test_peer_terminates() -> None:
    p = up_pair()
    p.client.close("User request", 10.0)
    p._drain(10.0)
    p.run(30.0)
    [(t_c, c_down)] = [(t, ev) for t, ev in p.events["client"] if isinstance(ev, LinkDown)]
    [(t_s, s_down)] = [(t, ev) for t, ev in p.events["server"] if isinstance(ev, LinkDown)]
    assert (t_c, c_down.reason) == (10.0, "User request")  # the Terminate-Ack came at once
    assert (t_s, s_down.reason) == (13.0, "peer terminated LCP: User request")  # after one Restart period
    [(_, req)] = p.sent("client", Protocol.LCP, Code.TERMINATE_REQUEST)
    assert req.data == b"User request"


def test_close_without_answer_gives_up_after_max_terminate() -> None:
    p = up_pair()
    p.drop = lambda sender, now, frame: now >= 10.0
    p.server.close(ADMINISTRATIVE, 10.0)
    p._drain(10.0)
    p.run(30.0)
    assert [t for t, _ in p.sent("server", Protocol.LCP, Code.TERMINATE_REQUEST)] == [10.0, 13.0]
    [(t, down)] = [(t, ev) for t, ev in p.events["server"] if isinstance(ev, LinkDown)]
    assert (t, down.reason) == (16.0, ADMINISTRATIVE)


def test_link_down_exactly_once() -> None:
    p = up_pair()
    p.server.close("one", 10.0)
    p.server.close("two", 10.0)
    p.server.lower_down(10.5, "three")
    p.server.close("four", 11.0)
    p._drain(11.0)
    p.run(20.0)
    assert [ev.reason for ev in p.of("server", LinkDown)] == ["one"]
    assert p.server.phase is Phase.DEAD


def test_lower_down_is_immediate_and_silent() -> None:
    p = up_pair()
    p.server.lower_down(10.0, "CDN received")
    assert p.server.take_frames() == [] and p.server.phase is Phase.DEAD
    assert [ev for ev in drain_events(p.server)] == [LinkDown("CDN received")]
    p.server.receive_frame(b"\xff\x03\xc0\x21\x09\x01\x00\x08\x00\x00\x00\x00", 11.0)
    assert p.server.take_frames() == [] and p.server.counters["rx_while_dead"] == 1


def test_close_before_open() -> None:
    link = server_link()
    link.close(ADMINISTRATIVE, 0.0)
    assert drain_events(link) == [LinkDown(ADMINISTRATIVE)] and link.phase is Phase.DEAD
    link.open(1.0)
    assert link.phase is Phase.DEAD and link.take_frames() == []


def test_lcp_renegotiation_after_network_runs_auth_and_ncps_again() -> None:
    p = up_pair()
    # a Configure-Request while Opened (RFC 1661 §4.1: tld, scr, sca): both sides re-establish
    p.server.receive_frame(b"\xff\x03\xc0\x21" + encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 77, b"")), 10.0)
    assert p.server.phase is Phase.ESTABLISH and p.server.ipcp is None
    p._drain(10.0)
    p.run(30.0)
    assert p.kinds("server") == ["AuthRequested", "AuthResult", "NetworkUp", "NetworkDown",
                                 "AuthRequested", "AuthResult", "NetworkUp"]
    assert p.kinds("client") == ["AuthResult", "NetworkUp", "NetworkDown", "AuthResult", "NetworkUp"]
    for name in ("server", "client"):
        assert p.of(name, NetworkDown) == [NetworkDown(Protocol.IPCP, "LCP: peer renegotiates")]
        assert p.link(name).phase is Phase.NETWORK


def test_peer_terminating_ipcp_ends_the_link() -> None:
    p = up_pair()
    p.client.receive_frame(b"\xff\x03\x80\x21" + encode_cp(CpPacket(Code.TERMINATE_REQUEST, 9, b"bye")), 10.0)
    p._drain(10.0)
    p.run(40.0)
    assert p.of("client", NetworkDown) == [NetworkDown(Protocol.IPCP, "peer terminated IPCP: bye")]
    [down] = p.of("client", LinkDown)
    assert down.reason == "peer terminated IPCP: bye"


# --- protocols we do not run -------------------------------------------------------------------------

def test_unknown_protocols_are_rejected_without_disturbing_the_link() -> None:
    p = up_pair()
    before = p.kinds("server")
    for proto, payload in ((0x8281, b"\x01\x01\x00\x04"), (0x8207, b"\x01\x02\x00\x04cdp"), (0xC025, b"lqr")):
        p.server.receive_frame(b"\xff\x03" + proto.to_bytes(2, "big") + payload, 10.0)
        [frame] = p.server.take_frames()
        proto_out, rej = cp(frame)
        assert proto_out == Protocol.LCP and rej.code == Code.PROTOCOL_REJECT
        assert rej.data == proto.to_bytes(2, "big") + payload
        p.client.receive_frame(frame, 10.0)  # our client takes the reject quietly
    assert p.client.take_frames() == [] and drain_events(p.client) == []
    assert p.server.phase is Phase.NETWORK and p.client.phase is Phase.NETWORK
    assert p.kinds("server") == before and drain_events(p.server) == []
    assert p.server.counters["protocol_rejected"] == 3


def test_unknown_protocol_before_lcp_opened_is_dropped() -> None:
    link = server_link()
    link.open(0.0)
    link.take_frames()
    link.receive_frame(b"\xff\x03\x82\x81\x01\x01\x00\x04", 0.1)
    assert link.take_frames() == [] and link.counters["unknown_protocol_dropped"] == 1


def test_ccp_is_protocol_rejected_when_encryption_is_not_required() -> None:
    p = up_pair()
    ccp = encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, b"\x12\x06\x01\x00\x00\x40"))  # MPPE 128 stateless
    p.server.receive_frame(b"\xff\x03\x80\xfd" + ccp, 10.0)
    [frame] = p.server.take_frames()
    assert frame[:4] == b"\xff\x03\xc0\x21"
    rej = decode_cp(frame[4:])
    assert rej.code == Code.PROTOCOL_REJECT and rej.data == b"\x80\xfd" + ccp
    assert p.server.phase is Phase.NETWORK


def test_ipv6cp_is_protocol_rejected_when_ipv6_is_off_and_the_peer_copes() -> None:
    p = pair(server_link(use_ipv6=True), client_link(use_ipv6=False))
    p.run(30.0)
    assert p.client.counters["protocol_rejected"] >= 1
    assert p.kinds("server") == ["AuthRequested", "AuthResult", "NetworkUp"]  # IPv6CP finished, IPCP stays
    assert p.server.phase is Phase.NETWORK and p.server.counters.get("peer_rejected_0x8057") is None


def test_ipv6cp_up_on_both() -> None:
    p = up_pair(server=server_link(use_ipv6=True), client=client_link(use_ipv6=True))
    [s6], [c6] = p.of("server", Ipv6Up), p.of("client", Ipv6Up)
    assert s6.interface_id == c6.peer_interface_id and c6.interface_id == s6.peer_interface_id
    assert str(s6.link_local).startswith("fe80::")


@pytest.mark.parametrize("role", list(Role))
def test_required_encryption_against_a_peer_without_mppe_terminates_cleanly(role: Role) -> None:
    """The other side has use-encryption=no: it Protocol-Rejects CCP; we terminate with the reason."""
    req = Encryption.REQUIRED
    server = server_link((M.MSCHAP2,), **({"use_encryption": req} if role is Role.SERVER else {}))
    client = client_link((M.MSCHAP2,), **({"use_encryption": req} if role is Role.CLIENT else {}))
    p = pair(server, client)
    p.run(30.0)
    us, them = ("server", "client") if role is Role.SERVER else ("client", "server")
    assert [ev.reason for ev in p.of(us, LinkDown)] == [ENCRYPTION_REFUSED]
    assert [ev.reason for ev in p.of(them, LinkDown)] == [f"peer terminated LCP: {ENCRYPTION_REFUSED}"]
    assert p.of(us, AuthResult)[0].succeeded
    assert p.link(them).counters["protocol_rejected"] >= 1
    [(_, term)] = p.sent(us, Protocol.LCP, Code.TERMINATE_REQUEST)
    assert term.data == ENCRYPTION_REFUSED.encode()


# --- data and malformed input ----------------------------------------------------------------------

def test_data_before_the_ncp_is_dropped_and_counted_then_only_counted() -> None:
    p = pair(server_link((M.PAP,)), client_link((M.PAP,)), auth_delay_s=1.0)
    p.run(0.5)
    p.server.receive_frame(b"\xff\x03\x00\x21" + bytes(20), 0.5)
    p.server.receive_frame(b"\x21" + bytes(20), 0.5)  # PFC and no address/control: still IPv4
    p.server.receive_frame(b"\x00\x57" + bytes(40), 0.5)
    assert p.server.counters["data_dropped"] == 3 and p.server.take_frames() == []
    p.run(10.0)
    p.server.receive_frame(b"\x21" + bytes(20), 11.0)
    assert p.server.counters["data_seen"] == 1 and p.server.take_frames() == []


def test_malformed_frames_are_counted() -> None:
    p = up_pair()
    for bad in (b"", b"\xff\x03", b"\xff\x03\x00", b"\x00\x00", b"\xff\x03\x02\x20", b"\x02"):
        p.server.receive_frame(bad, 10.0)
    assert p.server.counters["malformed_frame"] == 6
    assert p.server.take_frames() == [] and p.server.phase is Phase.NETWORK


def test_configure_request_flood_and_garbage_never_raise() -> None:
    p = up_pair()
    rng = ScriptedRng(start=7)
    for i in range(3000):
        which = i % 5
        if which == 0:
            payload = encode_cp(CpPacket(Code.CONFIGURE_REQUEST, i & 0xFF, b"\x01\x04\x05\xdc\x05\x06" + rng(4)))
            p.server.receive_frame(b"\xff\x03\xc0\x21" + payload, 10.0 + i * 0.001)
        elif which == 1:
            payload = encode_cp(CpPacket(Code.CONFIGURE_REQUEST, i & 0xFF, b"\x03\x06" + rng(4)))
            p.server.receive_frame(b"\xff\x03\x80\x21" + payload, 10.0 + i * 0.001)
        elif which == 2:
            p.server.receive_frame(rng(4) + rng(8), 10.0 + i * 0.001)
        elif which == 3:
            p.server.receive_frame(b"\xff\x03\xc2\x23" + rng(2) + b"\x00\x30" + rng(8), 10.0 + i * 0.001)
        else:
            p.server.handle_timer(10.0 + i * 0.001)
    for f in p.server.take_frames():
        assert f[:2] == b"\xff\x03"
        decode_frame(f)
    assert len(p.of("server", LinkDown)) + len([e for e in drain_events(p.server) if isinstance(e, LinkDown)]) <= 1
    p.server.handle_timer(100.0)
    drain_events(p.server)


_protocols = st.sampled_from([0xC021, 0xC023, 0xC223, 0x8021, 0x8057, 0x80FD, 0x0021, 0x0057, 0x8281, 0xC227])
_cp = st.builds(lambda c, i, d: encode_cp(CpPacket(c, i, d)), st.integers(0, 16), st.integers(0, 255),
                st.binary(max_size=40))
_frames = st.one_of(
    st.binary(max_size=48),
    st.builds(lambda proto, body: b"\xff\x03" + proto.to_bytes(2, "big") + body, _protocols,
              st.one_of(_cp, st.binary(max_size=40))),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["fresh", "establish", "authenticate", "network"]), st.sampled_from(list(M)),
       st.sampled_from(list(Role)), st.lists(st.tuples(_frames, st.floats(0, 5)), max_size=25))
def test_fuzz_never_raises(stage: str, method: AuthMethod, role: Role, inputs: list[tuple[bytes, float]]) -> None:
    p = LinkPair(server_link((method,), keepalive=3.0, use_ipv6=True),
                 client_link((method,), keepalive=3.0, use_ipv6=True), secrets={"ex": PASSWORD},
                 auth_delay_s=1000.0 if stage == "authenticate" else 0.0)
    if stage != "fresh":
        p.start(0.0)
        p.run({"establish": 0.0, "authenticate": 1.0, "network": 5.0}[stage])
    link = p.link(role.value)
    now = p.now
    downs = len(p.of(role.value, LinkDown))
    for frame, dt in inputs:
        now += dt
        link.receive_frame(frame, now)
        link.handle_timer(now)
        for out in link.take_frames():
            assert out[:2] == b"\xff\x03"
            decode_frame(out)
        downs += sum(isinstance(e, LinkDown) for e in drain_events(link))
    link.handle_timer(now + 1000.0)
    downs += sum(isinstance(e, LinkDown) for e in drain_events(link))
    assert downs <= 1
    assert isinstance(link.phase, Phase)
