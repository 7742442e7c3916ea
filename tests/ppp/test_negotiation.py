"""Two endpoints over an in-memory link with a fake clock: LCP (server and client roles), IPCP,
IPv6CP; loss, reordering, duplication; authentication-method negotiation; Max-* limits."""

from __future__ import annotations

import random
from ipaddress import IPv4Address as A

import pytest
from tests.ppp.ppp_harness import Pair, counting_rng, events

from fastl2tp.ppp.fsm import (
    CpTimers,
    LayerDown,
    LayerFinished,
    LayerStarted,
    LayerUp,
    ProtocolRejected,
    State,
)
from fastl2tp.ppp.ipcp import Ipcp, IpcpConfig, IpcpValues
from fastl2tp.ppp.ipv6cp import Ipv6cp, Ipv6cpConfig
from fastl2tp.ppp.lcp import Lcp, LcpConfig, LcpOption
from fastl2tp.wire.auth import AuthMethod
from fastl2tp.wire.ppp import (
    Code,
    CpPacket,
    Protocol,
    decode_cp,
    decode_options,
    encode_cp,
)

M = AuthMethod


def lcp_pair(server: LcpConfig | None = None, client: LcpConfig | None = None) -> Pair:
    s = Lcp(server or LcpConfig(authenticate=(M.MSCHAP1, M.MSCHAP2), keepalive_timeout_s=None), rng=counting_rng(100))
    c = Lcp(client or LcpConfig(keepalive_timeout_s=None), rng=counting_rng(200))
    return Pair(s, c)


def up_values(m):
    evs = events(m)
    assert [type(e) for e in evs] == [LayerStarted, LayerUp], evs
    return evs[-1].values


# --- LCP -----------------------------------------------------------------------------------------


def test_lcp_server_and_client_converge() -> None:
    p = lcp_pair()
    p.start(0.0)
    assert p.a.state is State.OPENED and p.b.state is State.OPENED
    sv, cv = up_values(p.a), up_values(p.b)
    assert sv.auth is M.MSCHAP1 and cv.peer_auth is M.MSCHAP1  # RouterOS default order, client allows all
    assert sv.peer_auth is None and cv.auth is None
    assert (sv.mru, sv.peer_mru, cv.mru, cv.peer_mru) == (1450, 1450, 1450, 1450)
    assert sv.magic == cv.peer_magic == 100 and cv.magic == sv.peer_magic == 200
    assert p.a.get_timer() is None and p.b.get_timer() is None
    # 2 requests, 2 acks: nothing else was needed
    assert [(who, pkt.code) for who, pkt in p.log] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_auth_nak_moves_to_suggested_method() -> None:
    p = lcp_pair(client=LcpConfig(allow=(M.MSCHAP2,), keepalive_timeout_s=None))
    p.start(0.0)
    assert up_values(p.a).auth is M.MSCHAP2 and up_values(p.b).peer_auth is M.MSCHAP2
    naks = [pkt for who, pkt in p.log if pkt.code == Code.CONFIGURE_NAK]
    assert len(naks) == 1 and naks[0].data == b"\x03\x05\xc2\x23\x81"


def test_auth_nak_to_unoffered_method_moves_to_our_next() -> None:
    # SoftEther-like: the peer suggests PAP, which we do not offer; we go to our next (CHAP)
    p = lcp_pair(server=LcpConfig(authenticate=(M.MSCHAP2, M.CHAP), keepalive_timeout_s=None),
                 client=LcpConfig(allow=(M.PAP, M.CHAP), keepalive_timeout_s=None))
    p.start(0.0)
    assert up_values(p.a).auth is M.CHAP


def test_no_common_auth_method_finishes_with_reason() -> None:
    p = lcp_pair(server=LcpConfig(authenticate=(M.MSCHAP1, M.MSCHAP2), keepalive_timeout_s=None),
                 client=LcpConfig(allow=(M.PAP,), keepalive_timeout_s=None))
    p.start(0.0)
    now = p.run(0.0, until=30.0)
    evs = events(p.a)
    assert [type(e) for e in evs] == [LayerStarted, LayerFinished]
    assert "no common authentication method" in evs[-1].reason and "pap" in evs[-1].reason
    assert p.a.state is State.CLOSED
    term = [pkt for who, pkt in p.log if who == "a" and pkt.code == Code.TERMINATE_REQUEST]
    assert term and b"no common authentication method" in term[0].data
    assert now <= 30.0


