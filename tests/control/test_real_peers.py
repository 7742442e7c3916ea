"""Our machines answering real peers' captured messages (shared/traces): xl2tpd as LAC against our LNS,
SoftEther as LNS against our LAC. The header ids of the captured messages are rewritten to the ids our
side assigned; everything else is the peer's bytes."""

from __future__ import annotations

from dataclasses import replace

from fastl2tp.control import events as ev
from fastl2tp.control.endpoint import Endpoint, EndpointConfig
from fastl2tp.wire.avp import AvpType, MessageType, decode_message, encode_message
from tests.pcaputil import TRACES, l2tp_packets


def captured(path, src):
    """The non-ZLB control messages that ``src`` sent, with their UDP source."""
    out = []
    for p in l2tp_packets(path):
        if p.src == src and p.payload[0] & 0x80:
            m = decode_message(p.payload)
            if not m.is_zlb:
                out.append((m, (p.src, p.sport)))
    return out


def replies(ep: Endpoint):
    return [decode_message(d.data) for d in ep.datagrams_to_send()]


def avp_types(m):
    return {a.attr_type for a in m.avps}


def test_our_lns_answers_xl2tpd_lac_like_xl2tpd_lns_did():
    path = TRACES / "linux-xl2tpd-pppd" / "pap-nomppe.pcap"
    lac_msgs = captured(path, "192.0.2.20")
    real_lns = {m.msg_type: m for m, _ in captured(path, "192.0.2.10")}
    lns = Endpoint(EndpointConfig())
    now = 0.0
    our_tid = our_sid = 0
    answers: dict[MessageType, object] = {}
    for m, src in lac_msgs:
        if m.msg_type is not MessageType.SCCRQ:
            m = replace(m, tunnel_id=our_tid, session_id=our_sid if m.session_id else 0)
        lns.receive_datagram(encode_message(m), src, now)
        now += 0.2
        lns.handle_timer(now)
        for r in replies(lns):
            if r.is_zlb:
                continue
            answers[r.msg_type] = r
            if r.msg_type is MessageType.SCCRP:
                our_tid = r.get(AvpType.ASSIGNED_TUNNEL_ID)
            if r.msg_type is MessageType.ICRP:
                our_sid = r.get(AvpType.ASSIGNED_SESSION_ID)
    assert set(answers) == {MessageType.SCCRP, MessageType.ICRP}
    for mt in answers:
        assert avp_types(answers[mt]) == avp_types(real_lns[mt]), mt
        assert answers[mt].ns == real_lns[mt].ns
    kinds = [type(e) for e in lns.take_events()]
    assert kinds == [ev.TunnelUp, ev.SessionUp, ev.SessionDown, ev.TunnelDown]
    now += 60
    lns.handle_timer(now)
    assert lns.tunnels == {}


def test_our_lac_against_softether_lns():
    path = TRACES / "softether" / "pap-ipcp-ping.pcap"
    lns_msgs = captured(path, "10.99.0.1")
    real_lac = {m.msg_type: m for m, _ in captured(path, "10.99.0.2")}
    lac = Endpoint(EndpointConfig(accept_tunnels=False))
    server = ("10.99.0.1", 1701)
    now = 0.0
    tid = lac.open_tunnel(server, now)
    sid = lac.open_session(tid, now)
    sent = {m.msg_type: m for m in replies(lac)}
    for m, src in lns_msgs:
        lac.receive_datagram(encode_message(replace(m, tunnel_id=tid, session_id=sid if m.session_id else 0)),
                             src, now)
        now += 0.2
        lac.handle_timer(now)
        for r in replies(lac):
            if not r.is_zlb:
                sent[r.msg_type] = r
        if m.msg_type is MessageType.ICRP:
            # the session is up: hang up as the capture's LAC did (CDN, then StopCCN)
            lac.close_session(tid, sid, now)
            for r in replies(lac):
                sent[r.msg_type] = r
        if m.msg_type is MessageType.CDN:
            lac.close_tunnel(tid, now)
            for r in replies(lac):
                sent[r.msg_type] = r
    assert set(sent) >= {MessageType.SCCRQ, MessageType.SCCCN, MessageType.ICRQ, MessageType.ICCN, MessageType.CDN,
                         MessageType.StopCCN}
    for mt in (MessageType.SCCCN, MessageType.ICRQ, MessageType.ICCN, MessageType.CDN, MessageType.StopCCN):
        assert avp_types(sent[mt]) == avp_types(real_lac[mt]), mt
    kinds = [type(e) for e in lac.take_events()]
    assert kinds[:2] == [ev.TunnelUp, ev.SessionUp]
    assert ev.TunnelDown in kinds
    # SoftEther's own CDN for the already-cleared session and its StopCCN are absorbed quietly
    assert lac.stats["internal_errors"] == 0
    now += 60
    lac.handle_timer(now)
    assert lac.tunnels == {}
