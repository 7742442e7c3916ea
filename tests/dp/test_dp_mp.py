"""Multilink PPP (RFC 1990) in the data plane.

1. The C fragmenter and reassembler against the pure oracle ``fastl2tp.wire.mp`` (differential, hypothesis):
   the same fragment bytes, and for any sequence of fragments (in order, reordered, duplicated, lost, across
   links, around the wrap of either header format), link changes and timer runs the same packets, head,
   buffer, per-link state, timer and counters after every step.
2. Bundles in a DataPlane with real fds: two member sessions over loopback UDP (each on its own socket and
   peer) and a real TUN device in a fresh network namespace; what leaves is decoded with wire.l2tp/ppp/mp.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastl2tp import _dp
from fastl2tp.errors import LocalUsageError
from fastl2tp.wire import l2tp, mp, ppp

from . import netns
from .engine_util import data_message, drain, ppp_frame, syn4, udp4, udp6
from .test_dp_mss import mss_of

# --- 1. the C fragmenter and reassembler against wire.mp ---------------------------------------------------------


def test_counter_names_are_the_oracles():
    assert _dp.MP_COUNTER_NAMES == mp.COUNTER_NAMES
    assert set(_dp.MpReassembler(False, 4, 1.0).counters) == set(mp.COUNTER_NAMES)


@settings(max_examples=300, deadline=None)
@given(
    packet=st.binary(max_size=3000),
    short_seq=st.booleans(),
    data=st.data(),
    n_links=st.integers(1, 8),
)
def test_fragment_bytes_are_the_oracles(packet, short_seq, data, n_links):
    space = mp.seq_space(short_seq)
    hlen = mp.header_len(short_seq)
    next_seq = data.draw(st.one_of(st.integers(space - 20, space - 1), st.integers(0, space - 1)))
    mtu = data.draw(st.one_of(st.integers(hlen + 1, hlen + 40), st.integers(hlen + 1, 3100)))
    assert _dp.mp_fragment(packet, next_seq, mtu, n_links, short_seq) == mp.fragment(
        packet, next_seq, mtu, n_links, short_seq
    )


def test_fragment_arguments_are_checked_like_the_oracle():
    for args in [(b"x", 1 << 24, 100, 1, False), (b"x", 4096, 100, 1, True), (b"x", 0, 100, 0, False),
                 (b"x", 0, 4, 1, False), (b"x", 0, 2, 1, True)]:
        with pytest.raises(LocalUsageError):
            mp.fragment(*args)
        with pytest.raises(ValueError):
            _dp.mp_fragment(*args)


class Pair:
    """The C reassembler and the oracle, fed the same inputs; every step compares all observable state."""

    def __init__(self, short_seq: bool, max_buffered: int, timeout_s: float, first_seq: int = 0,
                 mrru: int | None = None) -> None:
        self.short_seq = short_seq
        self.c = _dp.MpReassembler(short_seq, max_buffered, timeout_s, first_seq=first_seq, mrru=mrru)
        self.o = mp.Reassembler(short_seq, max_buffered, timeout_s, first_seq=first_seq, mrru=mrru)
        self.out: list[bytes] = []

    def check(self, got: list[bytes], want: list[bytes]) -> list[bytes]:
        assert got == want
        assert self.c.counters == self.o.counters
        assert self.c.head == self.o.head
        assert self.c.buffered == sorted(self.o.frags)
        assert self.c.links == self.o.links
        assert self.c.get_timer() == self.o.get_timer()
        self.out += got
        return got

    def receive(self, link: int, info: bytes, now: float) -> list[bytes]:
        return self.check(self.c.receive(link, info, now),
                          self.o.receive(link, mp.decode_fragment(info, self.short_seq, protocol_field=False), now))

    def link_up(self, link: int) -> None:
        self.c.link_up(link)
        self.o.link_up(link)
        self.check([], [])

    def link_down(self, link: int, now: float) -> list[bytes]:
        return self.check(self.c.link_down(link, now), self.o.link_down(link, now))

    def timer(self, now: float) -> list[bytes]:
        return self.check(self.c.handle_timer(now), self.o.handle_timer(now))


def fragments(packets: list[bytes], first_seq: int, mtu: int, n_links: int, short_seq: bool) -> list[tuple[int, bytes]]:
    """The fragments of ``packets`` as (link, information field of the 0x003D frame), in sequence order."""
    out = []
    seq = first_seq
    for packet in packets:
        frags = mp.fragment(packet, seq, mtu, n_links, short_seq)
        out += [(link, frame[4:]) for link, frame in frags]
        seq = (seq + len(frags)) % mp.seq_space(short_seq)
    return out


def proto_packet(i: int, size: int) -> bytes:
    """A bundle packet (protocol field + information) that differs from its neighbours; size 0: null."""
    if size == 0:
        return b""
    return (b"\x00\x21" + i.to_bytes(2, "big") + bytes((i * 7 + k) & 0xFF for k in range(size)))[:size]


@st.composite
def scenarios(draw):
    short_seq = draw(st.booleans())
    space = mp.seq_space(short_seq)
    hlen = mp.header_len(short_seq)
    first_seq = draw(st.one_of(st.integers(space - 30, space - 1), st.just(0), st.integers(0, space - 1)))
    mtu = draw(st.integers(hlen + 1, hlen + 48))
    n_links = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.one_of(st.integers(1, 160), st.just(0)), min_size=1, max_size=24))
    frags = fragments([proto_packet(i, s) for i, s in enumerate(sizes)], first_seq, mtu, n_links, short_seq)
    events = []
    for link, info in frags:
        fate = draw(st.integers(0, 11))
        if fate == 0:
            continue                                     # lost
        if fate == 1:
            link = draw(st.integers(0, n_links))         # arrives on another (maybe a new) link
        events.append(("frag", link, info))
        if fate == 2:
            events.append(("frag", draw(st.integers(0, n_links - 1)), info))   # duplicated
        if fate == 3:
            events.append(("timer",))
        if fate == 4 and draw(st.integers(0, 3)) == 0:
            events.append((draw(st.sampled_from(["down", "up"])), draw(st.integers(0, n_links))))
    for _ in range(draw(st.integers(0, len(events)))):   # reorder: moves over short distances
        i = draw(st.integers(0, len(events) - 1))
        j = min(len(events) - 1, i + draw(st.integers(1, 8)))
        events[i], events[j] = events[j], events[i]
    events.append(("timer",))
    steps = [(e, draw(st.sampled_from([0.0, 0.0, 0.0, 0.25, 0.5, 1.0, 2.0]))) for e in events]
    return dict(
        short_seq=short_seq,
        first_seq=first_seq,
        max_buffered=draw(st.one_of(st.integers(1, 6), st.just(64))),
        timeout_s=draw(st.sampled_from([0.5, 1.0, 2.0])),
        mrru=draw(st.sampled_from([None, 40, 400])),
        n_links=n_links,
        links_up_first=draw(st.booleans()),
        steps=steps,
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_reassembly_is_the_oracles(sc):
    pair = Pair(sc["short_seq"], sc["max_buffered"], sc["timeout_s"], sc["first_seq"], sc["mrru"])
    if sc["links_up_first"]:
        for link in range(sc["n_links"]):
            pair.link_up(link)
    now = 0.0
    for event, dt in sc["steps"]:
        now += dt
        if event[0] == "frag":
            pair.receive(event[1], event[2], now)
        elif event[0] == "timer":
            pair.timer(now)
        elif event[0] == "down":
            pair.link_down(event[1], now)
        else:
            pair.link_up(event[1])


@pytest.mark.parametrize("short_seq", [False, True])
@pytest.mark.parametrize("n_links", [1, 2, 3])
def test_in_order_traffic_across_the_wrap_is_delivered_whole(short_seq, n_links):
    space = mp.seq_space(short_seq)
    packets = [proto_packet(i, 100 + i) for i in range(40)]
    pair = Pair(short_seq, 16, 1.0, first_seq=space - 25)
    for link, info in fragments(packets, space - 25, 60, n_links, short_seq):
        pair.receive(link, info, 0.0)
    assert pair.out == packets
    assert pair.c.head < 200 and pair.c.counters["delivered"] == 40 and pair.c.buffered == []


def test_reordered_across_links_duplicated_and_late():
    packets = [proto_packet(i, 150) for i in range(6)]
    frags = fragments(packets, 0, 54, 2, False)          # 3 fragments each, alternating links
    pair = Pair(False, 32, 1.0)
    pair.link_up(0)
    pair.link_up(1)
    for link, info in frags[1::2]:                       # link 1 first: nothing can complete
        assert pair.receive(link, info, 0.0) == []
    assert pair.c.counters["lost_fragments"] == 0
    for link, info in frags[0::2]:
        pair.receive(link, info, 0.0)
    assert pair.out == packets
    pair.receive(*frags[-1], 0.0)                        # late: behind head
    assert pair.c.counters["late"] == 1


def test_loss_is_found_when_m_passes_the_end():
    packets = [proto_packet(i, 150) for i in range(4)]
    frags = fragments(packets, 0, 54, 2, False)
    pair = Pair(False, 32, 1.0)
    for k, (link, info) in enumerate(frags):
        if k != 1:                                       # the middle of packet 0 is lost
            pair.receive(link, info, 0.0)
    assert pair.out == packets[1:]
    c = pair.c.counters
    assert (c["lost_fragments"], c["discarded_fragments"], c["dropped_incomplete"]) == (1, 2, 1)


def test_a_far_jump_gives_up_millions_of_sequence_numbers_at_once():
    """Rule 3 with the end of the packet at head millions of numbers away: the C port visits only the
    buffered fragments, the counters still match."""
    pair = Pair(False, 16, 1.0)
    far = (1 << 23) - 10
    pair.receive(0, mp.encode_fragment(0, True, False, b"\x00\x21a", False, protocol_field=False), 0.0)
    pair.receive(0, mp.encode_fragment(far, False, True, b"b", False, protocol_field=False), 0.0)
    pair.receive(0, mp.encode_fragment(far + 5, True, True, b"\x00\x21c", False, protocol_field=False), 0.0)
    assert pair.c.counters["lost_fragments"] > 8_000_000


def test_overflow_and_timeout_give_up_one_gap_each():
    frags = fragments([proto_packet(i, 30) for i in range(12)], 0, 100, 2, False)   # one fragment each
    pair = Pair(False, 4, 1.0)
    for link in range(3):
        pair.link_up(link)                               # link 2 stays silent: M stays undefined
    for link, info in frags[1:5]:                        # seq 0 lost
        pair.receive(link, info, 0.25)
    assert pair.out == [] and pair.c.get_timer() == 1.25
    assert pair.timer(1.0) == []                         # not yet
    assert pair.timer(1.25) == [proto_packet(i, 30) for i in range(1, 5)]
    assert pair.c.counters["timeouts"] == 1 and pair.c.counters["lost_fragments"] == 1
    for link, info in frags[6:11]:                       # seq 5 missing: the 5th buffered one overflows
        pair.receive(link, info, 2.0)
    assert pair.c.counters["overflow"] == 1
    assert pair.out[4:] == [proto_packet(i, 30) for i in range(6, 11)]


def test_too_long_and_null_packets_are_consumed_not_delivered():
    pair = Pair(True, 8, 1.0, mrru=40)
    frags = fragments([proto_packet(0, 43), b"", proto_packet(2, 42)], 0, 20, 1, True)
    for link, info in frags:
        pair.receive(link, info, 0.0)
    assert pair.out == [proto_packet(2, 42)]
    assert (pair.c.counters["too_long"], pair.c.counters["null_fragments"]) == (1, 1)


def test_reassembler_arguments():
    for kw in [dict(max_buffered=0), dict(timeout_s=0.0), dict(first_seq=4096, short_seq=True)]:
        args = dict(short_seq=False, max_buffered=4, timeout_s=1.0) | kw
        with pytest.raises(ValueError):
            _dp.MpReassembler(args.pop("short_seq"), args.pop("max_buffered"), args.pop("timeout_s"), **args)
    r = _dp.MpReassembler(False, 4, 1.0)
    with pytest.raises(ValueError, match="MP_SHORT"):
        r.receive(0, b"\x80\x00\x00", 0.0)
    with pytest.raises(ValueError, match="link"):
        r.receive(8, b"\xc0\x00\x00\x00", 0.0)


# --- 2. bundles in a DataPlane: loopback UDP, a real TUN ----------------------------------------------------------

_dev_names = count()
IDS = [(1, 2), (1, 3)]                 # our (tunnel id, session id) of link 0 and link 1
PEER_IDS = [(10, 20), (10, 30)]
PACKET = udp4(b"z" * 1372)             # 1400 octets of IPv4
assert len(PACKET) == 1400


def mp_ifname() -> str:
    return f"mpdp{os.getpid()}x{next(_dev_names)}"[:15]


@pytest.fixture(scope="module")
def ns():
    yield from netns.module_ns("mpdp")


@dataclass
class Env:
    """A DataPlane with two sessions (link 0 on socket 0, link 1 on socket 1, each with its own peer) and
    a TUN device for the bundle (``tap`` injects into it and captures from it)."""

    dp: _dp.DataPlane
    tun_fd: int
    dev: str
    tap: netns.Tap
    socks: list[socket.socket] = field(default_factory=list)
    peers: list[socket.socket] = field(default_factory=list)
    sis: list[int] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def bundle(self, links=(0, 1), mtu=600, **kw) -> int:
        kw = dict(mrru=1600, rx_short_seq=False, tx_short_seq=False) | kw
        bid = self.dp.add_bundle(self.tun_fd, **kw)
        for link in links:
            self.dp.bundle_add_link(bid, *IDS[link], mtu=mtu)
        return bid

    def inject(self, bid: int, *packets: bytes) -> int:
        """IP packets into the TUN, then one rx_bundle."""
        for p in packets:
            self.tap.inject(p)
        netns.wait_readable(self.tun_fd)
        return self.dp.rx_bundle(bid)

    def sent(self, link: int) -> list[bytes]:
        """The PPP frames link ``link``'s peer received (each datagram checked to carry the peer's ids)."""
        out = []
        for d in drain(self.peers[link]):
            header, start, end = l2tp.decode_header(d)
            assert (header.tunnel_id, header.session_id) == PEER_IDS[link] and not header.is_control
            out.append(d[start:end])
        return out

    def to_dp(self, link: int, frame: bytes, *, via: int | None = None) -> None:
        """One PPP frame from link ``link``'s peer to the data plane (on the socket of link ``via``)."""
        self.peers[link].sendto(data_message(*IDS[link], frame), self.socks[link if via is None else via].getsockname())
        self.dp.rx_udp(self.sis[link if via is None else via])

    def close(self) -> None:
        self.tap.close()
        for s in self.socks + self.peers:
            s.close()
        os.close(self.tun_fd)


