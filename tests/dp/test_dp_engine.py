"""_dp.DataPlane on real UDP sockets, with a datagram socketpair standing in for each TUN device (no
privileges needed; tests/dp/test_dp_tun.py runs the same paths on real TUN devices in a namespace).

Everything sent to the data plane is built with the pure codecs (wire.l2tp, wire.ppp), and everything it
sends is decoded with them: they are the oracle."""

from __future__ import annotations

import os
import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp import _dp
from fastl2tp.errors import DecodeError
from fastl2tp.wire import l2tp, ppp

from .engine_util import (
    PEER_SID,
    PEER_TID,
    SID,
    TID,
    Harness,
    control_message,
    data_message,
    drain,
    icmp4,
    ppp_frame,
    syn4,
    syn6,
    udp4,
    udp6,
)
from .test_dp_batch import expected_reason
from .test_dp_mss import assert_checksum_ok, mss_of

LCP_ECHO = ppp_frame(ppp.Protocol.LCP, bytes([9, 1, 0, 8, 1, 2, 3, 4]))


@pytest.fixture
def h():
    harness = Harness.make()
    yield harness
    harness.close()


def zero_drops_except(counters: dict, **expected: int) -> None:
    reasons = {r.name.lower() for r in _dp.DropReason if r != _dp.DropReason.OK}
    assert {k: v for k, v in counters.items() if k in reasons and v} == expected


def decode_sent(datagram: bytes):
    """(header, PPP frame) of a data message the data plane sent, through the oracle."""
    header, start, end = l2tp.decode_header(datagram)
    assert not header.is_control
    assert end == len(datagram)
    return header, ppp.decode_frame(datagram[start:end])


# --- UDP -> TUN ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [
    {}, {"length": True}, {"ns": 7}, {"length": True, "ns": 65535}, {"offset": 3}, {"offset": 0},
])
@pytest.mark.parametrize("acfc,pfc", [(False, False), (True, True), (True, False), (False, True)])
def test_ip_packets_reach_the_tun_as_sent(h, shape, acfc, pfc):
    packets = [icmp4(), udp4(b"x" * 1000), udp6()]
    msgs = [data_message(TID, SID, ppp_frame(0x57 if p[0] >> 4 == 6 else 0x21, p, acfc=acfc, pfc=pfc), **shape)
            for p in packets]
    before = time.monotonic_ns()
    assert h.to_dp(*msgs) == 3
    after = time.monotonic_ns()
    assert drain(h.tun) == packets
    stats = h.dp.session_stats(TID, SID)
    assert stats["rx_packets"] == 3
    assert stats["rx_bytes"] == sum(map(len, packets))
    assert before <= stats["last_rx_ns"] <= after
    assert stats["last_tx_ns"] == 0
    # the cheap accessor print, monitor and metrics use says the same
    assert h.dp.session_traffic(TID, SID) == (3, stats["rx_bytes"], 0, 0, stats["last_rx_ns"], 0)
    c = h.dp.counters()
    assert (c["rx_datagrams"], c["rx_ip"], c["rx_control"], c["rx_ppp"]) == (3, 3, 0, 0)
    zero_drops_except(c)
    assert h.dp.take_punted() == []


def test_length_field_trims_udp_padding(h):
    msg = data_message(TID, SID, ppp_frame(0x21, udp4()), length=True)
    assert h.to_dp(msg + b"\0\0\0padding") == 1
    assert drain(h.tun) == [udp4()]


def test_ip_version_must_match_the_ppp_protocol(h):
    assert h.to_dp(data_message(TID, SID, ppp_frame(0x21, udp6())),
                   data_message(TID, SID, ppp_frame(0x57, udp4())),
                   data_message(TID, SID, ppp_frame(0x21, b""))) == 3
    assert drain(h.tun) == []
    assert h.dp.session_stats(TID, SID)["drops"]["bad_ip"] == 3
    zero_drops_except(h.dp.counters(), bad_ip=3)


