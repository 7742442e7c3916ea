"""LCP keepalive with RouterOS semantics, timed exactly with a fake clock."""

from __future__ import annotations

from tests.ppp.ppp_harness import Pair, counting_rng, events

from fastl2tp.ppp.fsm import LayerDown, LayerFinished, State
from fastl2tp.ppp.lcp import Keepalive, KeepaliveAction, Lcp, LcpConfig
from fastl2tp.wire.ppp import Code, CpPacket, Protocol, decode_cp, encode_cp


def opened(timeout_s: float | None = 10.0, at: float = 100.0) -> Lcp:
    lcp = Lcp(LcpConfig(keepalive_timeout_s=timeout_s, mru=1500), rng=counting_rng(0xABCD))
    lcp.open(at)
    lcp.lower_up(at)
    [(_, req)] = lcp.take_output()
    req = decode_cp(req)
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, req.identifier, req.data)), at)
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, b"")), at)
    lcp.take_output()
    events(lcp)
    assert lcp.state is State.OPENED
    return lcp


def echoes(lcp: Lcp) -> list[CpPacket]:
    out = [decode_cp(p) for proto, p in lcp.take_output()]
    assert all(p.code == Code.ECHO_REQUEST for p in out)
    return out


def test_first_echo_at_timeout_then_every_second_then_down_after_five() -> None:
    lcp = opened()
    assert lcp.get_timer() == 110.0
    lcp.handle_timer(109.999)
    assert echoes(lcp) == []
    sent_at = []
    now = 100.0
    while lcp.state is State.OPENED:
        now = lcp.get_timer()
        lcp.handle_timer(now)
        if out := echoes(lcp):
            assert len(out) == 1 and out[0].data[:4] == (0xABCD).to_bytes(4, "big")  # our magic
            sent_at.append(now)
    assert sent_at == [110.0, 111.0, 112.0, 113.0, 114.0]
    assert now == 115.0
    assert events(lcp) == [LayerDown(Protocol.LCP, "keepalive timeout"),
                           LayerFinished(Protocol.LCP, "keepalive timeout")]
    assert lcp.state is State.INITIAL and lcp.get_timer() is None
    assert lcp.take_output() == []  # no Terminate-Request into a dead link


def test_any_received_packet_counts_as_life() -> None:
    lcp = opened()
    lcp.handle_timer(110.0)
    lcp.handle_timer(111.0)
    assert len(echoes(lcp)) == 2
    lcp.note_rx(111.5)  # e.g. a data frame; the link calls note_rx for everything
    assert lcp.get_timer() == 121.5
    lcp.handle_timer(112.0)
    assert echoes(lcp) == [] and lcp.get_timer() == 121.5
    lcp.handle_timer(121.5)
    assert len(echoes(lcp)) == 1 and lcp.get_timer() == 122.5
    # an LCP packet (here the Echo-Reply) counts too
    lcp.receive(encode_cp(CpPacket(Code.ECHO_REPLY, 9, bytes(4))), 122.0)
    assert lcp.get_timer() == 132.0 and lcp.state is State.OPENED


def test_peer_answering_keeps_link_up() -> None:
    a = opened()
    b = opened()
    p = Pair(a, b)
    p.run(100.0, until=400.0)
    assert a.state is State.OPENED and b.state is State.OPENED
    sent = [pkt for who, pkt in p.log if pkt.code == Code.ECHO_REQUEST]
    replies = [pkt for who, pkt in p.log if pkt.code == Code.ECHO_REPLY]
    assert len(sent) == len(replies) > 0


def test_keepalive_disabled() -> None:
    lcp = opened(timeout_s=None)
    assert lcp.get_timer() is None
    lcp.handle_timer(10_000.0)
    assert lcp.take_output() == [] and lcp.state is State.OPENED


def test_keepalive_stops_when_layer_goes_down() -> None:
    lcp = opened()
    lcp.close("bye", 105.0)
    lcp.take_output()
    assert lcp.get_timer() == 108.0  # only the Terminate-Request restart timer


def test_keepalive_unit() -> None:
    k = Keepalive(5.0, interval_s=1.0, max_unanswered=2)
    assert k.get_timer() is None
    k.start(0.0)
    assert k.get_timer() == 5.0
    assert k.handle_timer(4.0) is KeepaliveAction.NONE
    assert k.handle_timer(5.0) is KeepaliveAction.SEND_ECHO
    assert k.handle_timer(6.0) is KeepaliveAction.SEND_ECHO
    assert k.handle_timer(6.5) is KeepaliveAction.NONE
    assert k.handle_timer(7.0) is KeepaliveAction.DEAD
    assert k.get_timer() is None