@pytest.fixture
def env(ns):
    dev = mp_ifname()
    tun_fd = netns.open_tun(dev)
    e = None
    try:
        ns.ip("link", "set", "dev", dev, "up")
        e = Env(_dp.DataPlane(batch=16, max_sessions=16, max_bundles=8), tun_fd, dev, netns.Tap(dev))
        for link in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            e.socks.append(s)
            p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            e.peers.append(p)
            for x in (s, p):
                x.bind(("127.0.0.1", 0))
                x.setblocking(False)
            e.sis.append(e.dp.add_socket(s.fileno()))
            e.dp.add_session(*IDS[link], *PEER_IDS[link], "127.0.0.1", p.getsockname()[1], e.sis[link], -1,
                             tx_seq=link == 1)
        yield e
    finally:
        if e is not None:
            e.close()
        else:
            os.close(tun_fd)


def oracle(packets: list[bytes], mtu: int, n_links: int, short_seq: bool, first_seq: int = 0) -> list[tuple[int, bytes]]:
    out = []
    seq = first_seq
    for p in packets:
        frags = mp.fragment(p, seq, mtu, n_links, short_seq)
        out += frags
        seq = (seq + len(frags)) % mp.seq_space(short_seq)
    return out


def ppp_packet(ip: bytes) -> bytes:
    return (b"\x00\x57" if ip[0] >> 4 == 6 else b"\x00\x21") + ip