def test_many_datagrams_take_several_bursts():
    h = Harness.make(batch=8, max_bursts=4)
    try:
        msgs = [data_message(TID, SID, ppp_frame(0x21, udp4(bytes([i])))) for i in range(40)]
        for m in msgs:
            h.peer.sendto(m, h.dp_addr)
        assert h.dp.rx_udp(h.si) == 32              # max_bursts x batch
        assert h.dp.rx_udp(h.si) == 8
        assert h.dp.rx_udp(h.si) == 0                # EAGAIN is not an error
        assert drain(h.tun) == [udp4(bytes([i])) for i in range(40)]
    finally:
        h.close()


# --- punts -------------------------------------------------------------------------------------------------


def test_control_messages_are_punted_with_their_source(h):
    ctrl = control_message()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    h.others.append(other)
    other.bind(("127.0.0.1", 0))
    assert h.to_dp(ctrl) == 1
    assert h.to_dp(control_message(tid=99, ns=1), via=other) == 1    # any source, any tunnel id
    assert h.dp.punted == 2
    assert h.dp.take_punted() == [
        ("control", ctrl, ("127.0.0.1", h.peer.getsockname()[1]), h.si),
        ("control", control_message(tid=99, ns=1), ("127.0.0.1", other.getsockname()[1]), h.si),
    ]
    assert h.dp.take_punted() == []
    assert h.dp.counters()["rx_control"] == 2


@pytest.mark.parametrize("frame", [
    LCP_ECHO,
    ppp_frame(ppp.Protocol.PAP, bytes([1, 1, 0, 4])),
    ppp_frame(ppp.Protocol.CHAP, bytes([1, 1, 0, 4])),
    ppp_frame(ppp.Protocol.IPCP, bytes([1, 1, 0, 4])),
    ppp_frame(ppp.Protocol.IPV6CP, bytes([1, 1, 0, 4])),
    ppp_frame(ppp.Protocol.CCP, bytes([1, 1, 0, 4])),
    ppp_frame(ppp.Protocol.COMPRESSED, b"\x90\x00encrypted"),
    ppp_frame(ppp.Protocol.MP, b"\xc0\x00\x00\x01" + udp4()),
    ppp_frame(0x4021, b"unknown"),
    ppp_frame(ppp.Protocol.IPCP, bytes([1, 1, 0, 4]), acfc=True),
    ppp_frame(0x00FD, b"\x90\x00", pfc=True),
])
def test_ppp_control_frames_are_punted_as_carried(h, frame):
    assert h.to_dp(data_message(TID, SID, frame, ns=3)) == 1
    assert h.dp.take_punted() == [("ppp", TID, SID, frame)]
    assert drain(h.tun) == []
    stats = h.dp.session_stats(TID, SID)
    assert (stats["rx_punted"], stats["rx_packets"], stats["last_rx_ns"]) == (1, 0, 0)   # not traffic
    assert h.dp.counters()["rx_ppp"] == 1


def test_a_full_punt_queue_drops_and_counts():
    h = Harness.make(punt_slots=2)
    try:
        assert h.to_dp(control_message(), data_message(TID, SID, LCP_ECHO), data_message(TID, SID, LCP_ECHO),
                       control_message()) == 4
        assert len(h.dp.take_punted()) == 2
        assert h.dp.counters()["punt_full"] == 2
        assert h.dp.session_stats(TID, SID)["drops"]["punt_full"] == 1
        assert h.to_dp(control_message()) == 1       # drained: room again
        assert len(h.dp.take_punted()) == 1
    finally:
        h.close()


# --- drops ------------------------------------------------------------------------------------------------


def test_unknown_session_and_wrong_peer_are_counted_drops(h):
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    h.others.append(stranger)
    stranger.bind(("127.0.0.1", 0))
    ip = ppp_frame(0x21, udp4())
    assert h.to_dp(data_message(TID, SID + 1, ip), data_message(TID + 1, SID, ip)) == 2
    assert h.to_dp(data_message(TID, SID, ip), data_message(TID, SID, LCP_ECHO), via=stranger) == 2
    assert drain(h.tun) == []
    assert h.dp.take_punted() == []
    c = h.dp.counters()
    zero_drops_except(c, no_session=2, peer_mismatch=2)
    assert h.dp.session_stats(TID, SID)["drops"]["peer_mismatch"] == 2
    assert h.dp.session_stats(TID, SID)["rx_packets"] == 0


