"""PPP Multilink Protocol (MP, RFC 1990): the fragment header codec, fragmentation and reassembly.

This module is the pure-Python reference of the MP data path and the test oracle of its Cython port in
``fastl2tp._dp``: the port must produce the same bytes, the same packets and the same counters for the
same inputs. It keeps its state in plain dicts keyed by sequence number and does no I/O; time comes in
as ``now`` (monotonic seconds).

```
MP fragment, long sequence number format (RFC 1990 §3):
  [FF 03] [00] 3D  |B|E|0|0|0|0|0|0|  sequence number (24 bits)  | fragment data...
MP fragment, short sequence number format (RFC 1990 §3, LCP option 18, §5.1.2):
  [FF 03] [00] 3D  |B|E|0|0| sequence number (12 bits)            | fragment data...
```

``FF 03`` (address/control) is absent when the peer negotiated ACFC and the protocol field 0x003D is
one octet (``3D``) when it negotiated PFC: pppd and RouterOS send either form, so the decoder accepts
all four. B marks the first fragment of a packet, E the last; a packet that fits in one fragment has
both. The reserved bits are ignored on receive (as Linux ``ppp_generic`` does) and sent as zero.

What is fragmented is a whole PPP packet of the bundle: its protocol field followed by its information
field (§3). The fragments' sequence numbers are consecutive over the bundle, modulo 2^24 or 2^12 (§4.2).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ..errors import DecodeError, LocalUsageError

PROTOCOL_MP = 0x003D  # RFC 1990 §3 (also fastl2tp.wire.ppp.Protocol.MP)
ADDRESS_CONTROL = b"\xff\x03"  # RFC 1662 §3.1: All-Stations, Unnumbered Information

FLAG_B = 0x80  # RFC 1990 §3: (B)eginning fragment bit, first octet of the MP header
FLAG_E = 0x40  # RFC 1990 §3: (E)nding fragment bit

LONG_HEADER_LEN = 4  # RFC 1990 §3: B, E, 6 reserved bits, 24-bit sequence number
SHORT_HEADER_LEN = 2  # RFC 1990 §3: B, E, 2 reserved bits, 12-bit sequence number
LONG_SEQ_SPACE = 1 << 24
SHORT_SEQ_SPACE = 1 << 12


def header_len(short_seq: bool) -> int:
    """Octets of MP header (after the PPP protocol field) in the given format."""
    return SHORT_HEADER_LEN if short_seq else LONG_HEADER_LEN


def seq_space(short_seq: bool) -> int:
    """The size of the sequence number space: 2^12 (short format) or 2^24 (long format)."""
    return SHORT_SEQ_SPACE if short_seq else LONG_SEQ_SPACE


def seq_distance(a: int, b: int, short_seq: bool) -> int:
    """How far ``b`` is after ``a``, modulo the sequence space: ``(b - a) mod 2^n`` in ``[0, 2^n)``.
    Serial-number arithmetic: ``b`` is "after" ``a`` when the distance is below half the space."""
    return (b - a) & (seq_space(short_seq) - 1)


@dataclass(frozen=True, slots=True)
class Fragment:
    """One MP fragment: its sequence number, B and E bits and fragment data."""

    seq: int
    begin: bool
    end: bool
    payload: bytes


# --- header codec ---------------------------------------------------------------------------------


def encode_fragment(
    seq: int,
    begin: bool,
    end: bool,
    payload: bytes,
    short_seq: bool,
    *,
    acfc: bool = False,
    pfc: bool = False,
    protocol_field: bool = True,
) -> bytes:
    """Encode one fragment (RFC 1990 §3).

    By default the result is a whole PPP frame: ``FF 03 00 3D`` then the MP header and the data, the form
    every peer accepts. ``acfc`` drops ``FF 03``, ``pfc`` sends the protocol as the single octet ``3D``
    (RFC 1661 §6.5/§6.6, only when the peer negotiated them); ``protocol_field=False`` returns only the
    MP header and the data, i.e. the information field of a PPP frame of protocol 0x003D.
    """
    if not 0 <= seq < seq_space(short_seq):
        raise LocalUsageError(
            f"MP sequence number {seq} out of range for the {'short' if short_seq else 'long'} format"
        )
    flags = (FLAG_B if begin else 0) | (FLAG_E if end else 0)
    if short_seq:
        header = bytes((flags | (seq >> 8), seq & 0xFF))
    else:
        header = bytes((flags, seq >> 16, (seq >> 8) & 0xFF, seq & 0xFF))
    if not protocol_field:
        return header + bytes(payload)
    head = b"" if acfc else ADDRESS_CONTROL
    head += b"\x3d" if pfc else b"\x00\x3d"
    return head + header + bytes(payload)


def decode_fragment(data: bytes | bytearray | memoryview, short_seq: bool, *, protocol_field: bool = True) -> Fragment:
    """Decode one fragment (RFC 1990 §3); raises only :class:`DecodeError`.

    With ``protocol_field`` (the default) ``data`` is a whole PPP frame: optional ``FF 03``, then the
    protocol ``00 3D`` or ``3D`` (anything else is not MP), then the MP header. Without it, ``data`` is
    what follows the protocol field (the information field of a frame already known to be MP).
    ``short_seq`` is the format negotiated with LCP option 18 (§5.1.2): the header does not say.
    """
    data = bytes(data)
    n = len(data)
    pos = 0
    if protocol_field:
        if n >= 2 and data[0] == 0xFF and data[1] == 0x03:
            pos = 2
        if pos < n and data[pos] == 0x3D:
            pos += 1
        elif pos + 1 < n and data[pos] == 0x00 and data[pos + 1] == 0x3D:
            pos += 2
        else:
            raise DecodeError("not an MP frame (protocol 0x003d)", offset=pos, field="protocol")
    hlen = header_len(short_seq)
    if n - pos < hlen:
        raise DecodeError(f"truncated MP header: need {hlen} bytes, have {n - pos}", offset=pos, field="mp_header")
    flags = data[pos]
    if short_seq:
        seq = ((flags & 0x0F) << 8) | data[pos + 1]
    else:
        seq = (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3]
    return Fragment(seq, bool(flags & FLAG_B), bool(flags & FLAG_E), data[pos + hlen :])


# --- transmit: fragmentation ----------------------------------------------------------------------


def fragment(
    packet: bytes,
    next_seq: int,
    mtu: int,
    n_links: int,
    short_seq: bool,
    *,
    acfc: bool = False,
    pfc: bool = False,
    protocol_field: bool = True,
) -> list[tuple[int, bytes]]:
    """Split one PPP packet of the bundle (protocol field + information) into MP fragments (§3, §4.2).

    ``mtu`` bounds each fragment's PPP information field, i.e. MP header + fragment data, as the peer's
    MRU does (RFC 1661 §6.1); the PPP framing before it (``FF 03 00 3D``) is not counted. The packet is
    cut into ``n = ceil(len / (mtu - header))`` fragments (at least one) of sizes as equal as possible
    (the first ``len % n`` are one octet longer). The first fragment carries B, the last E (a packet
    that fits is one fragment with both; an empty packet is a "null fragment" of B+E and no data).
    Fragment ``i`` gets sequence number ``next_seq + i`` modulo the sequence space and goes to link
    ``(next_seq + i) % n_links``, so consecutive fragments, also across packets, go round-robin over
    the bundle's links. The caller advances its ``next_seq`` by ``len(result)``.

    Returns ``[(link_index, frame_bytes), ...]`` in sequence order, frames encoded as by
    :func:`encode_fragment` with the given framing options.
    """
    space = seq_space(short_seq)
    hlen = header_len(short_seq)
    if not 0 <= next_seq < space:
        raise LocalUsageError(f"MP sequence number {next_seq} out of range")
    if n_links < 1:
        raise LocalUsageError("a bundle has at least one link")
    if mtu <= hlen:
        raise LocalUsageError(f"MTU {mtu} leaves no room after the {hlen}-byte MP header")
    room = mtu - hlen
    total = len(packet)
    count = max(1, -(-total // room))
    base, extra = divmod(total, count)
    out: list[tuple[int, bytes]] = []
    pos = 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        seq = (next_seq + i) & (space - 1)
        frame = encode_fragment(
            seq,
            i == 0,
            i == count - 1,
            packet[pos : pos + size],
            short_seq,
            acfc=acfc,
            pfc=pfc,
            protocol_field=protocol_field,
        )
        out.append(((next_seq + i) % n_links, frame))
        pos += size
    return out


# --- receive: reassembly --------------------------------------------------------------------------

COUNTER_NAMES = (
    "received",  # fragments given to receive()
    "delivered",  # packets returned
    "lost_fragments",  # sequence numbers never received and given up (§4.2 rule, overflow or timeout)
    "discarded_fragments",  # received fragments thrown away because their packet cannot complete
    "dropped_incomplete",  # packets whose B fragment was received but that never completed
    "duplicates",  # a fragment whose sequence number is already buffered
    "late",  # a fragment behind the reassembly point (already delivered, discarded or given up)
    "overflow",  # gaps given up because more than max_buffered fragments were buffered
    "timeouts",  # gaps given up because head did not move for timeout_s (a stalled bundle)
    "too_long",  # reassembled packets longer than mrru + 2 (protocol field), dropped
    "null_fragments",  # reassembled packets of zero length (null fragments), consumed, not delivered
)


class Reassembler:
    """Receive side of one bundle: fragments in, whole packets out in sequence order (RFC 1990 §4.1-4.2).

    Sans-IO: ``receive(link_id, fragment, now)``, ``link_down(link_id, now)`` and ``handle_timer(now)``
    return the packets (protocol field + information, as the sender gave them to :func:`fragment`) that
    became complete, in sequence order; ``get_timer()`` says when ``handle_timer`` wants to run.

    State (all explicit, so the Cython port can mirror it):

    - ``head``: the next sequence number to deliver. Every sequence number before it is resolved
      (delivered, discarded or declared lost); a fragment behind it is *late* and dropped.
    - ``frags``: the buffered fragments, ``seq -> (begin, end, payload)``, all within half the
      sequence space after ``head``.
    - ``links``: per member link the most recently received sequence number, or None while that link
      has received nothing at or after ``head``.
    - ``blocked_since``: None when nothing is buffered, else when ``head`` last moved (or when the
      buffer stopped being empty): the start of the current wait.

    M (§4.2) is the minimum, over the member links, of their most recently received sequence number.
    It is *defined* only when every member link has one at or after ``head``; otherwise nothing below
    it can be proven lost. All comparisons are distances from ``head`` modulo the sequence space.

    The rules, applied after every change until none applies (``_process``):

    1. Head present, B set: scan the contiguous run from head. A fragment with E completes the packet:
       deliver it, head moves past it. A fragment with B before any E: the packet's fragments are all
       here but none bore E (§4.2: the fragment numbered before a B is assumed to have borne E): the
       packet is dropped (``dropped_incomplete``) and head moves to that B.
    2. Head present, B clear: its packet began before head, so it can never complete: the fragment
       is discarded (``discarded_fragments``) and head moves on by one.
    3. Otherwise the packet at head is incomplete (its B is at head with a gap after it, or head is
       missing). Its end is the first buffered fragment bearing E, or the fragment before the first
       buffered fragment after head bearing B, whichever comes first. When M has advanced past that
       end (§4.2: a lost fragment is detected when M advances past the sequence number of a fragment
       bearing E of a packet that has not been completely reassembled), the packet is lost: every
       sequence number from head through its end is given up, the missing ones counted in
       ``lost_fragments``, the buffered ones in ``discarded_fragments`` (and the packet in
       ``dropped_incomplete`` if its B was received), and head moves past the end. A B at M itself
       is kept (§4.2: the fragment bearing the new B is not discarded on this basis alone). End
       unknown, M undefined, or M not past the end: wait.

    Rule 3 waits for M to pass the packet's *end*, not merely a gap: a fragment missing before M is
    certainly lost only if links never reorder, which L2TP over UDP does not promise, so a packet
    whose fragments one link reorders still completes while M has not passed its E fragment. Whole
    packets reordered on one link are still lost (the later one's B tells where the earlier ended),
    as with any RFC 1990 receiver. On a single link M is that link's newest fragment, so a fragment
    far ahead (up to half the space) ends every packet before it; a packet must have fewer fragments
    than half the sequence space (2048 in the short format).

    Beyond §4.2 (the receiver's own limits, since an idle link never advances M):

    - *Bounded buffer*: after a fragment is received and processed, while more than ``max_buffered``
      fragments are buffered, the oldest gap (the one blocking ``head``) is given up (``overflow``).
    - *Timeout* (a bundle that stalls, e.g. one link idle after a loss on the other, so M never
      passes the loss): ``get_timer()`` is ``blocked_since + timeout_s``; when it expires,
      ``handle_timer(now)`` gives up the gap at head (``timeouts``) and, if fragments are still
      buffered, the next wait starts at ``now``. One gap per expiry: a stream that keeps moving is
      never cut short by a stray fragment far ahead.
    - Giving up a gap: the packet begun at ``head`` (if any) is dropped and head jumps to the first
      buffered sequence number after the gap, the skipped ones counted in ``lost_fragments``.
    """

    def __init__(
        self,
        short_seq: bool,
        max_buffered: int,
        timeout_s: float,
        *,
        first_seq: int = 0,
        mrru: int | None = None,
    ):
        """``first_seq`` is where the peer starts (§4.2: zero on a new bundle). ``mrru`` (§5.1.1), if
        given, drops reassembled packets whose information field would exceed it."""
        if max_buffered < 1:
            raise LocalUsageError("max_buffered must be at least 1")
        if timeout_s <= 0:
            raise LocalUsageError("timeout_s must be positive")
        self.short_seq = short_seq
        self.space = seq_space(short_seq)
        self.mask = self.space - 1
        self.half = self.space >> 1
        if not 0 <= first_seq < self.space:
            raise LocalUsageError(f"first_seq {first_seq} out of range")
        self.max_buffered = max_buffered
        self.timeout_s = timeout_s
        self.max_packet = None if mrru is None else mrru + 2  # + the protocol field (1 or 2 octets)
        self.head = first_seq
        self.frags: dict[int, tuple[bool, bool, bytes]] = {}
        self.links: dict[Hashable, int | None] = {}
        self.blocked_since: float | None = None
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)

    # --- commands ---------------------------------------------------------------------------------

    def link_up(self, link_id: Hashable) -> None:
        """Make ``link_id`` a member before it has received anything. Until it does, M is undefined,
        so a fragment still in flight on the new link is not taken for lost. (``receive`` from an
        unknown link also makes it a member.)"""
        self.links.setdefault(link_id, None)

    def link_down(self, link_id: Hashable, now: float) -> list[bytes]:
        """Remove a member link (§4.2: M is then the minimum over the remaining links). Fragments it
        did not deliver are found lost as soon as the other links have moved past them."""
        self.links.pop(link_id, None)
        head = self.head
        out: list[bytes] = []
        self._process(out)
        self._rearm(head, now)
        return out

    def receive(self, link_id: Hashable, fragment: Fragment, now: float) -> list[bytes]:
        """Take one fragment received on ``link_id`` at ``now``; return the packets it completes."""
        seq = fragment.seq
        if not 0 <= seq < self.space:
            raise LocalUsageError(f"sequence number {seq} out of range for this bundle's format")
        self.counters["received"] += 1
        if (seq - self.head) & self.mask >= self.half:
            self.counters["late"] += 1
            return []
        self.links[link_id] = seq  # §4.2: the most recently received sequence number on this link
        head = self.head
        out: list[bytes] = []
        if seq in self.frags:
            self.counters["duplicates"] += 1
        else:
            self.frags[seq] = (fragment.begin, fragment.end, fragment.payload)
        self._process(out)
        while len(self.frags) > self.max_buffered:
            self.counters["overflow"] += 1
            self._give_up(out)
            self._process(out)
        self._rearm(head, now)
        return out

    def get_timer(self) -> float | None:
        """When the bundle counts as stalled: ``timeout_s`` after head last moved, if anything is
        buffered; None otherwise."""
        if self.blocked_since is None:
            return None
        return self.blocked_since + self.timeout_s

    def handle_timer(self, now: float) -> list[bytes]:
        """If the bundle has stalled (``now`` reached ``get_timer()``), give up the gap at head and
        return the packets this releases; the next wait starts at ``now``."""
        deadline = self.get_timer()
        if deadline is None or deadline > now:
            return []
        out: list[bytes] = []
        self.counters["timeouts"] += 1
        self._give_up(out)
        self._process(out)
        self.blocked_since = now if self.frags else None
        return out

    # --- rules ------------------------------------------------------------------------------------

    def _rearm(self, head_before: int, now: float) -> None:
        """The wait restarts at ``now`` when head moved or the buffer stopped being empty; it ends
        when the buffer empties."""
        if not self.frags:
            self.blocked_since = None
        elif self.blocked_since is None or self.head != head_before:
            self.blocked_since = now

    def _advance(self, k: int) -> None:
        """Move head ``k`` sequence numbers on (0 < k < half the space). A link whose most recent
        sequence number is now behind head no longer bounds M from above head: it becomes None."""
        self.head = (self.head + k) & self.mask
        for link_id, last in self.links.items():
            if last is not None and (last - self.head) & self.mask >= self.half:
                self.links[link_id] = None

    def _m_distance(self) -> int | None:
        """M as a distance from head, or None when M is undefined or behind head (§4.2)."""
        if not self.links:
            return None
        m = None
        for last in self.links.values():
            if last is None:
                return None
            d = (last - self.head) & self.mask
            if m is None or d < m:
                m = d
        return m

    def _next_buffered_distance(self) -> int | None:
        """The distance from head of the nearest buffered fragment, or None if none is buffered."""
        best = None
        for seq in self.frags:
            d = (seq - self.head) & self.mask
            if best is None or d < best:
                best = d
        return best

    def _run(self) -> tuple[int, str]:
        """Scan from a head fragment bearing B: ``(k, how)`` with ``how`` one of ``"complete"`` (the
        k fragments from head end with E), ``"new_begin"`` (the fragment at distance k bears B, the
        k before it have no E) or ``"gap"`` (distance k is not buffered)."""
        k = 0
        while True:
            frag = self.frags.get((self.head + k) & self.mask)
            if frag is None:
                return k, "gap"
            if k > 0 and frag[0]:
                return k, "new_begin"
            k += 1
            if frag[1]:
                return k, "complete"

    def _take(self, k: int) -> list[bytes]:
        """Remove the k fragments from head on (all buffered) and return their data; head moves past."""
        parts = [self.frags.pop((self.head + i) & self.mask)[2] for i in range(k)]
        self._advance(k)
        return parts

    def _drop_packet(self, k: int) -> None:
        """Discard the k buffered fragments of the begun packet at head."""
        self._take(k)
        self.counters["dropped_incomplete"] += 1
        self.counters["discarded_fragments"] += k

    def _end_distance(self) -> int | None:
        """Where the packet at head ends, as a distance from head, as far as the buffered fragments
        tell (§4.2): the first fragment bearing E, or the one before the first fragment after head
        bearing B (§4.2: the fragment numbered before a B is assumed to have borne E), whichever
        comes first. None when no buffered fragment tells yet."""
        best = None
        for seq, (begin, end, _payload) in self.frags.items():
            d = (seq - self.head) & self.mask
            if begin and d > 0:
                cand = d - 1
            elif end:
                cand = d
            else:
                continue
            if best is None or cand < best:
                best = cand
        return best

    def _drop_through(self, e: int) -> None:
        """Give up the packet at head, which ends at distance ``e``: the buffered fragments up to it
        are discarded, the missing ones counted lost, and head moves past its end."""
        if self.head in self.frags:
            self.counters["dropped_incomplete"] += 1  # its B fragment was received
        for i in range(e + 1):
            if self.frags.pop((self.head + i) & self.mask, None) is None:
                self.counters["lost_fragments"] += 1
            else:
                self.counters["discarded_fragments"] += 1
        self._advance(e + 1)

    def _process(self, out: list[bytes]) -> None:
        """Apply rules 1-3 (see the class docstring) until none applies."""
        while self.frags:
            frag = self.frags.get(self.head)
            if frag is not None:
                if not frag[0]:  # rule 2: a middle or end fragment whose beginning is gone
                    self._take(1)
                    self.counters["discarded_fragments"] += 1
                    continue
                k, how = self._run()  # rule 1: a packet begins at head
                if how == "complete":
                    self._deliver(b"".join(self._take(k)), out)
                    continue
                if how == "new_begin":  # all its fragments are here, but none bore E
                    self._drop_packet(k)
                    continue
            # rule 3: the packet at head is incomplete; it is lost once M has passed its end
            m = self._m_distance()
            if m is None:
                return
            e = self._end_distance()
            if e is None or m <= e:
                return
            self._drop_through(e)

    def _give_up(self, out: list[bytes]) -> None:
        """Give up the gap blocking head (overflow or timeout): drop the packet begun at head, if any,
        then jump head to the next buffered fragment, counting the skipped sequence numbers lost."""
        frag = self.frags.get(self.head)
        if frag is not None:
            # _process left a fragment at head only if it bears B and its run stops at a gap
            k, _how = self._run()
            self._drop_packet(k)
        n = self._next_buffered_distance()
        if n is not None and n > 0:
            self.counters["lost_fragments"] += n
            self._advance(n)

    def _deliver(self, packet: bytes, out: list[bytes]) -> None:
        if not packet:
            self.counters["null_fragments"] += 1
        elif self.max_packet is not None and len(packet) > self.max_packet:
            self.counters["too_long"] += 1
        else:
            self.counters["delivered"] += 1
            out.append(packet)