def test_auth_rejected_by_peer_finishes() -> None:
    p = lcp_pair(client=LcpConfig(allow=(), keepalive_timeout_s=None))
    p.start(0.0)
    p.run(0.0, until=30.0)
    evs = events(p.a)
    assert isinstance(evs[-1], LayerFinished) and "refuses to authenticate" in evs[-1].reason
    rejects = [pkt for who, pkt in p.log if who == "b" and pkt.code == Code.CONFIGURE_REJECT]
    assert [r.data for r in rejects] == [b"\x03\x05\xc2\x23\x80", b"\x03\x05\xc2\x23\x81"]


def test_pap_via_nak() -> None:
    p = lcp_pair(server=LcpConfig(authenticate=(M.MSCHAP2, M.PAP), keepalive_timeout_s=None),
                 client=LcpConfig(allow=(M.PAP,), keepalive_timeout_s=None))
    p.start(0.0)
    assert up_values(p.a).auth is M.PAP and up_values(p.b).peer_auth is M.PAP


def test_first_request_lost_retransmitted_after_restart_timer() -> None:
    p = lcp_pair()
    dropped = []

    def drop(who: str, pkt: CpPacket) -> bool:
        if who == "a" and pkt.code == Code.CONFIGURE_REQUEST and not dropped:
            dropped.append(pkt)
            return True
        return False

    p.start(0.0, drop=drop)
    assert p.a.state is State.ACK_SENT and p.b.state is State.ACK_RCVD
    assert p.a.get_timer() == 3.0 and p.b.get_timer() == 3.0
    p.run(0.0, until=3.0, drop=drop)
    assert p.a.state is State.OPENED and p.b.state is State.OPENED
    retrans = [pkt for who, pkt in p.log if who == "a" and pkt.code == Code.CONFIGURE_REQUEST]
    assert len(retrans) == 2 and retrans[0] == retrans[1]  # same Identifier on retransmission


def test_lost_ack_then_late_duplicate_is_ignored() -> None:
    p = lcp_pair()
    p.start(0.0, duplicate=lambda who, pkt: True)
    assert p.a.state is State.OPENED and p.b.state is State.OPENED
    assert p.a.counters.get("stale_reply", 0) >= 1  # the duplicated Ack was discarded
    assert [type(e) for e in events(p.a)] == [LayerStarted, LayerUp]


def test_reordering_converges() -> None:
    p = lcp_pair(client=LcpConfig(allow=(M.MSCHAP2,), keepalive_timeout_s=None))
    p.start(0.0, reorder=True)
    p.run(0.0, until=60.0, reorder=True)
    assert p.a.state is State.OPENED and p.b.state is State.OPENED
    assert p.a.values.auth is M.MSCHAP2


def test_heavy_loss_converges_at_exact_times() -> None:
    p = lcp_pair()
    count = {"n": 0}

    def drop(who: str, pkt: CpPacket) -> bool:  # drop the first 3 packets on the link
        count["n"] += 1
        return count["n"] <= 3

    p.start(0.0, drop=drop)
    times = []
    now = 0.0
    while p.a.state is not State.OPENED or p.b.state is not State.OPENED:
        now = min(t for t in (p.a.get_timer(), p.b.get_timer()) if t is not None)
        times.append(now)
        p.a.handle_timer(now)
        p.b.handle_timer(now)
        p.pump(now, drop=drop)
    # t=3: a's retransmission is lost again, b's gets through; t=6: a's gets through
    assert times == [3.0, 6.0]


def test_max_configure_then_finished() -> None:
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None), rng=counting_rng())
    lcp.open(0.0)
    lcp.lower_up(0.0)
    sent_at = [0.0]
    assert len(lcp.take_output()) == 1
    now = 0.0
    while (t := lcp.get_timer()) is not None:
        now = t
        lcp.handle_timer(now)
        if lcp.take_output():
            sent_at.append(now)
    assert sent_at == [3.0 * i for i in range(10)]  # Max-Configure = 10 requests
    assert now == 30.0 and lcp.state is State.STOPPED
    evs = events(lcp)
    assert isinstance(evs[-1], LayerFinished) and "no answer" in evs[-1].reason


