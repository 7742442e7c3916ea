"""MPPE in the DataPlane (RFC 3078 packets, RFC 3079 keys): two DataPlanes over loopback UDP with the test
in the middle (it reads every datagram, checks it against the pure-Python oracle in mppe_ref, then forwards
or drops it), datagram socketpairs standing in for the TUN devices."""

from __future__ import annotations

import hashlib
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastl2tp import _dp
from fastl2tp.wire import l2tp, ppp

from . import mppe_ref
from .engine_util import Side, data_message, icmp4, mppe_payload, ppp_frame, syn4, syn6, udp4, udp6
from .test_dp_mss import mss_of

KEY_AB = hashlib.sha1(b"start key A->B").digest()[:16]  # A's send key, B's receive key
KEY_BA = hashlib.sha1(b"start key B->A").digest()[:16]


def inner(packet: bytes) -> bytes:
    """The inner frame MPPE encrypts: the 2-octet protocol field, then the IP packet."""
    return (0x0057 if packet[0] >> 4 == 6 else 0x0021).to_bytes(2, "big") + packet


def mppe_message(tid: int, sid: int, payload: bytes) -> bytes:
    return data_message(tid, sid, ppp_frame(ppp.Protocol.COMPRESSED, payload))


class Link:
    """A (ids 1/2) and B (ids 3/4) with MPPE both ways; the test carries the datagrams between them."""

    def __init__(self, bits: int = 128, stateless: bool = True, **session_kw) -> None:
        self.a = Side.make(1, 2, 3, 4, **session_kw)
        self.b = Side.make(3, 4, 1, 2, **session_kw)
        self.bits, self.stateless = bits, stateless
        self.a.dp.set_mppe(1, 2, send_key=KEY_AB, recv_key=KEY_BA, bits=bits, stateless=stateless)
        self.b.dp.set_mppe(3, 4, send_key=KEY_BA, recv_key=KEY_AB, bits=bits, stateless=stateless)

    def close(self) -> None:
        self.a.close()
        self.b.close()


@pytest.fixture
def link_factory():
    made: list[Link] = []

    def make(*args, **kw) -> Link:
        made.append(Link(*args, **kw))
        return made[-1]

    yield make
    for link in made:
        link.close()


def drop_counts(side: Side) -> dict:
    return {k: v for k, v in side.stats()["drops"].items() if v}


MODES = [(128, True), (40, True), (128, False), (40, False)]
MODE_IDS = ["128-stateless", "40-stateless", "128-stateful", "40-stateful"]


# --- both directions, byte-identical, and the wire against the oracle ----------------------------------------


@pytest.mark.parametrize("bits,stateless", MODES, ids=MODE_IDS)
def test_exchange_both_ways_matches_the_oracle(link_factory, bits, stateless):
    link = link_factory(bits, stateless)
    packets = [icmp4(b"ping %d" % i) for i in range(5)] + [udp4(b"x" * 1300), udp6(b"y" * 700), icmp4(b"")]
    oracle_ab = mppe_ref.MppeSender(KEY_AB, bits, stateless)
    oracle_ba = mppe_ref.MppeSender(KEY_BA, bits, stateless)
    for src, dst, oracle in ((link.a, link.b, oracle_ab), (link.b, link.a, oracle_ba)):
        wire = src.transmit(packets)
        for p, d in zip(packets, wire, strict=True):
            assert mppe_payload(d) == oracle.encrypt(inner(p))  # header and ciphertext
            assert inner(p)[2:] not in d  # no plaintext on the wire
        assert dst.receive(wire) == packets
        assert drop_counts(dst) == {}
        assert dst.mppe()["rx_packets"] == len(packets) and src.mppe()["tx_packets"] == len(packets)
        assert src.stats()["tx_packets"] == len(packets) and dst.stats()["rx_packets"] == len(packets)
    c = link.a.dp.counters()
    assert (c["mppe_tx"], c["mppe_rx"], c["ccp_resets"]) == (len(packets), len(packets), 0)


@pytest.mark.parametrize("bits,stateless", MODES, ids=MODE_IDS)
def test_512_packets_key_changes_against_the_oracle(link_factory, bits, stateless):
    """Two full runs of the low count octet: stateful key changes on counts 0x0FF and 0x1FF (A bit only
    there), stateless on every packet; the oracle decrypts everything the data plane sends."""
    link = link_factory(bits, stateless)
    packets = [udp4(i.to_bytes(2, "big") * 20) for i in range(512)]
    wire = link.a.transmit(packets)
    receiver = mppe_ref.MppeReceiver(KEY_AB, bits, stateless)
    for i, (p, d) in enumerate(zip(packets, wire, strict=True)):
        flags, count, plain = receiver.decrypt(mppe_payload(d))
        assert count == i
        assert bool(flags & mppe_ref.BIT_A) == (stateless or (i & 0xFF) == 0xFF)
        assert plain == inner(p)
    assert link.b.receive(wire) == packets
    assert drop_counts(link.b) == {}