def test_parse_failures_are_counted_by_reason(h):
    assert h.to_dp(b"", b"\x00\x03" + bytes(10), data_message(TID, SID, b""),
                   data_message(TID, SID, b"\xff\x03\x00\x20")) == 4
    zero_drops_except(h.dp.counters(), short=1, bad_version=1, ppp_short=1, ppp_bad_proto=1)
    assert h.dp.session_stats(TID, SID)["drops"]["ppp_short"] == 1


def test_datagram_larger_than_a_slot_is_dropped():
    h = Harness.make(slot_size=1024)
    try:
        assert h.to_dp(data_message(TID, SID, ppp_frame(0x21, udp4(bytes(1100))))) == 1
        assert drain(h.tun) == []
        zero_drops_except(h.dp.counters(), too_big=1)
    finally:
        h.close()


def test_failed_tun_write_is_counted(h):
    ro = os.open("/dev/null", os.O_RDONLY)
    try:
        h.dp.update_session(TID, SID, tun_fd=ro)
        assert h.to_dp(data_message(TID, SID, ppp_frame(0x21, udp4()))) == 1
        assert h.dp.session_stats(TID, SID)["drops"]["tun_write"] == 1
        assert h.dp.session_stats(TID, SID)["rx_packets"] == 0
    finally:
        os.close(ro)


def test_session_without_a_tun_yet(h):
    # the session exists while PPP negotiates; the interface comes later
    h.dp.update_session(TID, SID, tun_fd=-1)
    assert h.to_dp(data_message(TID, SID, ppp_frame(0x21, udp4())), data_message(TID, SID, LCP_ECHO)) == 2
    assert h.dp.take_punted() == [("ppp", TID, SID, LCP_ECHO)]
    assert h.dp.session_stats(TID, SID)["drops"]["no_tun"] == 1
    with pytest.raises(ValueError):
        h.dp.rx_tun(h.slot)
    assert h.dp.send_ppp(TID, SID, LCP_ECHO)
    h.dp.update_session(TID, SID, tun_fd=h.tun_dp.fileno())
    assert h.to_dp(data_message(TID, SID, ppp_frame(0x21, udp4()))) == 1
    assert drain(h.tun) == [udp4()]


# --- TUN -> UDP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("tx_seq", [False, True])
@pytest.mark.parametrize("tx_length", [False, True])
def test_tun_packets_go_out_as_data_messages(tx_seq, tx_length):
    h = Harness.make(tx_seq=tx_seq, tx_length=tx_length)
    try:
        packets = [icmp4(), udp4(b"y" * 1300), udp6()]
        before = time.monotonic_ns()
        assert h.from_tun(*packets) == 3
        after = time.monotonic_ns()
        sent = drain(h.peer)
        assert len(sent) == 3
        for i, (datagram, packet) in enumerate(zip(sent, packets)):
            header, frame = decode_sent(datagram)
            assert (header.tunnel_id, header.session_id) == (PEER_TID, PEER_SID)
            assert (header.ns, header.nr) == ((i, 0) if tx_seq else (None, None))
            assert header.length == (len(datagram) if tx_length else None)
            assert header.offset_size is None and not header.priority
            assert datagram[header.size:header.size + 2] == b"\xff\x03"       # never ACFC
            assert frame == ppp.Frame(0x57 if packet[0] >> 4 == 6 else 0x21, packet)
        stats = h.dp.session_stats(TID, SID)
        assert (stats["tx_packets"], stats["tx_bytes"]) == (3, sum(map(len, packets)))
        assert before <= stats["last_tx_ns"] <= after
        assert stats["tx_ns"] == (3 if tx_seq else 0)
        c = h.dp.counters()
        assert (c["tun_reads"], c["tx_ip"]) == (3, 3)
        zero_drops_except(c)
    finally:
        h.close()