@pytest.mark.netns
@pytest.mark.parametrize("short_seq", [False, True])
def test_a_tun_packet_leaves_as_round_robin_fragments(env, short_seq):
    bid = env.bundle(tx_short_seq=short_seq)
    second = udp6(b"y" * 900)
    assert env.inject(bid, PACKET) == 1
    assert env.inject(bid, second) == 1
    want = oracle([ppp_packet(PACKET), ppp_packet(second)], 600, 2, short_seq)
    assert len(want) == 5                              # 1402 -> 3 fragments, 902 -> 2
    got0, got1 = env.sent(0), env.sent(1)
    assert got0 == [f for link, f in want if link == 0] and got1 == [f for link, f in want if link == 1]
    decoded = [mp.decode_fragment(f, short_seq) for _, f in want]
    assert [(f.seq, f.begin, f.end) for f in decoded] == [
        (0, True, False), (1, False, False), (2, False, True), (3, True, False), (4, False, True)]
    assert all(len(f) - 4 <= 600 for f in got0 + got1)    # MP header + data within the link's mtu
    s = env.dp.bundle_stats(bid)
    assert (s["tx_packets"], s["tx_bytes"], s["fragments_tx"], s["tx_seq"]) == (2, 1400 + len(second), 5, 5)
    assert s["links"] == IDS and s["mtus"] == [600, 600]
    assert env.dp.bundle_traffic(bid)[2:4] == (2, 1400 + len(second))
    assert env.dp.session_stats(*IDS[0])["tx_packets"] == 3 and env.dp.session_stats(*IDS[1])["tx_packets"] == 2
    assert env.dp.session_stats(*IDS[1])["tx_ns"] == 2        # link 1 sends Ns: one per fragment it carried
    c = env.dp.counters()
    assert (c["mp_fragments_tx"], c["tx_ip"], c["tun_reads"]) == (5, 2, 2)