def test_ipv4_pfc_and_acfc_framing_of_the_compressed_datagram():
    """The outer PPP header follows the session's framing flags; the payload is the same."""
    link = Link(128, True)
    try:
        d = link.a.transmit([icmp4()])[0]
        header, start, _ = l2tp.decode_header(d)
        assert d[start : start + 4] == b"\xff\x03\x00\xfd"
        assert link.b.receive([d]) == [icmp4()]
    finally:
        link.close()


# --- loss, resets, resynchronisation -----------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [40, 128])
def test_stateless_loss_is_followed(link_factory, bits):
    link = link_factory(bits, True)
    packets = [udp4(i.to_bytes(2, "big") * 25) for i in range(300)]
    wire = link.a.transmit(packets)
    lost = {3, 4, 5, 50, 100, *range(120, 220), 299}  # a burst of 100 included
    kept = [i for i in range(300) if i not in lost]
    assert link.b.receive([wire[i] for i in kept]) == [packets[i] for i in kept]
    m = link.b.mppe()
    assert m["rx_packets"] == len(kept)
    assert m["rx_lost"] == len(lost) - 1  # the last one is never noticed
    assert m["rx_resyncs"] == 4
    assert drop_counts(link.b) == {}


def test_stateless_reordered_and_repeated_packets_are_dropped_not_followed(link_factory):
    link = link_factory(128, True)
    packets = [udp4(bytes([i]) * 20) for i in range(6)]
    wire = link.a.transmit(packets)
    got = link.b.receive([wire[0], wire[2], wire[1], wire[2], wire[3], wire[5], wire[4]])
    assert got == [packets[0], packets[2], packets[3], packets[5]]
    assert drop_counts(link.b) == {"mppe_bad_count": 3}
    # and the session goes on
    assert link.b.receive(link.a.transmit([icmp4()])) == [icmp4()]


@pytest.mark.parametrize("bits", [40, 128])
def test_stateful_loss_asks_for_a_reset_and_resynchronises(link_factory, bits):
    link = link_factory(bits, False)
    a, b = link.a, link.b
    packets = [udp4(bytes([i]) * 40) for i in range(20)]
    wire = a.transmit(packets[:10])
    assert b.receive(wire[:4] + wire[5:]) == packets[:4]  # count 4 lost: 5..9 discarded
    assert b.dp.take_punted() == [("ccp-reset", 3, 4)]
    m = b.mppe()
    assert m["rx_discard"] and m["reset_requests"] == 1
    assert drop_counts(b) == {"mppe_discard": 5}
    # the runtime sends a CCP Reset-Request; the peer's runtime calls mppe_reset_received
    assert a.dp.mppe_reset_received(1, 2) is True
    wire = a.transmit(packets[10:])
    flags, count = mppe_payload(wire[0])[0] & 0xF0, int.from_bytes(mppe_payload(wire[0])[:2], "big") & 0xFFF
    assert flags & mppe_ref.BIT_A and count == 0x0FF  # flushed as the next flag packet
    assert b.receive(wire) == packets[10:]
    m = b.mppe()
    assert not m["rx_discard"] and m["rx_resyncs"] == 1
    assert b.dp.take_punted() == []
    assert a.mppe()["resets_received"] == 1
    # keeps going across the next flag packet (0x1FF)
    more = [icmp4(i.to_bytes(2, "big")) for i in range(260)]
    assert b.receive(a.transmit(more)) == more
    assert drop_counts(b) == {"mppe_discard": 5}


def test_stateful_discard_asks_again_until_the_flush_arrives(link_factory):
    link = link_factory(128, False)
    packets = [icmp4(bytes([i % 256])) for i in range(140)]
    wire = link.a.transmit(packets)
    assert link.b.receive(wire[1:]) == []  # the first packet lost: everything else is discarded
    punts = link.b.dp.take_punted()
    assert punts == [("ccp-reset", 3, 4)] * 3  # on the loss, then every 64 discarded packets
    assert link.b.mppe()["reset_requests"] == 3