def test_tun_burst_larger_than_the_batch():
    h = Harness.make(batch=4, max_bursts=2)
    try:
        packets = [udp4(bytes([i])) for i in range(11)]
        assert h.from_tun(*packets) == 8
        assert h.dp.rx_tun(h.slot) == 3
        assert h.dp.rx_tun(h.slot) == 0
        assert [decode_sent(d)[1].payload for d in drain(h.peer)] == packets
        c = h.dp.counters()
        assert (c["tun_reads"], c["tx_ip"]) == (11, 11)
    finally:
        h.close()


def test_tun_packets_that_are_not_ip_or_too_big_are_dropped():
    h = Harness.make(slot_size=1024)
    try:
        # a 0-byte read (never from a real TUN) ends the burst like EAGAIN
        assert h.from_tun(b"\x50" + bytes(30), b"", udp4(bytes(2000)), udp4()) == 1
        assert h.dp.rx_tun(h.slot) == 2
        assert [decode_sent(d)[1].payload for d in drain(h.peer)] == [udp4()]
        assert h.dp.session_stats(TID, SID)["drops"]["bad_ip"] == 1
        assert h.dp.session_stats(TID, SID)["drops"]["too_big"] == 1
    finally:
        h.close()


def test_send_errors_skip_the_failing_message_and_go_on():
    # A broadcast peer without SO_BROADCAST: every message of the sendmmsg fails with EACCES.
    h = Harness.make()
    try:
        h.dp.update_session(TID, SID, peer_ip="255.255.255.255", peer_port=1701)
        assert h.from_tun(udp4(), udp4(), udp4()) == 3
        stats = h.dp.session_stats(TID, SID)
        assert stats["drops"]["udp_send"] == 3
        assert stats["tx_packets"] == 0
        with pytest.raises(PermissionError):
            h.dp.send_ppp(TID, SID, LCP_ECHO)
        assert h.dp.session_stats(TID, SID)["drops"]["udp_send"] == 4
    finally:
        h.close()


def test_rx_tun_on_a_dead_fd_raises():
    h = Harness.make()
    try:
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        h.dp.update_session(TID, SID, tun_fd=r)      # closed: read() gives EBADF
        with pytest.raises(OSError):
            h.dp.rx_tun(h.slot)
        with pytest.raises(KeyError):
            h.dp.rx_tun(h.slot + 1)
    finally:
        h.close()


# --- MSS clamping -----------------------------------------------------------------------------------


@pytest.mark.parametrize("syn,clamped", [(syn4, 1360), (syn6, 1340)])   # IPv6: 20 less (MTU - 60)
def test_mss_clamped_both_ways(syn, clamped):
    h = Harness.make(mss=1360)
    try:
        assert h.to_dp(data_message(TID, SID, ppp_frame(0x57 if syn is syn6 else 0x21, syn()))) == 1
        (inbound,) = drain(h.tun)
        assert mss_of(inbound) == clamped
        assert_checksum_ok(inbound)
        assert h.from_tun(syn()) == 1
        (datagram,) = drain(h.peer)
        outbound = decode_sent(datagram)[1].payload
        assert mss_of(outbound) == clamped
        assert_checksum_ok(outbound)
        assert h.dp.session_stats(TID, SID)["mss_clamped"] == 2
        assert h.dp.counters()["mss_clamped"] == 2
        # smaller MSS and MSS clamping off: untouched
        assert h.from_tun(syn(1200)) == 1
        assert decode_sent(drain(h.peer)[0])[1].payload == syn(1200)
        h.dp.update_session(TID, SID, mss=0)
        assert h.from_tun(syn()) == 1
        assert decode_sent(drain(h.peer)[0])[1].payload == syn()
    finally:
        h.close()