@pytest.mark.netns
def test_links_on_the_same_socket_share_one_send_and_keep_their_peers(env):
    env.dp.update_session(*IDS[1], sock_index=env.sis[0])
    bid = env.bundle()
    assert env.inject(bid, PACKET, PACKET) == 2
    want = oracle([ppp_packet(PACKET)] * 2, 600, 2, False)
    assert env.sent(0) == [f for link, f in want if link == 0]
    assert env.sent(1) == [f for link, f in want if link == 1]


@pytest.mark.netns
@pytest.mark.parametrize("short_seq", [False, True])
def test_fragments_over_both_links_come_out_of_the_tun_reassembled(env, short_seq):
    bid = env.bundle(rx_short_seq=short_seq)
    packets = [PACKET, udp6(b"q" * 700), udp4(b"small")]
    frags = oracle([ppp_packet(p) for p in packets], 500, 2, short_seq)
    for link, frame in frags:
        env.to_dp(link, frame)
    assert [env.tap.next_in() for _ in packets] == packets
    s = env.dp.bundle_stats(bid)
    assert (s["rx_packets"], s["rx_bytes"], s["fragments_rx"]) == (3, sum(map(len, packets)), len(frags))
    assert s["reassembly"] == dict.fromkeys(mp.COUNTER_NAMES, 0) | {"received": len(frags), "delivered": 3}
    rx0 = env.dp.session_stats(*IDS[0])
    assert rx0["rx_packets"] == sum(1 for link, _ in frags if link == 0) and rx0["bundle"] == bid
    assert env.dp.counters()["mp_reassembled"] == 3 and env.dp.counters()["rx_ip"] == 3