@pytest.mark.parametrize("dialect", ["reinit", "rekey"])
@pytest.mark.parametrize("bits", [40, 128])
def test_stateful_flush_in_either_reading_of_rfc3078(dialect, bits):
    """A peer answers our Reset-Request by re-initialising RC4 with the same key (RFC text, BSD, mpd) or
    with a key change (pppd): both resynchronise the receiver, and it counts which one it saw."""
    side = Side.make(3, 4, 1, 2)
    try:
        side.dp.set_mppe(3, 4, send_key=KEY_BA, recv_key=KEY_AB, bits=bits, stateless=False)
        sender = mppe_ref.MppeSender(KEY_AB, bits, False)
        packets = [udp4(bytes([i]) * 30) for i in range(12)]
        msgs = [mppe_message(3, 4, sender.encrypt(inner(p))) for p in packets]
        assert side.receive(msgs[:3] + msgs[4:6]) == packets[:3]
        assert side.dp.take_punted() == [("ccp-reset", 3, 4)]
        sender.flush(dialect)
        after = [udp6(bytes([i]) * 10) for i in range(5)]
        msgs = [mppe_message(3, 4, sender.encrypt(inner(p))) for p in after]
        assert side.receive(msgs) == after
        m = side.mppe()
        assert not m["rx_discard"] and m["rx_resyncs"] == 1
        assert (m["rx_flush_reinit"], m["rx_flush_rekey"]) == ((1, 0) if dialect == "reinit" else (0, 1))
    finally:
        side.close()


def test_stateful_flag_packet_without_the_a_bit_is_accepted():
    """BSD's sender changes the key on flag packets without setting A; pppd's sets it. Both decrypt."""
    side = Side.make(3, 4, 1, 2)
    try:
        side.dp.set_mppe(3, 4, send_key=KEY_BA, recv_key=KEY_AB, bits=128, stateless=False)
        sender = mppe_ref.MppeSender(KEY_AB, 128, False)
        packets = [icmp4(i.to_bytes(2, "big")) for i in range(0x102)]
        msgs = []
        for p in packets:
            payload = bytearray(sender.encrypt(inner(p)))
            payload[0] &= ~mppe_ref.BIT_A & 0xFF
            msgs.append(mppe_message(3, 4, bytes(payload)))
        assert side.receive(msgs) == packets
        assert drop_counts(side) == {}
    finally:
        side.close()


# --- what is dropped, and counted --------------------------------------------------------------------------------


def make_receiver(stateless: bool = True, bits: int = 128, **kw) -> Side:
    side = Side.make(3, 4, 1, 2)
    side.dp.set_mppe(3, 4, send_key=KEY_BA, recv_key=KEY_AB, bits=bits, stateless=stateless, **kw)
    return side


def test_impossible_headers_and_counts_are_dropped_and_counted():
    side = make_receiver(stateless=True)
    try:
        sender = mppe_ref.MppeSender(KEY_AB, 128, True)
        good = sender.encrypt(inner(icmp4()))
        bad = [
            good[:2],  # no encrypted octet
            b"\x80",  # half a header
            bytes([good[0] & ~mppe_ref.BIT_D & 0xFF]) + good[1:],  # not encrypted
            bytes([good[0] | mppe_ref.BIT_C]) + good[1:],  # MPPC compressed
            bytes([good[0] & ~mppe_ref.BIT_A & 0xFF]) + good[1:],  # stateless without A
            bytes([0x90 | 0x08, 0x00]) + good[2:],  # count 0x800: more than MPPE_MAX_JUMP ahead
        ]
        assert side.receive([mppe_message(3, 4, p) for p in bad]) == []
        assert drop_counts(side) == {"mppe_short": 2, "mppe_bad_header": 3, "mppe_bad_count": 1}
        # nothing above moved the key state: the real packet decrypts
        assert side.receive([mppe_message(3, 4, good)]) == [icmp4()]
        assert side.receive([mppe_message(3, 4, good)]) == []  # the same count again
        assert drop_counts(side)["mppe_bad_count"] == 2
    finally:
        side.close()


def test_garbage_with_a_plausible_header_does_not_move_the_keys():
    side = make_receiver(stateless=True)
    try:
        sender = mppe_ref.MppeSender(KEY_AB, 128, True)
        forged = [bytes([0x90, c]) + bytes(range(40)) for c in (5, 7, 200)]  # 6, 8, 201 ahead
        assert side.receive([mppe_message(3, 4, p) for p in forged]) == []
        assert drop_counts(side) == {"mppe_decrypt": 3}
        packets = [udp4(bytes([i])) for i in range(3)]
        assert side.receive([mppe_message(3, 4, sender.encrypt(inner(p))) for p in packets]) == packets
    finally:
        side.close()