# --- send_ppp ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tx_seq", [False, True])
@pytest.mark.parametrize("tx_length", [False, True])
def test_send_ppp_decodes_with_the_oracle(tx_seq, tx_length):
    h = Harness.make(tx_seq=tx_seq, tx_length=tx_length)
    try:
        frames = [LCP_ECHO, ppp_frame(ppp.Protocol.IPCP, bytes([1, 7, 0, 10, 3, 6, 10, 0, 0, 1]))]
        assert all(h.dp.send_ppp(TID, SID, f) for f in frames)
        assert h.from_tun(udp4()) == 1
        assert h.dp.send_ppp(TID, SID, frames[0])
        sent = drain(h.peer)
        for i, datagram in enumerate(sent):
            header, start, end = l2tp.decode_header(datagram)
            assert (header.is_control, header.tunnel_id, header.session_id) == (False, PEER_TID, PEER_SID)
            assert (header.ns, header.nr) == ((i, 0) if tx_seq else (None, None))  # one Ns sequence for both
            assert header.length == (len(datagram) if tx_length else None)
            if i != 2:
                assert datagram[start:end] == frames[0 if i == 3 else i]
        stats = h.dp.session_stats(TID, SID)
        assert (stats["tx_ppp"], stats["tx_packets"]) == (3, 1)
        with pytest.raises(KeyError):
            h.dp.send_ppp(TID, SID + 1, LCP_ECHO)
        with pytest.raises(ValueError):
            h.dp.send_ppp(TID, SID, b"")
        with pytest.raises(ValueError):
            h.dp.send_ppp(TID, SID, bytes(5000))
    finally:
        h.close()


# --- addresses ----------------------------------------------------------------------------------------


def test_ipv6_peers():
    h = Harness.make(socket.AF_INET6, "::1")
    try:
        assert h.to_dp(data_message(TID, SID, ppp_frame(0x21, udp4())), control_message()) == 2
        assert drain(h.tun) == [udp4()]
        assert h.dp.take_punted() == [("control", control_message(), ("::1", h.peer.getsockname()[1]), h.si)]
        assert h.from_tun(udp6()) == 1
        assert decode_sent(drain(h.peer)[0])[1].payload == udp6()
        assert h.dp.session_stats(TID, SID)["peer"] == ("::1", h.peer.getsockname()[1])
    finally:
        h.close()


def test_ipv4_peer_on_a_dual_stack_socket_is_v4_mapped():
    h = Harness.make(socket.AF_INET6, "::", peer_host="127.0.0.1")
    try:
        port = h.sock.getsockname()[1]
        peer_port = h.peer.getsockname()[1]
        for d in (data_message(TID, SID, ppp_frame(0x21, udp4())), control_message()):
            h.peer.sendto(d, ("127.0.0.1", port))
        assert h.dp.rx_udp(h.si) == 2
        assert drain(h.tun) == [udp4()]
        assert h.dp.take_punted() == [("control", control_message(), ("::ffff:127.0.0.1", peer_port), h.si)]
        assert h.from_tun(udp4()) == 1
        assert decode_sent(drain(h.peer)[0])[1].payload == udp4()
        assert h.dp.session_stats(TID, SID)["peer"] == ("::ffff:127.0.0.1", peer_port)
        h.dp.update_session(TID, SID, mss=1300)          # the address survives an update
        assert h.dp.session_stats(TID, SID)["peer"] == ("::ffff:127.0.0.1", peer_port)
    finally:
        h.close()


def test_peer_address_change(h):
    newpeer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    h.others.append(newpeer)
    newpeer.bind(("127.0.0.1", 0))
    ip = data_message(TID, SID, ppp_frame(0x21, udp4()))
    h.dp.update_session(TID, SID, peer_port=newpeer.getsockname()[1], peer_tunnel_id=11, peer_session_id=21,
                        tx_seq=True)
    assert h.to_dp(ip) == 1 and h.to_dp(ip, via=newpeer) == 1
    assert len(drain(h.tun)) == 1
    assert h.dp.session_stats(TID, SID)["drops"]["peer_mismatch"] == 1
    assert h.from_tun(udp4()) == 1
    header, _ = decode_sent(newpeer.recv(2048))
    assert (header.tunnel_id, header.session_id, header.ns) == (11, 21, 0)
    stats = h.dp.session_stats(TID, SID)
    assert (stats["peer"], stats["tx_seq"]) == (("127.0.0.1", newpeer.getsockname()[1]), True)