@pytest.mark.netns
def test_reordered_across_links(env):
    bid = env.bundle()
    frags = oracle([ppp_packet(PACKET)], 500, 2, False)
    for link, frame in reversed(frags):                    # last fragment first, on its own link
        env.to_dp(link, frame)
    assert env.tap.next_in() == PACKET
    assert env.tap.pending_in() == []
    assert env.dp.bundle_stats(bid)["reassembly"]["delivered"] == 1


@pytest.mark.netns
def test_single_link_sends_plain_frames_when_the_packet_fits(env):
    bid = env.bundle(links=(0,), mtu=1500)
    assert env.inject(bid, PACKET) == 1
    assert env.sent(0) == [ppp_frame(0x21, PACKET)]
    s = env.dp.bundle_stats(bid)
    assert (s["plain_tx"], s["fragments_tx"], s["tx_seq"], s["tx_packets"]) == (1, 0, 0, 1)
    env.dp.bundle_remove_link(bid, *IDS[0])
    env.dp.bundle_add_link(bid, *IDS[0], mtu=700)          # too small now: fragments, all on the one link
    assert env.inject(bid, PACKET) == 1
    assert env.sent(0) == [f for _, f in oracle([ppp_packet(PACKET)], 700, 1, False)]


@pytest.mark.netns
def test_plain_ip_on_a_member_link_reaches_the_bundle(env):
    bid = env.bundle()
    env.to_dp(1, ppp_frame(0x57, udp6()))
    assert env.tap.next_in() == udp6()
    s = env.dp.bundle_stats(bid)
    assert (s["plain_rx"], s["rx_packets"]) == (1, 1)


@pytest.mark.netns
def test_packets_over_the_mrru_are_dropped(env):
    bid = env.bundle(mrru=1000)
    assert env.inject(bid, PACKET, udp4(b"x" * 900)) == 2
    assert len(env.sent(0) + env.sent(1)) == 2             # only the second, in two fragments
    s = env.dp.bundle_stats(bid)
    assert s["drops"]["too_big"] == 1 and s["tx_packets"] == 1
    # receive side: a reassembled packet longer than mrru + 2 is dropped as too_long
    for link, frame in oracle([ppp_packet(PACKET)], 500, 2, False, first_seq=0):
        env.to_dp(link, frame)
    assert env.dp.bundle_stats(bid)["reassembly"]["too_long"] == 1
    assert env.tap.pending_in() == []