def test_unencrypted_ip_is_dropped_when_mppe_is_required():
    side = make_receiver(required=True)
    try:
        plain = [data_message(3, 4, ppp_frame(0x21, icmp4())), data_message(3, 4, ppp_frame(0x57, udp6()))]
        assert side.receive(plain) == []
        assert drop_counts(side) == {"mppe_unencrypted": 2}
        lcp = ppp_frame(ppp.Protocol.LCP, bytes([9, 1, 0, 8, 1, 2, 3, 4]))  # control frames still punted
        side.receive([data_message(3, 4, lcp)])
        assert side.dp.take_punted() == [("ppp", 3, 4, lcp)]
    finally:
        side.close()


def test_unencrypted_ip_is_delivered_when_mppe_is_optional():
    side = make_receiver(required=False)
    try:
        assert side.receive([data_message(3, 4, ppp_frame(0x21, icmp4()))]) == [icmp4()]
        sender = mppe_ref.MppeSender(KEY_AB, 128, True)
        assert side.receive([mppe_message(3, 4, sender.encrypt(inner(udp4())))]) == [udp4()]
    finally:
        side.close()


@pytest.mark.parametrize("stateless", [True, False])
def test_decrypted_non_ip_is_punted_with_its_inner_protocol(stateless):
    side = make_receiver(stateless=stateless)
    try:
        sender = mppe_ref.MppeSender(KEY_AB, 128, stateless)
        bridged = b"\x00\x31" + bytes(range(60))  # BCP bridged frame (0x0031) inside MPPE
        pfc_ip = b"\x21" + icmp4()  # a PFC'd inner protocol
        got = side.receive([mppe_message(3, 4, sender.encrypt(bridged)), mppe_message(3, 4, sender.encrypt(pfc_ip))])
        assert got == [icmp4()]
        assert side.dp.take_punted() == [("ppp", 3, 4, bridged)]
        assert drop_counts(side) == {}
    finally:
        side.close()


def test_compressed_datagrams_without_mppe_are_still_punted():
    side = Side.make(3, 4, 1, 2)
    try:
        msg = mppe_message(3, 4, b"\x90\x00abc")
        side.receive([msg])
        assert side.dp.take_punted() == [("ppp", 3, 4, ppp_frame(0xFD, b"\x90\x00abc"))]
    finally:
        side.close()


# --- MSS clamping on the inner packets --------------------------------------------------------------------------


def test_mss_clamped_before_encryption_and_after_decryption(link_factory):
    link = link_factory(128, True, mss=1360)
    wire = link.a.transmit([syn4(1460), syn6(1460)])
    receiver = mppe_ref.MppeReceiver(KEY_AB, 128, True)
    plain = [receiver.decrypt(mppe_payload(d))[2][2:] for d in wire]
    assert [mss_of(p) for p in plain] == [1360, 1340]
    # the peer sends unclamped SYNs: B clamps them after decryption
    sender = mppe_ref.MppeSender(KEY_AB, 128, True)
    sender.encrypt(b"")
    sender.encrypt(b"")  # counts 0 and 1 were A's SYNs
    receiver_side = link.b
    got = receiver_side.receive(wire + [mppe_message(3, 4, sender.encrypt(inner(syn4(1460))))])
    assert [mss_of(p) for p in got] == [1360, 1340, 1360]
    assert receiver_side.stats()["mss_clamped"] == 1


# --- API -----------------------------------------------------------------------------------------------------------


def test_set_mppe_validates_and_clear_mppe_turns_it_off():
    side = Side.make(3, 4, 1, 2)
    try:
        dp = side.dp
        with pytest.raises(ValueError):
            dp.set_mppe(3, 4, send_key=KEY_AB, recv_key=KEY_BA, bits=64, stateless=True)
        with pytest.raises(ValueError):
            dp.set_mppe(3, 4, send_key=KEY_AB[:8], recv_key=KEY_BA, bits=128, stateless=True)
        with pytest.raises(KeyError):
            dp.set_mppe(9, 9, send_key=KEY_AB, recv_key=KEY_BA, bits=128, stateless=True)
        assert side.stats()["mppe"] is None
        assert dp.mppe_reset_received(3, 4) is False
        dp.set_mppe(3, 4, send_key=KEY_AB[:8], recv_key=KEY_BA[:8], bits=40, stateless=False, required=False)
        assert side.mppe() == {
            "bits": 40, "stateless": False, "required": False, "tx_ccount": 0, "rx_ccount": 0xFFF,
            "rx_discard": False, "tx_packets": 0, "rx_packets": 0, "rx_resyncs": 0, "rx_lost": 0,
            "reset_requests": 0, "resets_received": 0, "rx_flush_rekey": 0, "rx_flush_reinit": 0,
        }
        side.transmit([icmp4()])
        assert side.mppe()["tx_ccount"] == 1
        dp.set_mppe(3, 4, send_key=KEY_AB, recv_key=KEY_BA, bits=128, stateless=True)  # renegotiated: afresh
        assert side.mppe()["tx_ccount"] == 0 and side.mppe()["bits"] == 128
        dp.clear_mppe(3, 4)
        assert side.stats()["mppe"] is None
        d = side.transmit([icmp4()])[0]
        assert d.endswith(icmp4()) and b"\x00\x21" + icmp4() in d
        dp.set_mppe(3, 4, send_key=KEY_AB, recv_key=KEY_BA, bits=128, stateless=True)
        dp.remove_session(3, 4)  # frees the MPPE state
        assert dp.sessions() == 0
    finally:
        side.close()


