"""Malformed and hostile input never raises out of a machine: it is answered per the RFC or dropped
and counted. Also: the pure PPP modules do no I/O."""

from __future__ import annotations

from ipaddress import IPv4Address as A

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.ppp.ppp_harness import counting_rng, events

from fastl2tp.ppp.fsm import ControlProtocol, State
from fastl2tp.ppp.ipcp import Ipcp, IpcpConfig
from fastl2tp.ppp.ipv6cp import Ipv6cp
from fastl2tp.ppp.lcp import Lcp, LcpConfig
from fastl2tp.wire.auth import AuthMethod
from fastl2tp.wire.ppp import (
    Code,
    CpPacket,
    Option,
    decode_cp,
    encode_cp,
    encode_options,
)


def machines() -> list[ControlProtocol]:
    return [
        Lcp(LcpConfig(authenticate=(AuthMethod.MSCHAP2,), keepalive_timeout_s=5.0), rng=counting_rng()),
        Ipcp(IpcpConfig(local_address=A("10.0.0.1"), remote_address=A("10.0.0.2"), dns_servers=(A("1.1.1.1"),))),
        Ipv6cp(rng=counting_rng()),
    ]


def in_state(m: ControlProtocol, state: State) -> ControlProtocol:
    m.open(0.0)
    m.lower_up(0.0)
    m.take_output()
    events(m)
    m.state = state
    return m


def test_option_length_past_end_and_short_packets_are_dropped_and_counted() -> None:
    lcp = in_state(Lcp(LcpConfig(keepalive_timeout_s=None), rng=counting_rng()), State.REQ_SENT)
    for bad in [
        b"",
        b"\x01",
        b"\x01\x01\x00",
        b"\x01\x01\x00\x02",  # Length < 4
        b"\x01\x01\x00\x09\x01\x04",  # Length past the buffer
        encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, b"\x01\x09\x05\xdc")),  # option past the end
        encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, b"\x01\x00")),  # option length 0
        encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, b"\x01\x01")),  # option length 1
        encode_cp(CpPacket(Code.CONFIGURE_NAK, lcp._req_id, b"\x03\x07\xc2")),
        encode_cp(CpPacket(Code.CODE_REJECT, 1, b"")),
        encode_cp(CpPacket(Code.PROTOCOL_REJECT, 1, b"\xc0")),
        encode_cp(CpPacket(Code.ECHO_REQUEST, 1, b"\x00\x00")),
    ]:
        lcp.receive(bad, 1.0)
    assert lcp.take_output() == [] and events(lcp) == []
    assert lcp.state is State.REQ_SENT
    assert lcp.counters["malformed_packet"] == 12


def test_bad_replies_are_discarded() -> None:
    lcp = in_state(Lcp(LcpConfig(keepalive_timeout_s=None), rng=counting_rng()), State.REQ_SENT)
    lcp.state = State.REQ_SENT
    lcp._scr(0.0, State.REQ_SENT, State.REQ_SENT)
    [(_, req)] = lcp.take_output()
    req = decode_cp(req)
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, (req.identifier + 1) & 0xFF, req.data)), 1.0)  # wrong id
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, req.identifier, req.data + b"\x07\x02")), 1.0)  # not ours
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REJECT, req.identifier, b"\x11\x04\x05\xdc")), 1.0)  # not asked
    assert lcp.state is State.REQ_SENT and lcp.take_output() == []
    assert lcp.counters == {"stale_reply": 1, "bad_ack": 1, "bad_reject": 1}
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, req.identifier, req.data)), 1.0)
    assert lcp.state is State.ACK_RCVD
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, req.identifier, req.data)), 1.0)  # duplicate
    assert lcp.state is State.ACK_RCVD and lcp.counters["stale_reply"] == 2


def test_flood_of_configure_requests() -> None:
    for m in machines():
        in_state(m, State.REQ_SENT)
        answered = 0
        for i in range(2000):
            m.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, i & 0xFF, bytes([i % 7, 2]) * (i % 5))), i * 0.001)
            out = m.take_output()
            answered += len(out)
            assert all(decode_cp(p).code in (2, 3, 4, 1) for _, p in out)
            events(m)
        assert answered >= 2000  # every request gets an answer (plus our own requests on the way)
        assert m.state in (State.REQ_SENT, State.ACK_SENT, State.ACK_RCVD, State.OPENED)


def test_unknown_code_is_code_rejected_and_truncated() -> None:
    lcp = in_state(Lcp(LcpConfig(keepalive_timeout_s=None), rng=counting_rng()), State.REQ_SENT)
    lcp.peer_mru = 100
    big = encode_cp(CpPacket(0x55, 9, bytes(1000)))
    lcp.receive(big, 1.0)
    [(_, rej)] = lcp.take_output()
    assert len(rej) == 100
    assert decode_cp(rej).code == Code.CODE_REJECT and decode_cp(rej).data == big[:96]


_options = st.lists(st.builds(Option, st.integers(0, 255), st.binary(max_size=12)), max_size=6)
_packets = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda c, i, opts: encode_cp(CpPacket(c, i, encode_options(opts))),
              st.integers(0, 16), st.integers(0, 255), _options),
    st.builds(lambda c, i, d: encode_cp(CpPacket(c, i, d)), st.integers(0, 16), st.integers(0, 255),
              st.binary(max_size=40)),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(State)), st.lists(_packets, max_size=12), st.integers(0, 2))
def test_random_input_never_raises(state: State, inputs: list[bytes], which: int) -> None:
    m = in_state(machines()[which], state)
    now = 1.0
    for payload in inputs:
        m.receive(payload, now)
        now += 0.7
        m.handle_timer(now)
        for _, out in m.take_output():
            decode_cp(out)  # everything we send is well-formed
            assert len(out) <= max(m.peer_mru, 1500)
        events(m)
    assert isinstance(m.state, State)