def test_terminate_with_reason() -> None:
    p = lcp_pair()
    p.start(0.0)
    events(p.a), events(p.b)
    p.b.close("User request", 5.0)
    p.pump(5.0)
    assert p.b.state is State.CLOSED and p.a.state is State.STOPPING
    a_evs, b_evs = events(p.a), events(p.b)
    assert a_evs == [LayerDown(Protocol.LCP, "peer terminated LCP: User request")]
    assert b_evs == [LayerDown(Protocol.LCP, "User request"), LayerFinished(Protocol.LCP, "User request")]
    assert p.a.get_timer() == 8.0  # zrc: one restart period in Stopping
    p.a.handle_timer(8.0)
    assert p.a.state is State.STOPPED
    assert events(p.a) == [LayerFinished(Protocol.LCP, "peer terminated LCP: User request")]


def test_terminate_unanswered_max_terminate() -> None:
    p = lcp_pair()
    p.start(0.0)
    p.b.close("bye", 10.0)
    sent = [10.0]
    p.b.take_output()
    while (t := p.b.get_timer()) is not None:
        p.b.handle_timer(t)
        if p.b.take_output():
            sent.append(t)
    assert sent == [10.0, 13.0]  # Max-Terminate = 2
    assert p.b.state is State.CLOSED
    assert events(p.b)[-1] == LayerFinished(Protocol.LCP, "bye")


def test_magic_loopback_detected() -> None:
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None), rng=counting_rng())
    lcp.open(0.0)
    lcp.lower_up(0.0)
    now = 0.0
    for _ in range(100):  # the link is looped back: everything we send comes back to us
        out = lcp.take_output()
        if not out:
            t = lcp.get_timer()
            if t is None:
                break
            now = t
            lcp.handle_timer(now)
            continue
        for _proto, payload in out:
            lcp.receive(payload, now)
    reasons = [e.reason for e in events(lcp) if isinstance(e, LayerFinished)]
    assert reasons and "loopback" in reasons[0]


def test_mru_nak_and_max_failure_turns_nak_into_reject() -> None:
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None, max_mtu=1400), rng=counting_rng())
    lcp.open(0.0)
    lcp.lower_up(0.0)
    lcp.take_output()
    answers = []
    for ident in range(8):
        lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, ident, b"\x01\x04\x06\x40")), 0.0)  # MRU 1600
        answers += [decode_cp(p) for _, p in lcp.take_output()]
    assert [a.code for a in answers] == [Code.CONFIGURE_NAK] * 5 + [Code.CONFIGURE_REJECT] * 3
    assert answers[0].data == b"\x01\x04\x05\x78"  # Nak'd down to our max-mtu 1400
    assert answers[5].data == b"\x01\x04\x06\x40"
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 9, b"\x01\x04\x00\x10")), 0.0)  # MRU 16
    [(_, p)] = lcp.take_output()
    assert decode_cp(p).code == Code.CONFIGURE_REJECT  # still past Max-Failure until an Ack is sent
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 10, b"")), 0.0)
    assert decode_cp(lcp.take_output()[0][1]).code == Code.CONFIGURE_ACK


def test_mru_small_is_naked_up() -> None:
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None), rng=counting_rng())
    lcp.open(0.0)
    lcp.lower_up(0.0)
    lcp.take_output()
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, b"\x01\x04\x00\x10")), 0.0)
    assert decode_cp(lcp.take_output()[0][1]) == CpPacket(Code.CONFIGURE_NAK, 1, b"\x01\x04\x00\x40")


def test_pfc_acfc_accm_accepted_and_reported() -> None:
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None, magic=False, mru=1500), rng=counting_rng())
    lcp.open(0.0)
    lcp.lower_up(0.0)
    [(_, req)] = lcp.take_output()
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, decode_cp(req).identifier, b"")), 0.0)
    opts = bytes.fromhex("0206000a0000" "0702" "0802" "05060a0b0c0d")
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 4, opts)), 0.0)
    assert decode_cp(lcp.take_output()[0][1]) == CpPacket(Code.CONFIGURE_ACK, 4, opts)
    v = lcp.values
    assert v.peer_pfc and v.peer_acfc and v.peer_accm == 0x000A0000 and v.peer_magic == 0x0A0B0C0D
    assert v.magic == 0 and v.mru == 1500


