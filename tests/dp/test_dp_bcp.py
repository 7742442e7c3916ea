"""BCP bridged frames (RFC 3518 §4, protocol 0x0031) in the data plane.

The C decoder against the pure oracle ``fastl2tp.wire.bcp``; a bridged session on a real TAP device in a
fresh network namespace (frames enter the TAP through an AF_PACKET socket and are captured there); MPPE
over a bridged session between two DataPlanes (datagram socketpairs standing in for the TAP devices),
checked against the pure MPPE oracle; and a bridged MP bundle.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp import _dp
from fastl2tp.errors import DecodeError
from fastl2tp.runtime.tun import open_tun
from fastl2tp.wire import bcp, l2tp, mp

from . import mppe_ref, netns
from .engine_util import Side, data_message, drain, mppe_payload, ppp_frame, udp4

BRIDGED = 0x0031


def eth(payload: bytes = b"hello", *, dst: bytes = b"\x02\0\0\0\0\x02", src: bytes = b"\x02\0\0\0\0\x01",
        ethertype: int = 0x88B5) -> bytes:
    """An Ethernet frame nobody in the namespace answers (local experimental ethertype, foreign MAC)."""
    return dst + src + ethertype.to_bytes(2, "big") + payload


# --- the decoder against wire.bcp --------------------------------------------------------------------------------


def expected(info: bytes) -> bytes | str:
    """What the data plane does with the information field ``info``: the frame, or the drop reason."""
    if len(info) >= 2 and (info[0] & bcp.BcpFlag.I or info[1] != bcp.MacType.IEEE_802_3):
        return "BCP_UNSUPPORTED"                      # only Ethernet goes to a TAP device
    try:
        return bcp.decode_bridged_frame(info).frame
    except DecodeError:
        return "BCP_BAD"


def decoded(info: bytes) -> bytes | str:
    try:
        return _dp.decode_bridged(info)
    except ValueError as e:
        return str(e)


encoded_frames = st.builds(
    lambda frame, mac, fcs, tiny, bc, pads: bcp.encode_bridged_frame(
        frame, mac, fcs, tinygram=tiny and mac == 1, bridge_control=bc, pads=pads),
    st.binary(min_size=14, max_size=120),
    st.sampled_from([1, 1, 1, 2, 3, 11]),
    st.booleans(), st.booleans(), st.booleans(), st.integers(0, 15),
)


@settings(max_examples=500, deadline=None)
@given(info=st.one_of(encoded_frames, st.binary(max_size=80),
                      st.binary(max_size=80).map(lambda b: bytes([b[0] & 0xBF, 1]) + b[2:] if len(b) > 2 else b)))
def test_decoder_is_the_oracles(info):
    assert decoded(info) == expected(info)


def test_decoder_cases():
    frame = eth(b"x" * 50)
    assert _dp.decode_bridged(bcp.BRIDGED_ETHERNET_HEADER + frame) == frame
    assert _dp.decode_bridged(bcp.encode_bridged_frame(frame, fcs=True, pads=7)) == frame
    tiny = eth(b"ab")
    assert _dp.decode_bridged(bcp.encode_bridged_frame(tiny, tinygram=True)) == tiny.ljust(60, b"\0")
    for info, reason in [(b"\x00", "BCP_BAD"), (b"\x00\x01" + bytes(13), "BCP_BAD"), (b"\x40\x01" + frame, "BCP_UNSUPPORTED"),
                         (b"\x00\x02\x00" + frame, "BCP_UNSUPPORTED"), (b"\x0f\x01" + bytes(5), "BCP_BAD"),
                         (b"\x80\x01" + bytes(3), "BCP_BAD")]:
        with pytest.raises(ValueError, match=reason):
            _dp.decode_bridged(info)


# --- a bridged session on a real TAP -----------------------------------------------------------------------------

_dev_names = count()


@pytest.fixture(scope="module")
def ns():
    yield from netns.module_ns("mpdpb")


IDS, PEER_IDS = (1, 2), (10, 20)


@dataclass
class TapEnv:
    dp: _dp.DataPlane
    tap_fd: int
    tap: netns.Tap
    sock: socket.socket
    peer: socket.socket
    si: int = -1
    slot: int = -1
    more: list = field(default_factory=list)

    def from_tap(self, *frames: bytes) -> int:
        for f in frames:
            self.tap.inject(f)
        netns.wait_readable(self.tap_fd)
        return self.dp.rx_tun(self.slot)

    def sent(self) -> list[bytes]:
        out = []
        for d in drain(self.peer):
            header, start, end = l2tp.decode_header(d)
            assert (header.tunnel_id, header.session_id) == PEER_IDS
            out.append(d[start:end])
        return out

    def to_dp(self, *frames: bytes, ids=IDS) -> None:
        for f in frames:
            self.peer.sendto(data_message(*ids, f), self.sock.getsockname())
        self.dp.rx_udp(self.si)

    def drops(self, ids=IDS) -> dict:
        return {k: v for k, v in self.dp.session_stats(*ids)["drops"].items() if v}


@pytest.fixture
def tapenv(ns):
    dev = f"mpdpb{os.getpid()}x{next(_dev_names)}"[:15]
    tap_dev = open_tun(dev, tap=True)
    env = None
    try:
        ns.ip("link", "set", "dev", dev, "up")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dp = _dp.DataPlane(batch=16, max_sessions=8, max_bundles=2)
        env = TapEnv(dp, tap_dev.fd, netns.Tap(dev, raw=True), sock, peer)
        for s in (sock, peer):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        env.si = env.dp.add_socket(sock.fileno())
        env.slot = env.dp.add_session(*IDS, *PEER_IDS, "127.0.0.1", peer.getsockname()[1], env.si, tap_dev.fd,
                                      bridged=True)
        yield env
    finally:
        if env is not None:
            env.tap.close()
            env.sock.close()
            env.peer.close()
            for s in env.more:
                s.close()
        os.close(tap_dev.fd)


@pytest.mark.netns
def test_tap_frames_leave_as_bridged_frames(tapenv):
    frames = [eth(b"a" * 46), eth(b"b" * 1000), eth(b"")]
    assert tapenv.from_tap(*frames) == 3
    assert tapenv.sent() == [ppp_frame(BRIDGED, bcp.BRIDGED_ETHERNET_HEADER + f) for f in frames]
    st_ = tapenv.dp.session_stats(*IDS)
    assert st_["bridged"] and (st_["tx_packets"], st_["tx_bytes"]) == (3, sum(map(len, frames)))
    c = tapenv.dp.counters()
    assert (c["bcp_tx"], c["tx_ip"], c["tun_reads"]) == (3, 3, 3)


@pytest.mark.netns
@pytest.mark.parametrize("kw", [
    {}, {"fcs": True}, {"pads": 3}, {"fcs": True, "pads": 15}, {"bridge_control": True},
], ids=["plain", "fcs", "pads", "fcs+pads", "bridge-control"])
def test_bridged_frames_come_out_of_the_tap(tapenv, kw):
    frame = eth(b"p" * 200)
    info = bcp.encode_bridged_frame(frame, **kw)
    tapenv.to_dp(ppp_frame(BRIDGED, info))
    assert tapenv.tap.next_in() == bcp.decode_bridged_frame(info).frame == frame
    st_ = tapenv.dp.session_stats(*IDS)
    assert (st_["rx_packets"], st_["rx_bytes"]) == (1, len(frame))
    assert tapenv.drops() == {} and tapenv.dp.counters()["bcp_rx"] == 1


@pytest.mark.netns
def test_tinygram_is_zero_padded_to_60_octets(tapenv):
    tiny = eth(b"tiny")
    for kw in ({}, {"fcs": True, "pads": 2}):
        info = bcp.encode_bridged_frame(tiny, tinygram=True, **kw)
        assert info[0] & bcp.BcpFlag.Z and len(info) < 60
        tapenv.to_dp(ppp_frame(BRIDGED, info, pfc=True, acfc=True))
        assert tapenv.tap.next_in() == tiny.ljust(60, b"\0") == bcp.decode_bridged_frame(info).frame
    assert tapenv.dp.session_stats(*IDS)["rx_bytes"] == 120


@pytest.mark.netns
def test_unsupported_and_malformed_frames_are_dropped_and_counted(tapenv):
    frame = eth(b"d" * 40)
    tapenv.to_dp(
        ppp_frame(BRIDGED, bcp.encode_bridged_frame(frame, bcp.MacType.IEEE_802_5)),   # token ring
        ppp_frame(BRIDGED, b"\x40\x01" + frame),                                          # LAN-ID (I flag)
        ppp_frame(BRIDGED, b"\x00\x01" + frame[:13]),                                     # under 14 octets
        ppp_frame(BRIDGED, b"\x8f\x01" + frame[:5]),                                      # pads past the end
        ppp_frame(BRIDGED, b"\x80\x01" + b"\0\0"),                                        # no room for the FCS
        ppp_frame(BRIDGED, b"\x00"),                                                      # no MAC type
        ppp_frame(0x21, udp4()),                                                          # IP on a bridged session
    )
    assert tapenv.drops() == {"bcp_unsupported": 2, "bcp_bad": 4, "bridged_ip": 1}
    assert tapenv.tap.pending_in() == [] and tapenv.dp.take_punted() == []
    c = tapenv.dp.counters()
    assert (c["bcp_unsupported"], c["bcp_bad"], c["bridged_ip"], c["rx_ip"]) == (2, 4, 1, 0)


@pytest.mark.netns
def test_bridged_frames_on_a_session_that_is_not_bridged_are_punted(tapenv):
    tapenv.dp.update_session(*IDS, bridged=False)
    frame = ppp_frame(BRIDGED, bcp.BRIDGED_ETHERNET_HEADER + eth())
    tapenv.to_dp(frame)
    assert tapenv.dp.take_punted() == [("ppp", *IDS, frame)]
    assert not tapenv.dp.session_stats(*IDS)["bridged"]
    tapenv.dp.update_session(*IDS, bridged=True)
    tapenv.to_dp(frame)
    assert tapenv.tap.next_in() == eth()


def test_short_frames_from_the_tap_are_dropped_and_bridged_needs_headroom():
    dp = _dp.DataPlane(max_sessions=2)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tap, tap_dp = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        tap_dp.setblocking(False)
        si = dp.add_socket(sock.fileno())
        slot = dp.add_session(*IDS, *PEER_IDS, "127.0.0.1", 9, si, tap_dp.fileno(), bridged=True)
        tap.send(bytes(13))
        assert dp.rx_tun(slot) == 1
        assert dp.session_stats(*IDS)["drops"]["eth_short"] == 1 and dp.counters()["eth_short"] == 1
        small = _dp.DataPlane(headroom=16, max_sessions=2)
        si2 = small.add_socket(sock.fileno())
        with pytest.raises(ValueError, match="headroom"):
            small.add_session(*IDS, *PEER_IDS, "127.0.0.1", 9, si2, -1, bridged=True)
        small.add_session(*IDS, *PEER_IDS, "127.0.0.1", 9, si2, -1)
        with pytest.raises(ValueError, match="headroom"):
            small.update_session(*IDS, bridged=True)
        mid = _dp.DataPlane(headroom=20, max_sessions=2)
        mid.add_session(*IDS, *PEER_IDS, "127.0.0.1", 9, mid.add_socket(sock.fileno()), -1, bridged=True)
        with pytest.raises(ValueError, match="headroom"):
            mid.set_mppe(*IDS, send_key=bytes(16), recv_key=bytes(16), bits=128, stateless=True)
    finally:
        for s in (sock, tap, tap_dp):
            s.close()


# --- MPPE over a bridged session: two DataPlanes, the test in the middle ---------------------------------------------

KEY_AB = hashlib.sha1(b"bcp start key A->B").digest()[:16]
KEY_BA = hashlib.sha1(b"bcp start key B->A").digest()[:16]


@pytest.fixture
def mppe_pair():
    made = []

    def make(bits: int, stateless: bool) -> tuple[Side, Side]:
        a = Side.make(1, 2, 3, 4, bridged=True)
        made.append(a)
        b = Side.make(3, 4, 1, 2, bridged=True)
        made.append(b)
        a.dp.set_mppe(1, 2, send_key=KEY_AB, recv_key=KEY_BA, bits=bits, stateless=stateless)
        b.dp.set_mppe(3, 4, send_key=KEY_BA, recv_key=KEY_AB, bits=bits, stateless=stateless)
        return a, b

    yield make
    for side in made:
        side.close()


@pytest.mark.parametrize("bits,stateless", [(128, True), (40, True), (128, False), (56, False)])
def test_mppe_bridged_round_trip_against_the_oracle(mppe_pair, bits, stateless):
    """300 frames (past the stateful key change at count 0xFF): the inner frame is 0x0031 + 00 01 + the
    Ethernet frame, encrypted as the oracle does; the other side decrypts them back onto its TAP."""
    a, b = mppe_pair(bits, stateless)
    frames = [eth(i.to_bytes(2, "big") * (10 + i % 300)) for i in range(300)]
    wire = a.transmit(frames)
    receiver = mppe_ref.MppeReceiver(KEY_AB, bits, stateless)
    for i, (f, d) in enumerate(zip(frames, wire, strict=True)):
        _flags, ccount, plain = receiver.decrypt(mppe_payload(d))
        assert ccount == i and plain == b"\x00\x31\x00\x01" + f
    assert b.receive(wire) == frames
    sb = b.dp.session_stats(3, 4)
    assert sb["mppe"]["rx_packets"] == 300 and sb["rx_packets"] == 300
    assert {k: v for k, v in sb["drops"].items() if v} == {}
    back = b.transmit(frames[:5])
    assert a.receive(back) == frames[:5]


def test_mppe_bridged_stateless_follows_losses(mppe_pair):
    """Stateless: a bridged frame after lost ones commits the key state as an IP packet does."""
    a, b = mppe_pair(128, True)
    frames = [eth(bytes([i]) * 30) for i in range(60)]
    wire = a.transmit(frames)
    lost = {3, 4, 10, *range(20, 40)}
    assert b.receive([d for i, d in enumerate(wire) if i not in lost]) == [f for i, f in enumerate(frames) if i not in lost]
    m = b.dp.session_stats(3, 4)["mppe"]
    assert m["rx_lost"] == len(lost) and m["rx_ccount"] == 59


def test_mppe_required_drops_plain_bridged_frames(mppe_pair):
    a, b = mppe_pair(128, True)
    plain = data_message(3, 4, ppp_frame(BRIDGED, bcp.BRIDGED_ETHERNET_HEADER + eth()))
    assert b.receive([plain]) == []
    assert b.dp.session_stats(3, 4)["drops"]["mppe_unencrypted"] == 1


# --- a bridged MP bundle on a TAP ------------------------------------------------------------------------------------


@pytest.mark.netns
def test_bridged_bundle_fragments_and_reassembles_frames(tapenv):
    env = tapenv
    env.dp.update_session(*IDS, bridged=False, tun_fd=-1)
    second = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    env.more.append(second)
    second.bind(("127.0.0.1", 0))
    second.setblocking(False)
    env.dp.add_session(1, 3, 10, 30, "127.0.0.1", second.getsockname()[1], env.si, -1)
    bid = env.dp.add_bundle(env.tap_fd, mrru=1600, rx_short_seq=True, tx_short_seq=False, bridged=True)
    env.dp.bundle_add_link(bid, *IDS, mtu=500)
    env.dp.bundle_add_link(bid, 1, 3, mtu=500)
    frame = eth(b"m" * 1000)
    env.tap.inject(frame)
    netns.wait_readable(env.tap_fd)
    assert env.dp.rx_bundle(bid) == 1
    want = mp.fragment(b"\x00\x31\x00\x01" + frame, 0, 500, 2, False)
    assert env.sent() == [f for link, f in want if link == 0]
    got1 = [d[l2tp.decode_header(d)[1]:] for d in drain(second)]
    assert got1 == [f for link, f in want if link == 1]
    # receive: an FCS-carrying bridged frame in short-sequence fragments over both links
    info = b"\x00\x31" + bcp.encode_bridged_frame(frame, fcs=True)
    for link, f in mp.fragment(info, 0, 300, 2, True):
        second.sendto(data_message(1, 3, f), env.sock.getsockname()) if link else env.peer.sendto(
            data_message(*IDS, f), env.sock.getsockname())
        env.dp.rx_udp(env.si)
    assert env.tap.next_in() == frame
    s = env.dp.bundle_stats(bid)
    assert (s["rx_packets"], s["rx_bytes"], s["tx_packets"], s["tx_bytes"]) == (1, len(frame), 1, len(frame))
    # IP inside a bridged bundle is dropped
    for link, f in mp.fragment(b"\x00\x21" + udp4(), 4, 300, 2, True):
        env.peer.sendto(data_message(*IDS, f), env.sock.getsockname())
        env.dp.rx_udp(env.si)
    assert env.dp.bundle_stats(bid)["drops"]["bridged_ip"] == 1
    assert env.tap.pending_in() == []