def test_argument_checks(h):
    dp = h.dp
    with pytest.raises(ValueError):          # IPv6 peer on an IPv4 socket
        dp.add_session(5, 5, 5, 5, "::1", 1701, h.si, h.tun_dp.fileno())
    with pytest.raises(ValueError):
        dp.add_session(0, 5, 5, 5, "127.0.0.1", 1701, h.si, h.tun_dp.fileno())
    with pytest.raises(ValueError):
        dp.add_session(5, 5, 5, 5, "127.0.0.1", 0, h.si, h.tun_dp.fileno())
    with pytest.raises(ValueError):
        dp.add_session(5, 5, 5, 5, "not-an-ip", 1701, h.si, h.tun_dp.fileno())
    with pytest.raises(ValueError):
        dp.add_session(5, 5, 5, 5, "127.0.0.1", 1701, h.si + 1, h.tun_dp.fileno())
    with pytest.raises(ValueError):
        dp.add_session(5, 5, 5, 5, "127.0.0.1", 1701, h.si, h.tun_dp.fileno(), mss=70000)
    with pytest.raises(ValueError):
        dp.add_session(5, 5, 5, 5, "127.0.0.1", 1701, h.si, h.tun_dp.fileno(), mss=39)
    with pytest.raises(ValueError):
        dp.update_session(TID, SID, mss=1)
    with pytest.raises(ValueError):
        dp.add_session(5, 5, 5, 5, "127.0.0.1", 1701, h.si, -2)
    with pytest.raises(ValueError):          # exists
        dp.add_session(TID, SID, 5, 5, "127.0.0.1", 1701, h.si, h.tun_dp.fileno())
    with pytest.raises(ValueError):
        dp.add_socket(h.sock.fileno())       # already registered
    with pytest.raises(ValueError):
        dp.add_socket(h.tun.fileno())        # not IP
    with pytest.raises(OSError):
        dp.add_socket(-1)
    with pytest.raises(ValueError):
        dp.remove_socket(h.si)               # in use
    with pytest.raises(ValueError):
        dp.rx_udp(h.si + 1)
    with pytest.raises(KeyError):
        dp.update_session(TID, SID + 1, mss=0)
    with pytest.raises(ValueError):
        dp.update_session(TID, SID, peer_ip="::1")
    assert dp.session_stats(TID, SID)["peer"] == ("127.0.0.1", h.peer.getsockname()[1])   # unchanged
    with pytest.raises(ValueError):
        _dp.DataPlane(batch=0)
    with pytest.raises(ValueError):
        _dp.DataPlane(headroom=8)
    dp.remove_session(TID, SID)
    dp.remove_socket(h.si)
    assert dp.sessions() == 0


# --- the session table -------------------------------------------------------------------------------


def test_session_table_fills_and_reuses_slots(h):
    dp = _dp.DataPlane(max_sessions=3)
    si = dp.add_socket(h.sock.fileno())
    slots = [dp.add_session(1, s, 1, s, "127.0.0.1", 1701, si, 0) for s in (1, 2, 3)]
    assert slots == [0, 1, 2] and dp.sessions() == 3
    with pytest.raises(ValueError):
        dp.add_session(1, 4, 1, 4, "127.0.0.1", 1701, si, 0)
    dp.remove_session(1, 2)
    with pytest.raises(KeyError):
        dp.remove_session(1, 2)
    assert dp.lookup(1, 2) is None and dp.sessions() == 2
    assert dp.add_session(7, 7, 1, 4, "127.0.0.1", 1701, si, 0) == 1
    assert dp.session_stats(7, 7)["rx_packets"] == 0
    assert [dp.lookup(1, 1), dp.lookup(7, 7), dp.lookup(1, 3), dp.lookup(70000, 1)] == [0, 1, 2, None]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40), st.integers(1, 6)), max_size=300))
def test_session_table_agrees_with_a_dict(ops):
    # 64 sessions in a 128-entry table, few distinct keys: long probe runs, many backward shifts
    dp = _dp.DataPlane(max_sessions=64)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        si = dp.add_socket(s.fileno())
        model: dict[tuple[int, int], int] = {}
        for add, tid, sid in ops:
            if add and (tid, sid) not in model and len(model) < 64:
                model[(tid, sid)] = dp.add_session(tid, sid, 1, 1, "127.0.0.1", 1701, si, 0)
            elif not add and (tid, sid) in model:
                dp.remove_session(tid, sid)
                del model[(tid, sid)]
            assert dp.sessions() == len(model)
        for tid in range(1, 41):
            for sid in range(1, 7):
                assert dp.lookup(tid, sid) == model.get((tid, sid))
        assert len(set(model.values())) == len(model)