@pytest.mark.netns
def test_the_peers_mrru_bounds_what_we_send(env):
    bid = env.bundle(mrru=1000, peer_mrru=1500)
    assert env.inject(bid, PACKET) == 1
    assert len(env.sent(0) + env.sent(1)) == 3
    s = env.dp.bundle_stats(bid)
    assert (s["mrru"], s["peer_mrru"], s["tx_packets"]) == (1000, 1500, 1)


@pytest.mark.netns
def test_reassembled_packets_may_be_larger_than_a_slot(env):
    bid = env.bundle(mrru=4000)
    big = udp4(b"B" * 3500)
    frags = oracle([ppp_packet(big)], 600, 2, False)
    assert len(frags) == 6 and env.dp.slot_size < len(big)
    for link, frame in frags:
        env.to_dp(link, frame)
    assert env.tap.next_in() == big
    assert env.dp.bundle_stats(bid)["rx_bytes"] == len(big)


@pytest.mark.netns
def test_non_ip_inside_mp_is_punted_with_the_completing_links_ids(env):
    env.bundle()
    ipcp = b"\x80\x21" + ppp.encode_cp(ppp.CpPacket(1, 7, bytes([3, 6, 10, 0, 0, 1])))
    frags = oracle([ipcp], 8, 2, False)
    assert len(frags) == 3
    for link, frame in frags:
        env.to_dp(link, frame)
    assert env.dp.take_punted() == [("ppp", *IDS[0], ipcp)]     # completed by fragment 2, on link 0
    pfc = b"\x21" + udp4()                                       # a PFC-compressed IP packet inside MP
    for link, frame in oracle([pfc], 600, 2, False, first_seq=3):
        env.to_dp(link, frame)
    assert env.tap.next_in() == udp4()
    lcp = ppp_frame(ppp.Protocol.LCP, bytes([9, 1, 0, 8, 0, 0, 0, 0]))
    env.to_dp(1, lcp)                                            # plain LCP on a member: punted as today
    assert env.dp.take_punted() == [("ppp", *IDS[1], lcp)]


@pytest.mark.netns
def test_short_mp_headers_are_dropped(env):
    bid = env.bundle(rx_short_seq=True)
    env.to_dp(0, b"\xff\x03\x00\x3d\x80")
    assert env.dp.session_stats(*IDS[0])["drops"]["mp_short"] == 1
    assert env.dp.bundle_stats(bid)["reassembly"]["received"] == 0


@pytest.mark.netns
def test_mss_clamped_both_ways_on_a_bundle(env):
    bid = env.bundle(links=(0,), mtu=1500, mss=1360)
    assert env.inject(bid, syn4(1460)) == 1
    frame = env.sent(0)[0]
    assert mss_of(frame[4:]) == 1360
    env.to_dp(0, ppp_frame(0x21, syn4(1460)))
    assert mss_of(env.tap.next_in()) == 1360
    assert env.dp.bundle_stats(bid)["mss_clamped"] == 2


@pytest.mark.netns
def test_link_down_lets_the_remaining_link_complete(env):
    bid = env.bundle()
    frags = oracle([ppp_packet(PACKET), ppp_packet(udp4())], 500, 2, False)   # seq 0,1,2 | 3
    env.to_dp(0, frags[0][1])
    env.to_dp(0, frags[2][1])
    assert frags[3][0] == 1
    env.to_dp(1, frags[3][1])
    # seq 1 (on link 1) is lost; link 1 has received seq 3, link 0 seq 2: M = 2 is not past packet 0's end
    assert env.tap.pending_in() == []
    env.dp.remove_session(*IDS[0])                                 # M = 3 now: packet 0 lost, packet 1 out
    assert env.tap.next_in() == udp4()
    s = env.dp.bundle_stats(bid)
    assert s["links"] == [IDS[1]]
    r = s["reassembly"]
    assert (r["lost_fragments"], r["dropped_incomplete"], r["delivered"]) == (1, 1, 1)
    with pytest.raises(KeyError):
        env.dp.session_stats(*IDS[0])
    assert env.inject(bid, udp4(b"a" * 100)) == 1                  # one link left, the packet fits: plain
    assert env.sent(1) == [ppp_frame(0x21, udp4(b"a" * 100))]


