"""LAC↔LNS scenarios over the in-memory link, with a fake clock: exact events, timers and answers."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from fastl2tp.control import events as ev
from fastl2tp.control.endpoint import Endpoint, EndpointConfig, TunnelSecret
from fastl2tp.control.transport import TransportConfig
from fastl2tp.control.tunnel import TunnelConfig, TunnelState
from fastl2tp.wire.avp import (
    Avp,
    AvpType,
    ControlMessage,
    ErrorCode,
    MessageType,
    ResultCode,
    StopCCNResult,
    avp,
    decode_message,
    encode_message,
)
from tests.control.factory import message
from tests.control.harness import LAC_ADDR, LNS_ADDR, Impairment, make_pair

import ipaddress


def no_leaks(ep: Endpoint) -> None:
    assert ep.tunnels == {}
    assert ep._by_peer == {} and ep._peer_key == {}
    assert ep._deadline == {}
    assert ep._half_open == set() and not ep._half_open_by_host
    assert ep.get_timer() is None


def up_pair(**kw):
    p = make_pair(**kw)
    tid = p.lac.open_tunnel(LNS_ADDR, 0.0)
    sid = p.lac.open_session(tid, 0.0)
    p.run(until=1.0)
    return p, tid, sid


def test_tunnel_and_session_up_and_down_without_leaks():
    p, tid, sid = up_pair()
    assert p.types("lac") == ["TunnelUp", "SessionUp"] == p.types("lns")
    up = p.events["lns"][1]
    assert isinstance(up, ev.SessionUp) and up.peer_session_id == sid
    p.lac.close_session(tid, sid, p.now)
    p.run(until=2.0)
    down = p.events["lns"][-1]
    assert isinstance(down, ev.SessionDown) and down.by_peer and down.was_up and down.result == ResultCode(3, 0)
    p.lac.close_tunnel(tid, p.now)
    p.run()
    assert p.types("lns")[-1] == "TunnelDown" and p.events["lns"][-1].by_peer
    no_leaks(p.lac)
    no_leaks(p.lns)


def test_1000_tunnels_under_20_percent_loss_duplication_and_reordering():
    tc = TunnelConfig(transport=TransportConfig(max_retries=10))
    p = make_pair(Impairment(loss=0.2, duplicate=0.05, reorder=0.2, seed=3),
                  EndpointConfig(tunnel=tc, accept_tunnels=False),
                  EndpointConfig(tunnel=tc, max_half_open=1000, max_half_open_per_peer=1000))
    tids = []
    for _ in range(1000):
        tid = p.lac.open_tunnel(LNS_ADDR, 0.0)
        p.lac.open_session(tid, 0.0)
        tids.append(tid)
    p.run(until=120.0)
    for side in ("lac", "lns"):
        assert Counter(p.types(side)) == {"TunnelUp": 1000, "SessionUp": 1000}, side
    for tid in tids:
        p.lac.close_tunnel(tid, p.now)
    p.run()
    for side in ("lac", "lns"):
        assert Counter(p.types(side)) == {"TunnelUp": 1000, "SessionUp": 1000, "TunnelDown": 1000,
                                          "SessionDown": 1000}, side
    no_leaks(p.lac)
    no_leaks(p.lns)
    assert p.lns.stats["internal_errors"] == p.lac.stats["internal_errors"] == 0


def test_tunnel_authentication_with_matching_secrets():
    secret = b"s3cret"
    lac = EndpointConfig(tunnel=TunnelConfig(secret=secret), accept_tunnels=False)
    lns = EndpointConfig(secrets=(TunnelSecret(ipaddress.ip_network("192.0.2.0/24"), secret),))
    p, tid, sid = up_pair(lac_cfg=lac, lns_cfg=lns)
    assert p.types("lac") == ["TunnelUp", "SessionUp"] == p.types("lns")


def test_lns_refuses_a_lac_with_the_wrong_secret():
    lac = EndpointConfig(tunnel=TunnelConfig(secret=b"wrong"), accept_tunnels=False)
    lns = EndpointConfig(secrets=(TunnelSecret(ipaddress.ip_network("192.0.2.0/24"), b"right"),))
    p = make_pair(lac_cfg=lac, lns_cfg=lns)
    p.lac.open_tunnel(LNS_ADDR, 0.0)
    p.run(until=5.0)
    # The LAC finds the LNS's Challenge Response wrong first (it challenged too): StopCCN result 4.
    (down,) = [e for e in p.events["lac"] if isinstance(e, ev.TunnelDown)]
    assert down.result.result == StopCCNResult.NOT_AUTHORIZED and not down.by_peer
    (down,) = [e for e in p.events["lns"] if isinstance(e, ev.TunnelDown)]
    assert down.by_peer and down.result.result == StopCCNResult.NOT_AUTHORIZED
    assert "TunnelUp" not in p.types("lns")


def test_lns_with_secret_refuses_lac_without_one():
    lac = EndpointConfig(accept_tunnels=False)
    lns = EndpointConfig(secrets=(TunnelSecret(ipaddress.ip_network("0.0.0.0/0"), b"right"),))
    p = make_pair(lac_cfg=lac, lns_cfg=lns)
    p.lac.open_tunnel(LNS_ADDR, 0.0)
    p.run(until=5.0)
    (down,) = [e for e in p.events["lac"] if isinstance(e, ev.TunnelDown)]
    assert down.result.result == StopCCNResult.NOT_AUTHORIZED  # challenged, but has no secret to answer with


def test_lns_checks_the_lacs_challenge_response_in_scccn():
    # A LAC that answers SCCRP's challenge with a wrong response: the LNS sends StopCCN result 4.
    lns = Endpoint(EndpointConfig(secrets=(TunnelSecret(ipaddress.ip_network("0.0.0.0/0"), b"k"),)),
                   rng=random.Random(1).randbytes)
    lns.receive_datagram(encode_message(message(MessageType.SCCRQ, 0, 0, 0, 0)), LAC_ADDR, 0.0)
    sccrp = decode_message(lns.datagrams_to_send()[0].data)
    assert sccrp.has(AvpType.CHALLENGE)
    tid = sccrp.get(AvpType.ASSIGNED_TUNNEL_ID)
    lns.receive_datagram(encode_message(message(MessageType.SCCCN, tid, 0, 1, 1,
                                                avp(AvpType.CHALLENGE_RESPONSE, bytes(16)))), LAC_ADDR, 0.1)
    stop = decode_message(lns.datagrams_to_send()[0].data)
    assert stop.msg_type is MessageType.StopCCN
    assert stop.get(AvpType.RESULT_CODE).result == StopCCNResult.NOT_AUTHORIZED
    assert stop.tunnel_id == 4242 and stop.get(AvpType.ASSIGNED_TUNNEL_ID) == tid


def test_hello_after_60_seconds_of_silence_exactly():
    p, tid, sid = up_pair()
    setup_end = p.now
    p.wire_log.clear()
    p.run(until=200.0)
    hellos = [(t, who) for t, who, data in p.wire_log
              if data[0] & 0x80 and decode_message(data).msg_type is MessageType.HELLO]
    # Each side hears nothing for 60 s after the set-up's last message; one side's HELLO (and its
    # ZLB ack) then counts as traffic for both, so HELLOs alternate at 60 s intervals.
    assert hellos, "no HELLO in 200 s of silence"
    first_t = hellos[0][0]
    assert setup_end < first_t <= setup_end + 60.0 + 1e-9
    times = [t for t, _ in hellos]
    assert all(b - a == pytest.approx(60.0) for a, b in zip(times, times[1:]))
    assert len(times) == 3
    assert p.lac.tunnels[tid].state is TunnelState.ESTABLISHED


def test_peer_vanishes_and_tunnel_is_declared_dead_after_the_retry_cycle():
    p, tid, sid = up_pair()
    p.impair.loss = 1.0  # the LNS is gone
    p.run()
    (down,) = [e for e in p.events["lac"] if isinstance(e, ev.TunnelDown)]
    assert down.result is None and "not responding" in down.reason
    # HELLO at +60 s, retried at 1, 2, 4, 8, 8 s: declared dead 31 s after the HELLO
    assert p.lac.tunnels == {}
    sd = [e for e in p.events["lac"] if isinstance(e, ev.SessionDown)]
    assert len(sd) == 1 and sd[0].was_up


def test_dead_peer_detection_time_is_exact():
    p, tid, sid = up_pair()
    lac_t = p.lac.tunnels[tid]
    p.impair.loss = 1.0
    hello_at = max(lac_t.transport.last_rx, lac_t._last_hello) + 60.0
    while tid in p.lac.tunnels:
        assert p.step()
    assert p.now == pytest.approx(hello_at + 31.0)


def test_unsupported_protocol_version_gets_stopccn_result_5():
    lns = Endpoint(EndpointConfig())
    m = ControlMessage(0, 0, 0, 0, message(MessageType.SCCRQ, 0, 0, 0, 0).avps)
    avps = tuple(avp(AvpType.PROTOCOL_VERSION, (2, 0)) if a.attr_type == AvpType.PROTOCOL_VERSION else a
                 for a in m.avps)
    lns.receive_datagram(encode_message(replace(m, avps=avps)), LAC_ADDR, 0.0)
    (out,) = [decode_message(d.data) for d in lns.datagrams_to_send()]
    assert out.msg_type is MessageType.StopCCN
    assert out.get(AvpType.RESULT_CODE).result == StopCCNResult.BAD_PROTOCOL_VERSION
    assert out.get(AvpType.RESULT_CODE).error == 0x0100  # the highest version we speak: 1.0


def _established_lns():
    lns = Endpoint(EndpointConfig(), rng=random.Random(5).randbytes)
    lns.receive_datagram(encode_message(message(MessageType.SCCRQ, 0, 0, 0, 0)), LAC_ADDR, 0.0)
    tid = decode_message(lns.datagrams_to_send()[0].data).get(AvpType.ASSIGNED_TUNNEL_ID)
    lns.receive_datagram(encode_message(message(MessageType.SCCCN, tid, 0, 1, 1)), LAC_ADDR, 0.0)
    lns.handle_timer(1.0)
    lns.datagrams_to_send()
    lns.take_events()
    return lns, tid


def _sent(ep):
    return [decode_message(d.data) for d in ep.datagrams_to_send()]


def test_outgoing_call_requests_are_refused_with_cdn():
    lns, tid = _established_lns()
    lns.receive_datagram(encode_message(message(MessageType.OCRQ, tid, 0, 2, 1)), LAC_ADDR, 2.0)
    (cdn,) = [m for m in _sent(lns) if not m.is_zlb]
    assert cdn.msg_type is MessageType.CDN and cdn.session_id == 77
    assert cdn.get(AvpType.RESULT_CODE).result == 5  # lack of appropriate facilities (permanent)
    assert lns.tunnels[tid].state is TunnelState.ESTABLISHED


def test_unknown_mandatory_avp_in_icrq_clears_only_that_call():
    lns, tid = _established_lns()
    bad = Avp(999, b"?", mandatory=True)
    lns.receive_datagram(encode_message(message(MessageType.ICRQ, tid, 0, 2, 1, bad)), LAC_ADDR, 2.0)
    (cdn,) = [m for m in _sent(lns) if not m.is_zlb]
    assert cdn.msg_type is MessageType.CDN
    assert cdn.get(AvpType.RESULT_CODE).error == ErrorCode.UNKNOWN_MANDATORY_AVP
    assert lns.tunnels[tid].state is TunnelState.ESTABLISHED
    # unknown AVP without the M bit: ignored, the call proceeds
    ok = Avp(999, b"?", mandatory=False)
    lns.receive_datagram(encode_message(message(MessageType.ICRQ, tid, 0, 3, 2, ok)), LAC_ADDR, 2.0)
    (icrp,) = [m for m in _sent(lns) if not m.is_zlb]
    assert icrp.msg_type is MessageType.ICRP


def test_unknown_mandatory_avp_in_sccrq_gets_stopccn_error_8():
    lns = Endpoint(EndpointConfig())
    lns.receive_datagram(encode_message(message(MessageType.SCCRQ, 0, 0, 0, 0, Avp(300, b"", mandatory=True,
                                                                                vendor_id=9))), LAC_ADDR, 0.0)
    (stop,) = _sent(lns)
    assert stop.msg_type is MessageType.StopCCN
    assert stop.get(AvpType.RESULT_CODE) .error == ErrorCode.UNKNOWN_MANDATORY_AVP


def test_unknown_message_type_ignored_without_m_and_fatal_with_m():
    lns, tid = _established_lns()
    odd = ControlMessage(tid, 0, 2, 1, (Avp(0, 99, mandatory=False),))
    lns.receive_datagram(encode_message(odd), LAC_ADDR, 2.0)
    lns.handle_timer(3.0)
    assert all(m.is_zlb for m in _sent(lns))
    assert lns.tunnels[tid].state is TunnelState.ESTABLISHED
    odd = ControlMessage(tid, 0, 3, 1, (Avp(0, 99, mandatory=True),))
    lns.receive_datagram(encode_message(odd), LAC_ADDR, 3.0)
    (stop,) = [m for m in _sent(lns) if not m.is_zlb]
    assert stop.msg_type is MessageType.StopCCN


def test_wen_and_sli_are_accepted():
    lns, tid = _established_lns()
    lns.receive_datagram(encode_message(message(MessageType.ICRQ, tid, 0, 2, 1)), LAC_ADDR, 2.0)
    sid = next(m for m in _sent(lns) if m.msg_type is MessageType.ICRP).get(AvpType.ASSIGNED_SESSION_ID)
    lns.receive_datagram(encode_message(message(MessageType.ICCN, tid, sid, 3, 2)), LAC_ADDR, 2.1)
    lns.receive_datagram(encode_message(message(MessageType.SLI, tid, sid, 4, 2)), LAC_ADDR, 2.2)
    lns.receive_datagram(encode_message(message(MessageType.WEN, tid, sid, 5, 2)), LAC_ADDR, 2.3)
    kinds = [type(e) for e in lns.take_events()]
    assert kinds == [ev.SessionUp, ev.SetLinkInfo, ev.WanErrorNotify]
    assert lns.tunnels[tid].sessions[sid].state.value == "established"


def test_clients_behind_one_nat_reusing_tunnel_ids_get_separate_tunnels():
    lns = Endpoint(EndpointConfig())
    for port in (50001, 50002, 50003):
        lns.receive_datagram(encode_message(message(MessageType.SCCRQ, 0, 0, 0, 0)), ("198.51.100.7", port), 0.0)
    assert len(lns.tunnels) == 3
    # a retransmitted SCCRQ from one of them does not make a fourth
    lns.receive_datagram(encode_message(message(MessageType.SCCRQ, 0, 0, 0, 0)), ("198.51.100.7", 50002), 1.0)
    assert len(lns.tunnels) == 3


def test_lac_follows_the_port_the_lns_answers_from_but_not_another_address():
    lac = Endpoint(EndpointConfig(accept_tunnels=False))
    tid = lac.open_tunnel(("203.0.113.1", 1701), 0.0)
    lac.datagrams_to_send()
    sccrp = message(MessageType.SCCRP, tid, 0, 0, 1)
    lac.receive_datagram(encode_message(sccrp), ("203.0.113.99", 1701), 0.1)  # another address
    assert lac.stats["drop_wrong_peer_address"] == 1
    lac.receive_datagram(encode_message(sccrp), ("203.0.113.1", 34567), 0.2)  # another port
    out = lac.datagrams_to_send()
    assert out and all(d.peer == ("203.0.113.1", 34567) for d in out)
    assert lac.tunnels[tid].state is TunnelState.ESTABLISHED


def test_half_open_tunnels_are_bounded():
    lns = Endpoint(EndpointConfig(max_half_open=10, max_half_open_per_peer=5))
    for i in range(20):
        lns.receive_datagram(encode_message(message(MessageType.SCCRQ, 0, 0, 0, 0, )),
                             (f"198.51.100.{i % 3}", 1000 + i), 0.0)
    assert len(lns.tunnels) == 10
    assert lns.stats["drop_half_open_limit"] == 10
    while lns.get_timer() is not None:  # unanswered SCCRPs are retried, then the state goes
        lns.handle_timer(lns.get_timer())
    assert len(lns.tunnels) == 0
    assert lns.get_timer() is None


def test_call_setup_timeout_sends_cdn_result_10():
    lns, tid = _established_lns()
    lns.receive_datagram(encode_message(message(MessageType.ICRQ, tid, 0, 2, 1)), LAC_ADDR, 2.0)
    _sent(lns)
    lns.receive_datagram(encode_message(ControlMessage(tid, 0, 3, 2)), LAC_ADDR, 2.5)  # ZLB ack of ICRP
    lns.handle_timer(32.0)
    cdn = [m for m in _sent(lns) if m.msg_type is MessageType.CDN]
    assert cdn and cdn[0].get(AvpType.RESULT_CODE).result == 10
    assert [type(e) for e in lns.take_events()] == [ev.SessionDown]


def test_tie_breaker_lower_value_wins():
    def sccrq_with(tb):
        return encode_message(message(MessageType.SCCRQ, 0, 0, 0, 0, avp(AvpType.TIE_BREAKER, tb)))

    ours = b"\x00" * 8
    ep = Endpoint(EndpointConfig(), rng=lambda n: ours[:n] if n == 8 else b"\x01" * n)
    tid = ep.open_tunnel(("198.51.100.1", 1701), 0.0)
    ep.receive_datagram(sccrq_with(b"\x10" * 8), ("198.51.100.1", 1701), 0.1)
    assert list(ep.tunnels) == [tid]  # ours is lower: their SCCRQ is discarded
    ids = iter(range(100, 200))
    ep2 = Endpoint(EndpointConfig(), rng=lambda n: b"\xff" * n if n == 8 else next(ids).to_bytes(n, "big"))
    tid2 = ep2.open_tunnel(("198.51.100.1", 1701), 0.0)
    ep2.receive_datagram(sccrq_with(b"\x10" * 8), ("198.51.100.1", 1701), 0.1)
    assert tid2 not in ep2.tunnels and len(ep2.tunnels) == 1  # we lost: their tunnel replaces ours
    (down, *_) = ep2.take_events()
    assert isinstance(down, ev.TunnelDown) and "tie-break" in down.reason


def test_tie_breaker_only_on_one_side_wins():
    def sccrq(*extra):
        return encode_message(message(MessageType.SCCRQ, 0, 0, 0, 0, *extra))

    peer = ("198.51.100.1", 1701)
    ids = iter(range(100, 200))
    nxt = lambda n: next(ids).to_bytes(n, "big") if n == 2 else b"\x00" * n  # noqa: E731
    # ours has one, theirs none: ours wins and their SCCRQ is discarded
    ep = Endpoint(EndpointConfig(), rng=nxt)
    tid = ep.open_tunnel(peer, 0.0)
    ep.receive_datagram(sccrq(), peer, 0.1)
    assert list(ep.tunnels) == [tid]
    # theirs has one, ours none: theirs wins
    ep = Endpoint(EndpointConfig(tunnel=TunnelConfig(send_tie_breaker=False)), rng=nxt)
    tid = ep.open_tunnel(peer, 0.0)
    ep.receive_datagram(sccrq(avp(AvpType.TIE_BREAKER, b"\x99" * 8)), peer, 0.1)
    assert tid not in ep.tunnels and len(ep.tunnels) == 1
    # neither: two tunnels
    ep = Endpoint(EndpointConfig(tunnel=TunnelConfig(send_tie_breaker=False)), rng=nxt)
    ep.open_tunnel(peer, 0.0)
    ep.receive_datagram(sccrq(), peer, 0.1)
    assert len(ep.tunnels) == 2


def test_garbage_never_disturbs_an_established_tunnel():
    p, tid, sid = up_pair()
    r = random.Random(11)
    lns_tid = next(iter(p.lns.tunnels))
    good = encode_message(ControlMessage(lns_tid, 0, 0, 0, ()))
    for i in range(3000):
        kind = i % 4
        if kind == 0:
            data = r.randbytes(r.randrange(0, 80))
        elif kind == 1:
            data = bytearray(good)
            data[r.randrange(len(data))] = r.randrange(256)
            data = bytes(data) + r.randbytes(r.randrange(0, 40))
        elif kind == 2:
            data = bytes([0xC8, 0x02]) + r.randbytes(r.randrange(0, 60))
        else:
            data = encode_message(ControlMessage(r.randrange(1, 65536), 0, 0, 0, ()))
        p.lns.receive_datagram(data, ("198.51.100.66", 1701), p.now)
    assert p.lns.stats["internal_errors"] == 0
    p.run(until=p.now + 200)
    assert p.lns.tunnels[lns_tid].state is TunnelState.ESTABLISHED
    assert p.lac.tunnels[tid].state is TunnelState.ESTABLISHED