def test_multilink_options_rejected_without_mrru_and_negotiated_with() -> None:
    mp = bytes.fromhex("110405dc" "1202" "1307" "01" "c0a80001")  # MRRU 1500, SSNH, ED class 1
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None), rng=counting_rng())
    lcp.open(0.0)
    lcp.lower_up(0.0)
    lcp.take_output()
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, mp)), 0.0)
    assert decode_cp(lcp.take_output()[0][1]) == CpPacket(Code.CONFIGURE_REJECT, 1, mp)

    cfg = LcpConfig(keepalive_timeout_s=None, mrru=1600, short_seq=True, endpoint=b"\x01\x0a\x00\x00\x01")
    p = Pair(Lcp(cfg, rng=counting_rng(1)), Lcp(cfg, rng=counting_rng(50)))
    p.start(0.0)
    v = p.a.values
    assert (v.mrru, v.peer_mrru, v.short_seq, v.peer_short_seq) == (1600, 1600, True, True)
    assert v.endpoint == v.peer_endpoint == b"\x01\x0a\x00\x00\x01"


def test_callback_and_unknown_options_rejected_raw() -> None:
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None), rng=counting_rng())
    lcp.open(0.0)
    lcp.lower_up(0.0)
    lcp.take_output()
    opts = bytes.fromhex("0d0306" "0105057800" "f0050a0b0c")  # Callback, MRU with a bad length, type 240
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 3, opts)), 0.0)
    assert decode_cp(lcp.take_output()[0][1]) == CpPacket(Code.CONFIGURE_REJECT, 3, opts)


def opened_lcp(peer_mru: int = 1500) -> Lcp:
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None, max_mtu=1500, mru=1500), rng=counting_rng(0x11223344))
    lcp.open(0.0)
    lcp.lower_up(0.0)
    [(_, req)] = lcp.take_output()
    req = decode_cp(req)
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, req.identifier, req.data)), 0.0)
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 9, b"\x01\x04" + peer_mru.to_bytes(2, "big"))), 0.0)
    lcp.take_output()
    assert lcp.state is State.OPENED
    events(lcp)
    return lcp


def test_echo_reply_carries_our_magic_and_is_truncated_to_peer_mru() -> None:
    lcp = opened_lcp(peer_mru=100)
    lcp.receive(encode_cp(CpPacket(Code.ECHO_REQUEST, 0, bytes(4) + b"Aho Baka Manuke\x00")), 1.0)
    [(proto, reply)] = lcp.take_output()
    assert proto == Protocol.LCP
    assert decode_cp(reply) == CpPacket(Code.ECHO_REPLY, 0, (0x11223344).to_bytes(4, "big") + b"Aho Baka Manuke\x00")
    lcp.receive(encode_cp(CpPacket(Code.ECHO_REQUEST, 1, bytes(4) + bytes(1000))), 1.0)
    [(_, reply)] = lcp.take_output()
    assert len(reply) == 100 and decode_cp(reply).code == Code.ECHO_REPLY


def test_echo_request_before_opened_is_discarded() -> None:
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None), rng=counting_rng())
    lcp.open(0.0)
    lcp.lower_up(0.0)
    lcp.take_output()
    lcp.receive(encode_cp(CpPacket(Code.ECHO_REQUEST, 0, bytes(4) + b"x")), 0.0)  # SoftEther does this
    assert lcp.take_output() == [] and lcp.state is State.REQ_SENT


def test_protocol_reject_send_truncated_and_only_opened() -> None:
    closed = Lcp(LcpConfig(keepalive_timeout_s=None))
    closed.send_protocol_reject(0x8281, b"x", 0.0)
    assert closed.take_output() == []
    lcp = opened_lcp(peer_mru=64)
    lcp.send_protocol_reject(0x8281, bytes(range(200)), 1.0)  # MPLSCP from RouterOS
    [(_, pkt)] = lcp.take_output()
    assert len(pkt) == 64
    decoded = decode_cp(pkt)
    assert decoded.code == Code.PROTOCOL_REJECT and decoded.data[:2] == b"\x82\x81" and decoded.data[2:] == bytes(range(58))


def test_protocol_reject_received_reports_and_ncp_finishes() -> None:
    lcp = opened_lcp()
    ipcp = Ipcp(IpcpConfig())
    ipcp.open(0.0)
    ipcp.lower_up(0.0)
    ipcp.take_output()
    events(ipcp)
    lcp.receive(encode_cp(CpPacket(Code.PROTOCOL_REJECT, 5, b"\x80\x21\x01\x01\x00\x04")), 1.0)
    assert events(lcp) == [ProtocolRejected(Protocol.LCP, Protocol.IPCP)]
    assert lcp.state is State.OPENED
    ipcp.protocol_rejected(1.0)
    assert ipcp.state is State.STOPPED
    assert events(ipcp) == [LayerFinished(Protocol.IPCP, "IPCP protocol rejected by peer")]