@pytest.mark.netns
def test_stall_timeout_gives_up_the_gap(env):
    bid = env.bundle(timeout=1e-6)
    frags = oracle([ppp_packet(PACKET), ppp_packet(udp4())], 500, 2, False)
    env.to_dp(0, frags[0][1])                                      # seq 0; seq 1 and 2 lost
    env.to_dp(frags[3][0], frags[3][1])                            # seq 3 on link 1
    env.to_dp(0, frags[0][1])                                      # duplicate: link 0 stays behind
    assert env.tap.pending_in() == []
    assert env.dp.expire_bundles() == 1
    assert env.tap.next_in() == udp4()
    r = env.dp.bundle_stats(bid)["reassembly"]
    assert (r["timeouts"], r["lost_fragments"], r["dropped_incomplete"], r["delivered"]) == (1, 2, 1, 1)
    assert env.dp.expire_bundles() == 0                            # nothing buffered


@pytest.mark.netns
def test_remove_bundle_makes_the_members_plain_sessions(env):
    bid = env.bundle()
    env.dp.update_session(*IDS[0], tun_fd=env.tun_fd)              # not used while a member
    env.dp.remove_bundle(bid)
    for ids in IDS:
        st_ = env.dp.session_stats(*ids)
        assert st_["bundle"] is None and st_["tun_fd"] == -1
    with pytest.raises(KeyError):
        env.dp.bundle_stats(bid)
    frag = oracle([ppp_packet(udp4())], 600, 2, False)[0][1]
    env.to_dp(0, frag)
    assert env.dp.take_punted() == [("ppp", *IDS[0], frag)]        # 0x003D on a plain session: punted
    assert env.dp.bundle_ids() == []
    assert env.bundle() == bid                                      # the id is free again


@pytest.mark.netns
def test_bundle_argument_checks(env):
    bid = env.bundle()
    with pytest.raises(ValueError, match="already a link"):
        env.dp.bundle_add_link(bid, *IDS[0], mtu=600)
    other = env.dp.add_bundle(-1, mrru=1500, rx_short_seq=False, tx_short_seq=False)
    with pytest.raises(ValueError, match="already a link"):
        env.dp.bundle_add_link(other, *IDS[1], mtu=600)
    with pytest.raises(ValueError, match="MPPE over a multilink bundle is not supported"):
        env.dp.set_mppe(*IDS[0], send_key=bytes(16), recv_key=bytes(16), bits=128, stateless=True)
    env.dp.add_session(2, 1, 20, 1, "127.0.0.1", 9, env.sis[0], -1)
    env.dp.set_mppe(2, 1, send_key=bytes(16), recv_key=bytes(16), bits=128, stateless=True)
    with pytest.raises(ValueError, match="MPPE over a multilink bundle is not supported"):
        env.dp.bundle_add_link(other, 2, 1, mtu=600)
    env.dp.clear_mppe(2, 1)
    with pytest.raises(ValueError, match="mtu"):
        env.dp.bundle_add_link(other, 2, 1, mtu=4)
    with pytest.raises(ValueError, match="mtu"):
        env.dp.bundle_add_link(other, 2, 1, mtu=8)           # 1988 octets would need too many fragments
    for sid in range(2, 10):
        env.dp.add_session(2, sid, 20, sid, "127.0.0.1", 9, env.sis[0], -1)
    env.dp.bundle_add_link(other, 2, 1, mtu=600)
    for sid in range(2, 9):
        env.dp.bundle_add_link(other, 2, sid, mtu=600)
    with pytest.raises(ValueError, match="8 links"):
        env.dp.bundle_add_link(other, 2, 9, mtu=600)
    with pytest.raises(KeyError):
        env.dp.bundle_remove_link(bid, 2, 9)
    with pytest.raises(KeyError):
        env.dp.bundle_stats(99)
    with pytest.raises(KeyError):
        env.dp.rx_bundle(99)
    with pytest.raises(ValueError, match="no fd"):
        env.dp.rx_bundle(other)
    for kw in [dict(mrru=10), dict(mrru=70000), dict(peer_mrru=10), dict(max_fragments=0), dict(timeout=0.0), dict(mss=5)]:
        with pytest.raises(ValueError):
            env.dp.add_bundle(-1, **(dict(mrru=1500, rx_short_seq=False, tx_short_seq=False) | kw))
    with pytest.raises(ValueError, match="headroom"):
        _dp.DataPlane(headroom=16, max_sessions=2).add_bundle(-1, mrru=1500, rx_short_seq=False, tx_short_seq=False)
    small = _dp.DataPlane(max_sessions=2, max_bundles=1)
    small.add_bundle(-1, mrru=1500, rx_short_seq=False, tx_short_seq=False)
    with pytest.raises(ValueError, match="full"):
        small.add_bundle(-1, mrru=1500, rx_short_seq=False, tx_short_seq=False)
    env.dp.update_bundle(bid, fd=-1, mss=1300)
    assert env.dp.bundle_stats(bid)["mss"] == 1300 and env.dp.bundle_stats(bid)["fd"] == -1