def test_small_headroom_is_refused():
    dp = _dp.DataPlane(headroom=16, max_sessions=2)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        si = dp.add_socket(sock.fileno())
        dp.add_session(1, 2, 3, 4, "127.0.0.1", 9, si, -1)
        with pytest.raises(ValueError, match="headroom"):
            dp.set_mppe(1, 2, send_key=KEY_AB, recv_key=KEY_BA, bits=128, stateless=True)
    finally:
        sock.close()


# --- fuzz ------------------------------------------------------------------------------------------------------------

_fuzz_sides: dict[bool, Side] = {}


def _fuzz_side(stateless: bool) -> Side:
    if stateless not in _fuzz_sides:
        _fuzz_sides[stateless] = make_receiver(stateless=stateless)
    return _fuzz_sides[stateless]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stateless=st.booleans(), payloads=st.lists(st.binary(max_size=80), min_size=1, max_size=8))
def test_random_compressed_datagrams_never_crash(stateless, payloads):
    side = _fuzz_side(stateless)
    before = side.dp.counters()["rx_datagrams"]
    side.receive([mppe_message(3, 4, p) for p in payloads])
    side.dp.take_punted()
    c = side.dp.counters()
    assert c["rx_datagrams"] == before + len(payloads)


def teardown_module():
    for side in _fuzz_sides.values():
        side.close()


# --- a real capture: pppd's first encrypted ping ------------------------------------------------------------------


def test_first_ping_of_the_pppd_capture_decrypts():
    """mschapv2-mppe128.pcap (Linux pppd, MPPE-128 stateless): the start keys from the captured MS-CHAPv2
    exchange (password ``lkjrht``), the LAC's first compressed datagram fed to a DataPlane acting as the
    LNS: an ICMP echo request comes out of the TUN."""
    from fastl2tp.ppp.auth import crypto
    from tests.pcaputil import TRACES, ppp_frames

    path = TRACES / "linux-xl2tpd-pppd" / "mschapv2-mppe128.pcap"
    assert path.exists(), f"the shared traces are missing: {path}"
    frames = ppp_frames(path)
    response = next(f for f in frames if f.protocol == 0xC223 and f.payload[0] == 2)  # CHAP Response
    value = response.payload[5 : 5 + response.payload[4]]
    nt_response = value[24:48]
    lac = response.src
    password_hash_hash = crypto.hash_nt_password_hash(crypto.nt_password_hash("lkjrht"))
    master = crypto.get_master_key(password_hash_hash, nt_response)
    lns_send = crypto.get_asymmetric_start_key(master, 16, is_send=True, is_server=True)
    lns_recv = crypto.get_asymmetric_start_key(master, 16, is_send=False, is_server=True)
    sent = [f for f in frames if f.protocol == 0x00FD and f.src == lac]
    assert sent
    side = Side.make(3, 4, 1, 2)
    try:
        side.dp.set_mppe(3, 4, send_key=lns_send, recv_key=lns_recv, bits=128, stateless=True)
        got = side.receive([data_message(3, 4, f.frame) for f in sent])
        assert len(got) == len(sent), side.stats()["drops"]  # every one decrypts (IPv6 ones too)
        ping = next(p for p in got if p[0] >> 4 == 4)
        assert ping[9] == 1 and ping[(ping[0] & 15) * 4] == 8  # ICMP echo request
        # the oracle reads the same plaintext from the same bytes
        oracle = mppe_ref.MppeReceiver(lns_recv, 128, True)
        assert [oracle.decrypt(f.payload)[2][2:] for f in sent] == got
    finally:
        side.close()