def test_identification_and_time_remaining_silently_accepted() -> None:
    lcp = opened_lcp()
    lcp.receive(encode_cp(CpPacket(Code.IDENTIFICATION, 1, bytes(4) + b"MSRASV5.20")), 1.0)
    lcp.receive(encode_cp(CpPacket(Code.TIME_REMAINING, 2, bytes(8) + b"x")), 1.0)
    assert lcp.take_output() == [] and events(lcp) == [] and lcp.state is State.OPENED
    assert lcp.peer_identification == b"MSRASV5.20"
    # on an NCP these codes are unknown: Code-Reject
    ipcp = Ipcp(IpcpConfig())
    ipcp.open(0.0)
    ipcp.lower_up(0.0)
    ipcp.take_output()
    ipcp.receive(encode_cp(CpPacket(Code.IDENTIFICATION, 1, bytes(4))), 1.0)
    [(proto, rej)] = ipcp.take_output()
    assert proto == Protocol.IPCP and decode_cp(rej).code == Code.CODE_REJECT


def test_code_reject_of_configure_request_is_catastrophic() -> None:
    lcp = opened_lcp()
    lcp.receive(encode_cp(CpPacket(Code.CODE_REJECT, 1, b"\x01\x01\x00\x04")), 1.0)
    assert lcp.state is State.STOPPING
    assert [type(e) for e in events(lcp)] == [LayerDown]


def test_renegotiation_from_opened() -> None:
    p = lcp_pair()
    p.start(0.0)
    events(p.a), events(p.b)
    p.b.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 77, b"")), 1.0)  # the server renegotiates
    p.pump(1.0)
    assert p.a.state is State.OPENED and p.b.state is State.OPENED
    assert [type(e) for e in events(p.b)] == [LayerDown, LayerUp]


# --- IPCP ----------------------------------------------------------------------------------------

SERVER = IpcpConfig(local_address=A("10.0.103.1"), remote_address=A("10.0.103.2"),
                    dns_servers=(A("192.0.2.53"), A("192.0.2.54")), wins_servers=(A("192.0.2.137"),))


def test_ipcp_server_assigns_address_and_dns() -> None:
    p = Pair(Ipcp(SERVER), Ipcp(IpcpConfig(request_dns=True)))
    p.start(0.0)
    sv: IpcpValues = up_values(p.a)
    cv: IpcpValues = up_values(p.b)
    assert sv.address == A("10.0.103.1") and sv.peer_address == A("10.0.103.2")
    assert cv.address == A("10.0.103.2") and cv.peer_address == A("10.0.103.1")
    assert cv.dns == (A("192.0.2.53"), A("192.0.2.54")) and sv.peer_dns == cv.dns


def test_ipcp_client_with_wrong_address_is_corrected() -> None:
    p = Pair(Ipcp(SERVER), Ipcp(IpcpConfig(local_address=A("10.9.9.9"))))
    p.start(0.0)
    naks = [pkt for who, pkt in p.log if who == "a" and pkt.code == Code.CONFIGURE_NAK]
    assert naks[0].data == b"\x03\x06\x0a\x00\x67\x02"
    assert p.b.values.address == A("10.0.103.2")


def test_ipcp_dns_rejected_when_not_configured_client_drops_it() -> None:
    server = IpcpConfig(local_address=A("10.0.103.1"), remote_address=A("10.0.103.2"))
    p = Pair(Ipcp(server), Ipcp(IpcpConfig(request_dns=True)))
    p.start(0.0)
    rejects = [pkt for who, pkt in p.log if who == "a" and pkt.code == Code.CONFIGURE_REJECT]
    assert rejects[0].data == bytes.fromhex("810600000000830600000000")
    assert p.b.state is State.OPENED and p.b.values.dns == ()


def test_ipcp_nbns_vj_and_ip_addresses_rejected_or_handed_out() -> None:
    ipcp = Ipcp(SERVER)
    ipcp.open(0.0)
    ipcp.lower_up(0.0)
    ipcp.take_output()
    vj = bytes.fromhex("0206002d0f01")
    addrs = bytes.fromhex("010a0a0067020a006701")
    ipcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, vj + addrs + bytes.fromhex("840600000000"))), 0.0)
    assert decode_cp(ipcp.take_output()[0][1]) == CpPacket(Code.CONFIGURE_REJECT, 1,
                                                            vj + addrs + bytes.fromhex("840600000000"))
    ipcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 2, bytes.fromhex("030600000000820600000000"))), 0.0)
    assert decode_cp(ipcp.take_output()[0][1]) == CpPacket(
        Code.CONFIGURE_NAK, 2, bytes.fromhex("03060a006702" "8206c0000289"))