@pytest.mark.netns
def test_a_bundle_without_links_or_fd_drops_and_counts(env):
    bid = env.bundle(links=())
    assert env.inject(bid, PACKET) == 1
    assert env.dp.bundle_stats(bid)["drops"]["mp_no_link"] == 1
    env.dp.bundle_add_link(bid, *IDS[0], mtu=1500)
    env.dp.update_bundle(bid, fd=-1)
    env.to_dp(0, ppp_frame(0x21, udp4()))
    assert env.dp.bundle_stats(bid)["drops"]["no_tun"] == 1


def _random_frames():
    frame = st.one_of(
        st.binary(max_size=80).map(lambda b: b"\xff\x03\x00\x3d" + b),
        st.binary(max_size=80).map(lambda b: b"\x3d" + b),
        st.tuples(st.booleans(), st.booleans(), st.integers(0, 40), st.binary(max_size=70)).map(
            lambda t: b"\x3d" + mp.encode_fragment(t[2], t[0], t[1], t[3], False, protocol_field=False)),
        st.binary(max_size=40).map(lambda b: b"\x00\x21" + b),
        st.binary(max_size=40).map(lambda b: b"\x00\x31" + b),
    )
    return st.lists(st.tuples(st.integers(0, 1), frame), max_size=40)


def expected_delivery(packet: bytes, ids: tuple[int, int], punts: list, ips: list) -> None:
    """What bundle_deliver does with ``packet`` (protocol field + information) on a bundle that is not
    bridged: IPv4/IPv6 with a matching version nibble to the TUN, bad IP dropped, the rest punted."""
    if packet[0] & 1:
        proto, info = packet[0], packet[1:]
    elif len(packet) < 2 or not packet[1] & 1:
        return
    else:
        proto, info = int.from_bytes(packet[:2], "big"), packet[2:]
    if proto in (0x21, 0x57):
        if info and info[0] >> 4 == (4 if proto == 0x21 else 6):
            ips.append(info)
        return
    punts.append(("ppp", *ids, packet))


@pytest.mark.netns
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=_random_frames())
def test_random_mp_frames_never_crash_and_match_the_oracle(env, frames):
    """Random frames on two member links (MP fragments, garbage, plain IP and bridged frames): the bundle's
    reassembly counters stay equal to the oracle's fed the same fragments, and what the oracle completes is
    delivered (IP to the TUN) or punted (with the ids of the link it completed on) exactly so."""
    if not env.dp.bundle_ids():
        env.bundle(max_fragments=8, mrru=64)
        env.extra["oracle"] = mp.Reassembler(False, 8, 1.0, mrru=64)
        env.extra["oracle"].link_up(0)
        env.extra["oracle"].link_up(1)
    bid = env.dp.bundle_ids()[0]
    o = env.extra["oracle"]
    before = env.dp.bundle_stats(bid)
    punts, ips = [], []
    for link, frame in frames:
        env.to_dp(link, frame)
        info = frame[4:] if frame[:1] == b"\xff" else frame[1:] if frame[:1] == b"\x3d" else None
        if info is None:                                      # plain 0x0021 / 0x0031 on a member link
            expected_delivery(frame, IDS[link], punts, ips)
            continue
        if len(info) < 4:
            continue                                          # MP_SHORT
        for packet in o.receive(link, mp.decode_fragment(info, False, protocol_field=False), 0.0):
            expected_delivery(packet, IDS[link], punts, ips)
    after = env.dp.bundle_stats(bid)
    assert after["reassembly"] == o.counters
    assert env.dp.take_punted() == punts
    written = after["rx_packets"] - before["rx_packets"] + after["drops"]["tun_write"] - before["drops"]["tun_write"]
    assert written == len(ips)
    assert env.dp.counters()["punt_full"] == 0
    env.tap.pending_in()