# --- property: random datagrams against the oracle ----------------------------------------------------

IP_FRAMES = st.sampled_from([icmp4(), udp4(), udp6(), b"\x45", b"", b"\x60" + bytes(3), b"\x12\x34"])


def frames():
    return st.one_of(
        st.builds(lambda proto, body, acfc, pfc: ppp_frame(proto, body, acfc=acfc, pfc=pfc and proto < 0x100),
                  st.sampled_from([0x21, 0x57, 0xC021, 0x8021, 0x00FD, 0x003D]), IP_FRAMES, st.booleans(),
                  st.booleans()),
        st.binary(max_size=12),
    )


def datagrams():
    return st.one_of(
        st.binary(max_size=48),
        st.builds(lambda sid, frame, length, ns, off: data_message(TID, sid, frame, length=length, ns=ns, offset=off),
                  st.sampled_from([SID, SID, SID + 1]), frames(), st.booleans(), st.none() | st.integers(0, 0xFFFF),
                  st.none() | st.integers(0, 4)),
        st.builds(lambda ns, body: l2tp.encode_header(l2tp.Header(True, TID, 0, ns, 0), len(body)) + body,
                  st.integers(0, 0xFFFF), st.binary(max_size=16)),
        # a valid header with its bits flipped
        st.builds(lambda ns, flip: bytes([(ns >> 8) ^ flip, 0x02]) + bytes(6) + bytes(4),
                  st.integers(0, 0xFFFF), st.integers(0, 255)),
    )


def expected_outcome(d: bytes):
    """What the data plane must do with datagram ``d`` from the session's peer, per the oracle. The order
    is the data plane's: L2TP header, control punt, session lookup, then the PPP header."""
    try:
        header, start, end = l2tp.decode_header(d)
    except DecodeError:
        return "drop", expected_reason(d).name.lower()
    if header.is_control:
        return "control", d
    if (header.tunnel_id, header.session_id) != (TID, SID):
        return "drop", "no_session"
    frame = d[start:end]
    try:
        decoded = ppp.decode_frame(frame)
    except DecodeError as e:
        return "drop", "ppp_bad_proto" if str(e).startswith("invalid protocol") else "ppp_short"
    if decoded.protocol in (0x21, 0x57):
        want = 4 if decoded.protocol == 0x21 else 6
        if not decoded.payload or decoded.payload[0] >> 4 != want:
            return "drop", "bad_ip"
        return "tun", decoded.payload
    return "ppp", frame


@pytest.fixture(scope="module")
def prop_harness():
    harness = Harness.make(batch=16, max_bursts=64)
    yield harness
    harness.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(datagrams(), min_size=1, max_size=40))
def test_random_datagrams_are_classified_like_the_oracle(prop_harness, batch):
    h = prop_harness
    before = h.dp.counters()
    assert h.to_dp(*batch) == len(batch)
    after = h.dp.counters()
    outcomes = [expected_outcome(d) for d in batch]
    assert drain(h.tun) == [x for kind, x in outcomes if kind == "tun"]
    assert h.dp.take_punted() == [
        ("control", x, ("127.0.0.1", h.peer.getsockname()[1]), h.si) if kind == "control" else ("ppp", TID, SID, x)
        for kind, x in outcomes if kind in ("control", "ppp")
    ]
    delta = {k: after[k] - before[k] for k in after}
    drops = [x for kind, x in outcomes if kind == "drop"]
    assert {k: v for k, v in delta.items() if v and k in {r.name.lower() for r in _dp.DropReason}} == {
        r: drops.count(r) for r in set(drops)
    }
    assert delta["rx_datagrams"] == len(batch)
    assert delta["rx_ip"] == sum(1 for kind, _ in outcomes if kind == "tun")