def test_ipcp_server_hints_address_when_omitted() -> None:
    ipcp = Ipcp(SERVER)
    ipcp.open(0.0)
    ipcp.lower_up(0.0)
    ipcp.take_output()
    ipcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, b"")), 0.0)
    assert decode_cp(ipcp.take_output()[0][1]) == CpPacket(Code.CONFIGURE_NAK, 1, b"\x03\x06\x0a\x00\x67\x02")


@pytest.mark.parametrize("seed", range(20))
def test_ipcp_with_random_loss_duplication_and_reordering(seed: int) -> None:
    rnd = random.Random(seed)
    p = Pair(Ipcp(SERVER), Ipcp(IpcpConfig(request_dns=True)))
    kw = {"drop": lambda who, pkt: rnd.random() < 0.3, "duplicate": lambda who, pkt: rnd.random() < 0.2,
          "reorder": seed % 2 == 1}
    p.start(0.0, **kw)
    p.run(0.0, until=120.0, **kw)  # 30% loss costs restart periods (and RFC renegotiations)
    assert p.a.state is State.OPENED and p.b.state is State.OPENED
    assert p.b.values.address == A("10.0.103.2") and p.a.values.peer_address == A("10.0.103.2")
    assert p.b.values.dns == (A("192.0.2.53"), A("192.0.2.54"))


# --- IPv6CP --------------------------------------------------------------------------------------


def test_ipv6cp_converges_with_distinct_identifiers() -> None:
    p = Pair(Ipv6cp(rng=counting_rng(1)), Ipv6cp(rng=counting_rng(1000)))
    p.start(0.0)
    a, b = up_values(p.a), up_values(p.b)
    assert a.interface_id == b.peer_interface_id == (1).to_bytes(8, "big")
    assert b.interface_id == a.peer_interface_id == (1000).to_bytes(8, "big")
    assert str(a.link_local) == "fe80::1"


def test_ipv6cp_equal_identifiers_are_naked() -> None:
    same = bytes.fromhex("0011223344556677")
    p = Pair(Ipv6cp(Ipv6cpConfig(interface_id=same), rng=counting_rng(5)),
             Ipv6cp(Ipv6cpConfig(interface_id=same), rng=counting_rng(9)))
    p.start(0.0)
    assert p.a.state is State.OPENED and p.b.state is State.OPENED
    assert p.a.values.interface_id != p.a.values.peer_interface_id
    assert any(pkt.code == Code.CONFIGURE_NAK for _, pkt in p.log)


def test_ipv6cp_zero_identifier_naked_and_compression_rejected() -> None:
    cp = Ipv6cp(rng=counting_rng(1))
    cp.open(0.0)
    cp.lower_up(0.0)
    cp.take_output()
    cp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, b"\x01\x0a" + bytes(8))), 0.0)
    nak = decode_cp(cp.take_output()[0][1])
    assert nak.code == Code.CONFIGURE_NAK
    [opt] = decode_options(nak.data)
    assert opt.type == 1 and opt.data != bytes(8) and opt.data != (1).to_bytes(8, "big")
    cp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 2, b"\x02\x04\x00\x4f")), 0.0)
    assert decode_cp(cp.take_output()[0][1]) == CpPacket(Code.CONFIGURE_REJECT, 2, b"\x02\x04\x00\x4f")


# --- a whole link: LCP, then the NCPs ------------------------------------------------------------


def test_lcp_then_ncps() -> None:
    timers = CpTimers(restart_s=1.0)
    lcp = lcp_pair(client=LcpConfig(allow=(M.MSCHAP2,), keepalive_timeout_s=None, timers=timers))
    lcp.start(0.0)
    assert lcp.a.values.auth is M.MSCHAP2
    for server, client in ((Ipcp(SERVER), Ipcp(IpcpConfig(request_dns=True))), (Ipv6cp(), Ipv6cp())):
        server.peer_mru = lcp.a.peer_mru
        client.peer_mru = lcp.b.peer_mru
        p = Pair(server, client)
        p.start(1.0)
        assert server.is_opened and client.is_opened
    assert LcpOption.AUTH_PROTOCOL in lcp.a.ours
