"""PPP Multilink (RFC 1990): header codec, fragmentation and reassembly (fastl2tp.wire.mp)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp.errors import DecodeError, LocalUsageError
from fastl2tp.wire.mp import (
    LONG_SEQ_SPACE,
    SHORT_SEQ_SPACE,
    Fragment,
    Reassembler,
    decode_fragment,
    encode_fragment,
    fragment,
    header_len,
    seq_distance,
    seq_space,
)

# --- helpers ---------------------------------------------------------------------------------------


class Sender:
    """The transmit side of a bundle: keeps next_seq as the data path will."""

    def __init__(self, short_seq: bool, mtu: int, n_links: int, first_seq: int = 0):
        self.short_seq, self.mtu, self.n_links, self.next_seq = short_seq, mtu, n_links, first_seq

    def send(self, packet: bytes) -> list[tuple[int, Fragment]]:
        frames = fragment(packet, self.next_seq, self.mtu, self.n_links, self.short_seq)
        self.next_seq = (self.next_seq + len(frames)) % seq_space(self.short_seq)
        return [(link, decode_fragment(frame, self.short_seq)) for link, frame in frames]


def make_packet(i: int, size: int = 0) -> bytes:
    """A unique PPP packet (IPv4 protocol field, an index, padding up to ``size``)."""
    body = b"\x00\x21" + i.to_bytes(4, "big")
    return body + bytes((i + k) & 0xFF for k in range(max(0, size - len(body))))


def frag(seq: int, b: bool, e: bool, data: bytes = b"x") -> Fragment:
    return Fragment(seq, b, e, data)


def feed(r: Reassembler, arrivals, now: float = 0.0) -> list[bytes]:
    out: list[bytes] = []
    for link, f in arrivals:
        out += r.receive(link, f, now)
    return out


def flush(r: Reassembler) -> list[bytes]:
    """Everything still held, released by the timeout."""
    out: list[bytes] = []
    while (timer := r.get_timer()) is not None:
        out += r.handle_timer(timer)
    return out


# --- header codec ----------------------------------------------------------------------------------


def test_long_header_bytes() -> None:
    assert encode_fragment(0x123456, True, False, b"ab", False) == b"\xff\x03\x00\x3d\x80\x12\x34\x56ab"
    assert encode_fragment(0, True, True, b"", False) == b"\xff\x03\x00\x3d\xc0\x00\x00\x00"
    assert encode_fragment(0xFFFFFF, False, True, b"z", False, protocol_field=False) == b"\x40\xff\xff\xffz"


def test_short_header_bytes() -> None:
    assert encode_fragment(0xABC, False, True, b"x", True) == b"\xff\x03\x00\x3d\x4a\xbcx"
    assert encode_fragment(0xFFF, True, True, b"", True, acfc=True, pfc=True) == b"\x3d\xcf\xff"
    assert encode_fragment(5, False, False, b"", True, protocol_field=False) == b"\x00\x05"


@pytest.mark.parametrize("prefix", [b"\xff\x03\x00\x3d", b"\xff\x03\x3d", b"\x00\x3d", b"\x3d"])
def test_all_framings_decode(prefix: bytes) -> None:
    assert decode_fragment(prefix + b"\x80\x01\x02\x03data", False) == Fragment(0x010203, True, False, b"data")
    assert decode_fragment(prefix + b"\x41\x02data", True) == Fragment(0x102, False, True, b"data")


def test_encode_framing_options() -> None:
    for acfc in (False, True):
        for pfc in (False, True):
            data = encode_fragment(7, True, True, b"p", False, acfc=acfc, pfc=pfc)
            assert data.startswith((b"" if acfc else b"\xff\x03") + (b"\x3d" if pfc else b"\x00\x3d"))
            assert decode_fragment(data, False) == Fragment(7, True, True, b"p")


def test_reserved_bits_are_ignored_on_receive() -> None:
    # as Linux ppp_generic: only B, E and the sequence number are read
    assert decode_fragment(b"\x00\x3d\xbf\x00\x00\x01", False) == Fragment(1, True, False, b"")
    assert decode_fragment(b"\x00\x3d\x70\x01", True) == Fragment(1, False, True, b"")


@pytest.mark.parametrize(
    "data,short",
    [
        (b"", False),
        (b"\xff\x03", False),
        (b"\xff\x03\x00\x21\x80\x00\x00\x00", False),  # IPv4, not MP
        (b"\xc0\x21\x80\x00\x00\x00", False),  # LCP
        (b"\x00\x3d\x80\x00\x00", False),  # 3 of 4 header bytes
        (b"\x3d\x80", True),  # 1 of 2 header bytes
        (b"\xff\x03\x00", True),
    ],
)
def test_decode_errors(data: bytes, short: bool) -> None:
    with pytest.raises(DecodeError):
        decode_fragment(data, short)


def test_decode_without_protocol_field_needs_only_the_header() -> None:
    assert decode_fragment(b"\xc0\x00\x00\x09", False, protocol_field=False) == Fragment(9, True, True, b"")
    with pytest.raises(DecodeError):
        decode_fragment(b"\xc0", True, protocol_field=False)


def test_encode_rejects_out_of_range_sequence_numbers() -> None:
    with pytest.raises(LocalUsageError):
        encode_fragment(SHORT_SEQ_SPACE, True, True, b"", True)
    with pytest.raises(LocalUsageError):
        encode_fragment(LONG_SEQ_SPACE, True, True, b"", False)
    with pytest.raises(LocalUsageError):
        encode_fragment(-1, True, True, b"", False)


@st.composite
def fragments(draw):
    short = draw(st.booleans())
    seq = draw(st.integers(0, seq_space(short) - 1))
    return short, Fragment(seq, draw(st.booleans()), draw(st.booleans()), draw(st.binary(max_size=64)))


@settings(max_examples=500)
@given(fragments(), st.booleans(), st.booleans(), st.booleans())
def test_header_round_trip(sf, acfc: bool, pfc: bool, protocol_field: bool) -> None:
    short, f = sf
    data = encode_fragment(f.seq, f.begin, f.end, f.payload, short, acfc=acfc, pfc=pfc, protocol_field=protocol_field)
    assert decode_fragment(data, short, protocol_field=protocol_field) == f
    assert decode_fragment(bytearray(data), short, protocol_field=protocol_field) == f
    assert decode_fragment(memoryview(data), short, protocol_field=protocol_field) == f


@settings(max_examples=2000)
@given(st.binary(max_size=12), st.booleans(), st.booleans())
def test_decode_any_bytes_raises_only_decode_error(data: bytes, short: bool, protocol_field: bool) -> None:
    try:
        f = decode_fragment(data, short, protocol_field=protocol_field)
    except DecodeError:
        return
    assert 0 <= f.seq < seq_space(short)
    assert len(f.payload) <= len(data) - header_len(short)


def test_seq_distance_wraps() -> None:
    assert seq_distance(LONG_SEQ_SPACE - 1, 1, False) == 2
    assert seq_distance(1, LONG_SEQ_SPACE - 1, False) == LONG_SEQ_SPACE - 2
    assert seq_distance(4095, 0, True) == 1


# --- fragmentation ---------------------------------------------------------------------------------


def test_a_packet_that_fits_is_one_fragment_with_b_and_e() -> None:
    out = fragment(b"\x00\x21abc", 41, 100, 1, False)
    assert out == [(0, b"\xff\x03\x00\x3d\xc0\x00\x00\x29\x00\x21abc")]
    assert fragment(b"", 0, 10, 1, True) == [(0, b"\xff\x03\x00\x3d\xc0\x00")]  # a null fragment


def test_fragment_sizes_bits_and_links() -> None:
    packet = bytes(range(256)) * 6 + bytes(64)  # 1600 octets: 1614 MRRU over a 1450 link
    out = fragment(packet, 10, 1450, 3, False)
    decoded = [decode_fragment(frame, False) for _, frame in out]
    assert [len(f.payload) for f in decoded] == [800, 800]  # equal halves, each <= 1450 - 4
    assert [(f.seq, f.begin, f.end) for f in decoded] == [(10, True, False), (11, False, True)]
    assert [link for link, _ in out] == [10 % 3, 11 % 3]
    assert b"".join(f.payload for f in decoded) == packet
    out = fragment(packet, 0, 104, 2, True)
    decoded = [decode_fragment(frame, True) for _, frame in out]
    assert len(decoded) == 16  # ceil(1600 / 102)
    assert [len(f.payload) for f in decoded] == [100] * 16
    assert [link for link, _ in out] == [0, 1] * 8
    assert [f.begin for f in decoded] == [True] + [False] * 15
    assert [f.end for f in decoded] == [False] * 15 + [True]


def test_fragment_sequence_numbers_wrap() -> None:
    out = fragment(bytes(10), SHORT_SEQ_SPACE - 2, 2 + 3, 1, True)
    assert [decode_fragment(fr, True).seq for _, fr in out] == [4094, 4095, 0, 1]
    out = fragment(bytes(10), LONG_SEQ_SPACE - 1, 4 + 5, 1, False)
    assert [decode_fragment(fr, False).seq for _, fr in out] == [LONG_SEQ_SPACE - 1, 0]


def test_fragment_rejects_bad_arguments() -> None:
    with pytest.raises(LocalUsageError):
        fragment(b"x", 0, 4, 1, False)  # no room after the header
    with pytest.raises(LocalUsageError):
        fragment(b"x", 0, 100, 0, False)
    with pytest.raises(LocalUsageError):
        fragment(b"x", SHORT_SEQ_SPACE, 100, 1, True)


@settings(max_examples=300, deadline=None)
@given(
    st.booleans(),
    st.integers(0, 3000),
    st.integers(2, 600),  # a packet has fewer fragments than half the sequence space
    st.integers(1, 4),
    st.integers(0, LONG_SEQ_SPACE - 1),
    st.booleans(),
    st.booleans(),
)
def test_fragment_then_reassemble_round_trip(short, size, room, n_links, start, acfc, pfc) -> None:
    start %= seq_space(short)
    mtu = room + header_len(short)
    packet = bytes((i * 7 + size) & 0xFF for i in range(size))
    out = fragment(packet, start, mtu, n_links, short, acfc=acfc, pfc=pfc)
    assert len(out) == max(1, -(-size // room))
    prefix = (0 if acfc else 2) + (1 if pfc else 2)
    r = Reassembler(short, max_buffered=10_000, timeout_s=1.0, first_seq=start)
    for link in range(n_links):
        r.link_up(link)
    got: list[bytes] = []
    for i, (link, frame) in enumerate(out):
        assert len(frame) - prefix <= mtu  # MP header + data fit the link's MTU
        assert link == (start + i) % n_links
        f = decode_fragment(frame, short)
        assert f.seq == (start + i) % seq_space(short)
        got += r.receive(link, f, 0.0)
    assert got == ([packet] if packet else [])
    assert r.frags == {}


# --- reassembly ------------------------------------------------------------------------------------


def test_in_order() -> None:
    s = Sender(False, 104, 1)
    r = Reassembler(False, 64, 1.0)
    packets = [make_packet(i, 40 + 37 * i) for i in range(20)]
    got: list[bytes] = []
    for p in packets:
        got += feed(r, s.send(p))
        assert got[-1] == p  # each packet comes out as its last fragment arrives
    assert got == packets
    assert r.counters["delivered"] == 20 and r.counters["lost_fragments"] == 0
    assert r.get_timer() is None


def test_reordered_within_one_link_inside_a_packet() -> None:
    # M (the link's newest) is 2 = the E fragment: M has not passed it, so 1 may still come
    r = Reassembler(False, 64, 1.0)
    assert r.receive("a", frag(0, True, False, b"A"), 0) == []
    assert r.receive("a", frag(2, False, True, b"C"), 0) == []
    assert r.receive("a", frag(1, False, False, b"B"), 0) == [b"ABC"]
    assert r.counters["lost_fragments"] == 0


def test_reordered_across_links() -> None:
    s = Sender(True, 12, 3)
    packets = [make_packet(i, 30) for i in range(4)]
    arrivals = [a for p in packets for a in s.send(p)]
    by_link = {link: [a for a in arrivals if a[0] == link] for link in range(3)}
    # link 2 delivers everything first, then link 0, then link 1 (each link keeps its own order)
    r = Reassembler(True, 1000, 1.0)
    for link in range(3):
        r.link_up(link)
    got = feed(r, by_link[2]) + feed(r, by_link[0])
    assert got == []
    got += feed(r, by_link[1])
    assert got == packets
    assert r.counters["lost_fragments"] == 0


def test_duplicates() -> None:
    s = Sender(False, 20, 2)
    packets = [make_packet(i, 50) for i in range(5)]
    arrivals = [a for p in packets for a in s.send(p)]
    r = Reassembler(False, 1000, 1.0)
    r.link_up(0)
    r.link_up(1)
    got: list[bytes] = []
    for a in arrivals:
        got += feed(r, [a, a])  # every fragment twice in a row
    got += feed(r, arrivals[:3])  # and some old ones again much later
    assert got == packets
    assert r.counters["duplicates"] > 0 and r.counters["late"] > 0
    assert r.counters["lost_fragments"] == 0 and r.counters["discarded_fragments"] == 0


def test_lost_middle_fragment_drops_only_its_packet() -> None:
    s = Sender(False, 24, 1)
    packets = [make_packet(i, 60) for i in range(4)]  # 3 fragments each
    sent = [s.send(p) for p in packets]
    assert all(len(x) == 3 for x in sent)
    r = Reassembler(False, 64, 1.0)
    got = feed(r, sent[0])
    got += feed(r, [sent[1][0], sent[1][2]])  # fragment 4 lost
    assert got == [packets[0]]  # M = 5 (the E fragment itself): not yet passed
    got += feed(r, sent[2])
    got += feed(r, sent[3])
    assert got == [packets[0], packets[2], packets[3]]
    assert r.counters["lost_fragments"] == 1
    assert r.counters["dropped_incomplete"] == 1
    assert r.counters["discarded_fragments"] == 2
    assert r.frags == {}


def test_lost_beginning_fragment_discards_the_rest() -> None:
    r = Reassembler(False, 64, 1.0)
    out = feed(r, [("a", frag(0, True, True, b"P0")), ("a", frag(2, False, False)), ("a", frag(3, False, True))])
    assert out == [b"P0"]  # 1 (a B) is missing; M = 3 has not passed the E at 3: 1 may still come
    assert r.counters["lost_fragments"] == 0
    assert r.receive("a", frag(4, True, True, b"P4"), 1) == [b"P4"]  # M = 4 passed it
    assert r.counters["lost_fragments"] == 1 and r.counters["discarded_fragments"] == 2
    assert r.receive("a", frag(1, True, False), 2) == []  # too late
    assert r.counters["late"] == 1


def test_lost_ending_fragment_keeps_the_next_beginning() -> None:
    # §4.2: fragment 2 (E) is lost and M = 3 bears B: discard through M-1, keep the B at M
    r = Reassembler(False, 64, 1.0)
    r.link_up("a")
    r.link_up("b")
    out = feed(
        r,
        [
            ("a", frag(0, True, False, b"x")),
            ("b", frag(1, False, False, b"y")),
            ("b", frag(3, True, False, b"N")),
            ("a", frag(4, False, False, b"P")),
        ],
    )
    assert out == []
    assert r.counters["lost_fragments"] == 1 and r.counters["dropped_incomplete"] == 1
    assert r.head == 3 and sorted(r.frags) == [3, 4]  # the new packet waits for its end
    assert r.receive("b", frag(5, False, True, b"Q"), 0) == [b"NPQ"]


def test_lost_ending_fragment_new_begin_at_m() -> None:
    r = Reassembler(False, 64, 1.0)
    r.link_up("a")
    r.link_up("b")
    feed(r, [("a", frag(0, True, False, b"x")), ("b", frag(1, False, False, b"y"))])
    # 2 (E) lost on "a"; "b" receives 3 (B): M is undefined until "a" moves past 2
    assert r.receive("b", frag(3, True, False, b"N"), 0) == []
    assert r.counters["lost_fragments"] == 0
    assert r.receive("a", frag(4, False, True, b"P"), 0) == [b"NP"]
    assert r.counters["lost_fragments"] == 1
    assert r.counters["dropped_incomplete"] == 1 and r.counters["discarded_fragments"] == 2


def test_begin_without_previous_end_drops_the_previous_packet() -> None:
    # §4.2: a B means the fragment before it bore E; here it did not: that packet is broken
    r = Reassembler(False, 64, 1.0)
    out = feed(r, [("a", frag(0, True, False, b"x")), ("a", frag(1, True, True, b"Q"))])
    assert out == [b"Q"]
    assert r.counters["dropped_incomplete"] == 1 and r.counters["lost_fragments"] == 0


def test_whole_packet_lost_single_link() -> None:
    s = Sender(True, 100, 1)
    packets = [make_packet(i) for i in range(6)]
    sent = [s.send(p) for p in packets]
    r = Reassembler(True, 64, 1.0)
    got = feed(r, [a for i, x in enumerate(sent) if i not in (2, 3) for a in x])
    assert got == [packets[0], packets[1], packets[4], packets[5]]
    assert r.counters["lost_fragments"] == 2 and r.counters["dropped_incomplete"] == 0


@pytest.mark.parametrize("short", [False, True])
def test_wrap_around_starting_near_the_end(short: bool) -> None:
    start = seq_space(short) - 7
    s = Sender(short, header_len(short) + 16, 2, first_seq=start)
    packets = [make_packet(i, 40) for i in range(6)]  # 3 fragments each: 18 fragments cross the wrap
    sent = [s.send(p) for p in packets]
    seqs = [f.seq for x in sent for _, f in x]
    assert 0 in seqs and seq_space(short) - 1 in seqs
    r = Reassembler(short, 64, 1.0, first_seq=start)
    r.link_up(0)
    r.link_up(1)
    # the packet that straddles the wrap (seqs space-1, 0, 1) loses its middle fragment
    lost = {(start + 7) % seq_space(short)}
    arrivals = [a for x in sent for a in x if a[1].seq not in lost]
    # link 1 runs behind link 0 by 4 fragments
    arrivals.sort(key=lambda a: (a[1].seq - start) % seq_space(short) + (4 if a[0] == 1 else 0))
    got = feed(r, arrivals)
    assert got == [p for i, p in enumerate(packets) if i != 2]
    assert r.counters["lost_fragments"] == 1 and r.counters["dropped_incomplete"] == 1
    assert r.frags == {}


def test_short_sequence_numbers_wrap_many_times() -> None:
    s = Sender(True, 2 + 20, 1)
    r = Reassembler(True, 64, 1.0)
    got: list[bytes] = []
    expected: list[bytes] = []
    for i in range(5000):  # 2 fragments each: 10000 fragments, the 12-bit space wraps twice
        p = make_packet(i, 30)
        sent = s.send(p)
        assert len(sent) == 2
        if i % 97 == 5:
            sent = sent[1:]  # lose the B fragment now and then
        else:
            expected.append(p)
        got += feed(r, sent, float(i))
    assert got == expected
    assert r.counters["discarded_fragments"] == len(range(5, 5000, 97))


def simulate(sent, delays, lost=frozenset(), dup=frozenset(), n_links=2):
    """Arrival order: fragment i leaves at time i and takes ``delays[link]`` plus per-fragment jitter
    that never reorders a link (links are FIFO). Returns [(time, link, fragment)] by arrival."""
    events = []
    last = {}
    for i, (link, f) in enumerate(sent):
        if i in lost:
            continue
        t = max(i + delays[link], last.get(link, -1.0))
        last[link] = t
        events.append((t, i, link, f))
        if i in dup:
            events.append((t + 0.5, i, link, f))
    events.sort(key=lambda e: (e[0], e[1]))
    return [(t, link, f) for t, _, link, f in events]


def test_interleaved_links_with_different_delays() -> None:
    s = Sender(False, 4 + 50, 3)
    packets = [make_packet(i, 20 + (i * 53) % 300) for i in range(40)]
    sent = [a for p in packets for a in s.send(p)]
    r = Reassembler(False, 1000, 5.0)
    for link in range(3):
        r.link_up(link)
    got: list[bytes] = []
    for t, link, f in simulate(sent, {0: 0.0, 1: 7.3, 2: 19.9}):
        got += r.receive(link, f, t)
    assert got == packets
    assert r.counters["lost_fragments"] == 0 and r.frags == {}


def test_one_link_going_down() -> None:
    s = Sender(False, 4 + 30, 2)
    first = [make_packet(i, 70) for i in range(6)]  # 3 fragments each
    sent = [a for p in first for a in s.send(p)]
    r = Reassembler(False, 1000, 5.0)
    r.link_up(0)
    r.link_up(1)
    # link 1 dies after its first fragment: all later fragments on it vanish
    arrivals = [a for i, a in enumerate(sent) if a[0] == 0 or i == 1]
    got = feed(r, arrivals)
    assert got == [first[0]]  # M stuck at link 1's last fragment: nothing after it is known lost
    got += r.link_down(1, 1.0)
    # M is now link 0's newest (16): every packet had a fragment on the dead link
    assert got == [first[0]]
    assert sorted(r.frags) == [16]  # a middle fragment: where its packet ends is not known yet
    # the sender moves to the surviving link
    s.n_links = 1
    second = [make_packet(100 + i, 70) for i in range(3)]
    for p in second:
        got += feed(r, s.send(p), 2.0)
    assert got == [first[0]] + second
    assert r.frags == {}


def test_timeout_releases_a_stalled_bundle() -> None:
    r = Reassembler(False, 64, timeout_s=0.5)
    r.link_up("a")
    r.link_up("b")
    assert r.receive("a", frag(0, True, True, b"P0"), 0.0) == [b"P0"]
    assert r.receive("b", frag(1, True, True, b"P1"), 0.1) == [b"P1"]
    assert r.get_timer() is None
    # 2 is lost on "a", then "a" goes idle: M stays undefined, 3 waits; so does 5 (4 lost too)
    assert r.receive("b", frag(3, True, True, b"P3"), 0.3) == []
    assert r.receive("b", frag(5, True, True, b"P5"), 0.4) == []
    assert r.get_timer() == pytest.approx(0.8)  # head has not moved since 0.3
    assert r.handle_timer(0.79) == []
    assert r.handle_timer(0.8) == [b"P3"]  # one gap per expiry
    assert r.counters["timeouts"] == 1 and r.counters["lost_fragments"] == 1
    assert r.get_timer() == pytest.approx(1.3)
    assert r.handle_timer(1.3) == [b"P5"]
    assert r.get_timer() is None
    assert r.counters["lost_fragments"] == 2
    # traffic resumes; "a" catching up does not bring anything back
    assert r.receive("a", frag(2, True, True, b"late"), 2.0) == []
    assert r.receive("a", frag(6, True, True, b"P6"), 2.0) == [b"P6"]


def test_a_moving_stream_is_not_cut_by_a_stray_fragment_ahead() -> None:
    r = Reassembler(False, 64, timeout_s=0.5)
    r.link_up("a")
    r.receive("b", frag(1000, True, True, b"stray"), 0.0)  # M stays at "a"'s newest: no loss found
    got: list[bytes] = []
    for i in range(100):  # head keeps moving: the wait restarts each time
        got += r.receive("a", frag(i, True, True, bytes([i])), i * 0.1)
        assert r.get_timer() == pytest.approx(i * 0.1 + 0.5)
        got += r.handle_timer(i * 0.1)
    assert got == [bytes([i]) for i in range(100)]
    assert r.counters["timeouts"] == 0 and sorted(r.frags) == [1000]


def test_timeout_of_a_begun_packet_drops_it() -> None:
    r = Reassembler(True, 64, timeout_s=1.0)
    r.link_up("b")  # a member that never sends: M stays undefined
    r.receive("a", frag(0, True, False), 0.0)
    r.receive("a", frag(2, True, True, b"Q"), 0.2)
    assert r.handle_timer(1.0) == [b"Q"]
    assert r.counters["dropped_incomplete"] == 1 and r.counters["lost_fragments"] == 1
    assert r.get_timer() is None


def test_timer_loss_is_found_sooner_by_m() -> None:
    r = Reassembler(False, 64, timeout_s=10.0)
    r.link_up("a")
    r.link_up("b")
    feed(r, [("a", frag(0, True, True)), ("b", frag(1, True, True))])
    assert r.receive("b", frag(3, True, True, b"P3"), 0.0) == []  # 2 lost on "a"
    assert r.receive("a", frag(4, True, True, b"P4"), 0.0) == [b"P3", b"P4"]  # M = 3 passed 2
    assert r.counters["timeouts"] == 0


def test_link_up_prevents_false_loss_while_a_new_link_is_in_flight() -> None:
    r = Reassembler(False, 64, 1.0)
    r.link_up("slow")
    assert r.receive("fast", frag(0, True, True, b"P0"), 0) == [b"P0"]
    assert r.receive("fast", frag(2, True, True, b"P2"), 0) == []  # 1 is still on its way on "slow"
    assert r.receive("slow", frag(1, True, True, b"P1"), 0) == [b"P1", b"P2"]
    assert r.counters["lost_fragments"] == 0


def test_null_fragments_and_mrru() -> None:
    r = Reassembler(False, 64, 1.0, mrru=4)
    assert r.receive("a", frag(0, True, True, b""), 0) == []  # a null fragment only advances
    assert r.receive("a", frag(1, True, True, b"\x00\x21abcd"), 0) == [b"\x00\x21abcd"]
    assert r.receive("a", frag(2, True, False, b"\x00\x21abc"), 0) == []
    assert r.receive("a", frag(3, False, True, b"de"), 0) == []  # 7 > 4 + 2
    assert r.counters["null_fragments"] == 1 and r.counters["too_long"] == 1
    assert r.counters["delivered"] == 1


def test_bounded_buffer_under_a_flood_that_never_completes() -> None:
    r = Reassembler(False, max_buffered=64, timeout_s=60.0)
    r.link_up("idle")  # keeps M undefined: only the buffer bound frees memory
    for i in range(20_000):
        assert r.receive("a", frag((2 * i) % LONG_SEQ_SPACE, True, False, bytes(100)), i * 1e-3) == []
        assert len(r.frags) <= 64
    assert r.counters["overflow"] > 0
    assert r.counters["dropped_incomplete"] == r.counters["overflow"]
    # real traffic after the flood still comes out (it is ahead of the flood's sequence numbers)
    base = 2 * 20_000
    got: list[bytes] = []
    for k in range(70):
        got += r.receive("a", frag(base + k, True, True, b"\x00\x21" + bytes([k])), 30.0)
    flushed = flush(r)
    assert got + flushed == [b"\x00\x21" + bytes([k]) for k in range(70)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, LONG_SEQ_SPACE - 1), st.booleans(), st.booleans()),
        max_size=400,
    ),
    st.booleans(),
    st.integers(1, 32),
)
def test_any_fragment_flood_stays_bounded_and_consistent(flood, short, max_buffered) -> None:
    r = Reassembler(short, max_buffered=max_buffered, timeout_s=1.0)
    space = seq_space(short)
    t = 0.0
    for link, seq, b, e in flood:
        t += 0.01
        out = r.receive(link, Fragment(seq % space, b, e, b"ab"), t)
        assert all(len(p) % 2 == 0 and p for p in out)
        assert len(r.frags) <= max_buffered
        assert all(seq_distance(r.head, s, short) < space // 2 for s in r.frags)
        if r.get_timer() is not None and r.get_timer() <= t:
            r.handle_timer(t)
    flush(r)
    assert r.frags == {} and r.get_timer() is None


@st.composite
def bundle_runs(draw):
    short = draw(st.booleans())
    n_links = draw(st.integers(1, 4))
    room = draw(st.integers(8, 120))  # at most 1250 fragments: within half the short space
    start = draw(st.integers(0, seq_space(short) - 1))
    sizes = draw(st.lists(st.integers(0, 400), min_size=1, max_size=25))
    delays = {link: draw(st.floats(0, 30)) for link in range(n_links)}
    return short, n_links, room, start, sizes, delays


@settings(max_examples=200, deadline=None)
@given(bundle_runs(), st.data())
def test_model_fifo_links_with_loss_and_duplicates(run, data) -> None:
    """With FIFO links and a buffer that never overflows, exactly the packets all of whose fragments
    arrived come out, in order, once the stragglers are flushed; nothing else."""
    short, n_links, room, start, sizes, delays = run
    s = Sender(short, room + header_len(short), n_links, first_seq=start)
    packets = [make_packet(i, size) for i, size in enumerate(sizes)]
    sent_per_packet = [s.send(p) for p in packets]
    sent = [a for x in sent_per_packet for a in x]
    indices = st.sets(st.integers(0, len(sent) - 1), max_size=max(1, len(sent) // 3))
    lost = data.draw(indices)
    dup = data.draw(indices)
    r = Reassembler(short, max_buffered=100_000, timeout_s=1000.0, first_seq=start)
    for link in range(n_links):
        r.link_up(link)
    got: list[bytes] = []
    for t, link, f in simulate(sent, delays, lost, dup, n_links):
        got += r.receive(link, f, t)
    got += flush(r)
    expected, i = [], 0
    for p, x in zip(packets, sent_per_packet):
        if not any(j in lost for j in range(i, i + len(x))):
            expected.append(p)
        i += len(x)
    assert got == expected
    assert r.frags == {}


@settings(max_examples=200, deadline=None)
@given(bundle_runs(), st.randoms(use_true_random=False), st.integers(1, 50))
def test_model_any_order_delivers_an_in_order_subsequence(run, rnd, max_buffered) -> None:
    """Whatever the arrival order (links reordering too), and whatever the buffer size, what comes out
    are whole packets that were sent, each at most once, in sending order."""
    short, n_links, room, start, sizes, _delays = run
    s = Sender(short, room + header_len(short), n_links, first_seq=start)
    packets = [make_packet(i, size) for i, size in enumerate(sizes)]
    sent = [a for p in packets for a in s.send(p)]
    arrivals = sent + rnd.sample(sent, len(sent) // 4)
    rnd.shuffle(arrivals)
    r = Reassembler(short, max_buffered=max_buffered, timeout_s=5.0, first_seq=start)
    got: list[bytes] = []
    for k, (link, f) in enumerate(arrivals):
        got += r.receive(link, f, k * 0.1)
        assert len(r.frags) <= max_buffered
    got += flush(r)
    index = {p: i for i, p in enumerate(packets)}
    positions = [index[p] for p in got]
    assert positions == sorted(set(positions))
    assert r.counters["delivered"] == len(got)
