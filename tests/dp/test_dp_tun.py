"""Two DataPlanes (an LNS side A and a LAC side B) joined over loopback UDP in a fresh network namespace,
each with a real TUN device: what the kernel sends into TUN A comes out of TUN B byte for byte, and back.

Packets enter a TUN device through an AF_PACKET socket (transmitted out of the device, so the data plane
reads them from its fd) and are captured on the other device the same way (received by it, that is
written to its fd by the data plane)."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import pytest

from fastl2tp import _dp
from fastl2tp.wire import ppp

from . import netns
from .engine_util import (
    control_message,
    data_message,
    icmp4,
    ppp_frame,
    syn4,
    syn6,
    udp4,
    udp6,
)
from .test_dp_mss import (
    ACK,
    SYN,
    assert_checksum_ok,
    ipv4,
    mss_of,
    mss_option,
    tcp_segment,
)

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(netns.can_run() is not None, reason=str(netns.can_run())),
]

A_IDS, B_IDS = (1, 2), (10, 20)      # (tunnel id, session id) on each side


@pytest.fixture(scope="module")
def ns():
    with netns.NetNS() as n:
        yield n


@dataclass
class Side:
    dp: _dp.DataPlane
    sock: socket.socket
    tun_fd: int
    dev: str
    tap: netns.Tap
    si: int = -1
    slot: int = -1
    ids: tuple[int, int] = (0, 0)


@pytest.fixture(params=["127.0.0.1", "::1"])
def link(ns, request):
    """Sides A and B with one session each way; ``link.mss`` sets each side's clamp."""
    host = request.param
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sides: list[Side] = []
    try:
        for ids in (A_IDS, B_IDS):
            dev = netns.ifname()
            tun_fd = netns.open_tun(dev)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            side = Side(_dp.DataPlane(batch=16, max_sessions=16), sock, tun_fd, dev, None, ids=ids)
            sides.append(side)
            sock.bind((host, 0))
            sock.setblocking(False)
            ns.ip("link", "set", "dev", dev, "up")
            side.tap = netns.Tap(dev)
            side.si = side.dp.add_socket(sock.fileno())
        a, b = sides
        for me, other in ((a, b), (b, a)):
            me.slot = me.dp.add_session(*me.ids, *other.ids, host, other.sock.getsockname()[1], me.si, me.tun_fd)
        yield a, b
    finally:
        for side in sides:
            if side.tap is not None:
                side.tap.close()
            side.sock.close()
            os.close(side.tun_fd)            # the device goes with its fd


def carry(src: Side, dst: Side, packet: bytes) -> bytes:
    """``packet`` into src's TUN, through both data planes, out of dst's TUN."""
    src.tap.inject(packet)
    netns.wait_readable(src.tun_fd)
    assert src.dp.rx_tun(src.slot) == 1
    netns.wait_readable(dst.sock.fileno())
    assert dst.dp.rx_udp(dst.si) == 1
    return dst.tap.next_in()


def test_packets_cross_both_ways_byte_identical(link):
    a, b = link
    t0 = time.monotonic_ns()
    for packet in (icmp4(), udp4(b"z" * 1200), udp6()):
        assert carry(a, b, packet) == packet
        assert carry(b, a, packet) == packet
    t1 = time.monotonic_ns()
    for side in (a, b):
        stats = side.dp.session_stats(*side.ids)
        size = len(icmp4()) + len(udp4(b"z" * 1200)) + len(udp6())
        assert (stats["rx_packets"], stats["rx_bytes"], stats["tx_packets"], stats["tx_bytes"]) == (3, size, 3, size)
        assert t0 <= stats["last_rx_ns"] <= t1 and t0 <= stats["last_tx_ns"] <= t1
        assert all(v == 0 for v in stats["drops"].values())
        c = side.dp.counters()
        assert (c["rx_ip"], c["tx_ip"], c["tun_reads"], c["rx_datagrams"]) == (3, 3, 3, 3)
    assert a.tap.pending_in() == [] and b.tap.pending_in() == []


def test_a_burst_crosses_in_order(link):
    a, b = link
    packets = [udp4(i.to_bytes(2, "big") * 100) for i in range(40)]
    for p in packets:
        a.tap.inject(p)
    netns.wait_readable(a.tun_fd)
    assert a.dp.rx_tun(a.slot) == 40          # 3 batches of 16 within max_bursts
    assert b.dp.rx_udp(b.si) == 40
    assert [b.tap.next_in() for _ in packets] == packets


@pytest.mark.parametrize("clamping_side", ["a", "b"])
@pytest.mark.parametrize("syn,clamped", [(syn4, 1360), (syn6, 1340)])
def test_mss_clamped_on_syn_in_both_directions(link, clamping_side, syn, clamped):
    a, b = link
    clamper = a if clamping_side == "a" else b
    clamper.dp.update_session(*clamper.ids, mss=1360)
    # through the clamping side's rx_tun (outbound) ...
    out = carry(a, b, syn()) if clamper is a else carry(b, a, syn())
    # ... and through its rx_udp (inbound)
    back = carry(b, a, syn()) if clamper is a else carry(a, b, syn())
    for packet in (out, back):
        assert mss_of(packet) == clamped
        assert_checksum_ok(packet)
    assert clamper.dp.session_stats(*clamper.ids)["mss_clamped"] == 2
    synack = bytes(ipv4(tcp_segment(mss_option(1400), SYN | ACK)))
    assert mss_of(carry(a, b, synack)) == 1360
    small = syn(1200)
    assert carry(a, b, small) == small


def test_control_and_lcp_are_punted_and_bad_senders_dropped(ns, link):
    a, b = link
    lcp = ppp_frame(ppp.Protocol.LCP, bytes([1, 1, 0, 4]))
    assert a.dp.send_ppp(*a.ids, lcp)
    netns.wait_readable(b.sock.fileno())
    assert b.dp.rx_udp(b.si) == 1
    assert b.dp.take_punted() == [("ppp", *b.ids, lcp)]
    host = a.sock.getsockname()[0]
    with socket.socket(a.sock.family, socket.SOCK_DGRAM) as stranger:
        stranger.bind((host, 0))
        ctrl = control_message(tid=b.ids[0])
        ip = data_message(*b.ids, ppp_frame(0x21, udp4()))
        for d in (ctrl, ip, data_message(b.ids[0], 99, ppp_frame(0x21, udp4()))):
            stranger.sendto(d, b.sock.getsockname()[:2])
        netns.wait_readable(b.sock.fileno())
        assert b.dp.rx_udp(b.si) == 3
        assert b.dp.take_punted() == [("control", ctrl, stranger.getsockname()[:2], b.si)]
    c = b.dp.counters()
    assert (c["peer_mismatch"], c["no_session"], c["rx_ip"]) == (1, 1, 0)
    assert b.dp.session_stats(*b.ids)["drops"]["peer_mismatch"] == 1
    assert b.tap.pending_in() == []
