"""Reliable delivery of control messages (RFC 2661 §5.8 and Appendix A), sans-IO.

One ``Transport`` per tunnel. It numbers what the tunnel sends (Ns), acknowledges what it receives
(Nr, piggybacked or as a ZLB), keeps the peer's receive window and a slow-start congestion window,
retransmits with exponential backoff, queues out-of-order messages that fall inside our window and
re-acknowledges duplicates. It does no I/O: ``send``/``receive``/``handle_timer`` take ``now``, and
``take_output`` hands back ``ControlMessage`` objects with Ns/Nr filled in.

Sequence numbers are 16-bit and compared modulo 2^16 (``seq_lt``): a is before b when b - a, taken
mod 2^16, lies in 1..32767.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..wire.avp import Avp, ControlMessage

SEQ_MOD = 1 << 16
SEQ_HALF = 1 << 15


def seq_add(a: int, n: int) -> int:
    return (a + n) & 0xFFFF


def seq_lt(a: int, b: int) -> bool:
    """True when ``a`` precedes ``b`` modulo 2^16."""
    d = (b - a) & 0xFFFF
    return 0 < d < SEQ_HALF


def seq_le(a: int, b: int) -> bool:
    return a == b or seq_lt(a, b)


@dataclass(slots=True)
class TransportCounters:
    """Running totals shared by every transport made from one ``TransportConfig`` (the daemon's metrics).

    Per-tunnel counts (``Transport.stats``) vanish with their tunnel; these do not, so a counter stays
    monotonic even for tunnels that came and went between two reads, and reading it costs nothing.
    """

    retransmits: int = 0


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Knobs of the reliable transport. Defaults follow xl2tpd/go-l2tp and RFC 2661 Appendix A."""

    receive_window: int = 4  # our Receive Window Size AVP (§4.4.3): how many we queue out of order
    retransmit_initial_s: float = 1.0  # first retransmission timeout
    retransmit_max_s: float = 8.0  # backoff doubles up to this cap (§5.8: at least 8 s)
    max_retries: int = 5  # retransmissions of one message before the tunnel is declared dead
    ack_delay_s: float = 0.1  # wait this long for a reply to piggyback an ack on, then send a ZLB
    # where every transport of this config also counts its retransmissions; not a setting (not compared)
    counters: TransportCounters | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.receive_window <= 0x7FFF:
            raise ValueError("receive_window must be 1..32767")
        if self.retransmit_initial_s <= 0 or self.retransmit_max_s < self.retransmit_initial_s:
            raise ValueError("retransmit timeouts must be positive and max >= initial")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.ack_delay_s < 0:
            raise ValueError("ack_delay_s must be >= 0")

    @property
    def give_up_after_s(self) -> float:
        """How long a message is retried in total before the transport gives up."""
        total, rto = 0.0, self.retransmit_initial_s
        for _ in range(self.max_retries + 1):
            total += rto
            rto = min(rto * 2, self.retransmit_max_s)
        return total


@dataclass(slots=True)
class _Pending:
    ns: int
    session_id: int
    avps: tuple[Avp, ...]
    retries: int = 0
    deadline: float | None = None  # None: waiting for the window to open


class Transport:
    """The reliable, ordered control channel of one tunnel."""

    def __init__(self, config: TransportConfig, now: float):
        self.config = config
        self.ns = 0  # Ns of the next new message we send
        self.nr = 0  # Ns we expect next from the peer
        self.peer_tunnel_id = 0  # goes into the header of everything we send
        self.peer_window = 4  # §5.8: assume 4 until the peer's Receive Window Size AVP says otherwise
        self.cwnd = 1.0  # Appendix A slow start
        self.ssthresh = float(self.peer_window)
        self.last_rx = now  # last time anything (even a ZLB) came from the peer
        self.failed = False  # retries exhausted for some message
        self._queue: deque[_Pending] = deque()  # in Ns order: the sent-unacked first, then unsent
        self._ooo: dict[int, ControlMessage] = {}  # received ahead of nr, within our window
        self._ack_at: float | None = None
        self._out: list[ControlMessage] = []
        self.stats = {"duplicates": 0, "out_of_window": 0, "queued_out_of_order": 0, "retransmits": 0,
                      "bad_nr": 0}

    # --- sending ----------------------------------------------------------------------------------

    def set_peer_window(self, window: int) -> None:
        self.peer_window = max(1, min(int(window), 0x7FFF))
        self.ssthresh = float(self.peer_window)

    def send(self, session_id: int, avps: tuple[Avp, ...], now: float) -> int:
        """Queue a message for reliable delivery; returns its Ns."""
        ns = self.ns
        self.ns = seq_add(ns, 1)
        self._queue.append(_Pending(ns, session_id, avps))
        self._pump(now)
        return ns

    def _in_flight(self) -> int:
        n = 0
        for p in self._queue:
            if p.deadline is None:
                break
            n += 1
        return n

    def _emit(self, p: _Pending) -> None:
        self._out.append(ControlMessage(self.peer_tunnel_id, p.session_id, p.ns, self.nr, p.avps))
        self._ack_at = None  # the Nr rides along

    def _rto(self, retries: int) -> float:
        return min(self.config.retransmit_initial_s * (2**retries), self.config.retransmit_max_s)

    def _pump(self, now: float) -> None:
        window = max(1, min(int(self.cwnd), self.peer_window))
        in_flight = self._in_flight()
        for p in self._queue:
            if in_flight >= window:
                break
            if p.deadline is None:
                p.deadline = now + self._rto(0)
                self._emit(p)
                in_flight += 1

    @property
    def idle(self) -> bool:
        """Nothing is waiting to be sent or acknowledged."""
        return not self._queue

    @property
    def unacked(self) -> int:
        return len(self._queue)

    # --- receiving --------------------------------------------------------------------------------

    def receive(self, msg: ControlMessage, now: float) -> list[ControlMessage]:
        """Process one control message from the peer; return the messages now deliverable in order
        (never ZLBs, never duplicates)."""
        self.last_rx = now
        self._process_nr(msg.nr, now)
        if msg.is_zlb:
            return []
        if msg.ns == self.nr:
            delivered = [msg]
            self.nr = seq_add(self.nr, 1)
            while self.nr in self._ooo:
                delivered.append(self._ooo.pop(self.nr))
                self.nr = seq_add(self.nr, 1)
            self._schedule_ack(now + self.config.ack_delay_s)
            return delivered
        if seq_lt(msg.ns, self.nr):
            # A duplicate: our ack was lost. Acknowledge again at once, deliver nothing.
            self.stats["duplicates"] += 1
            self._schedule_ack(now)
            return []
        distance = (msg.ns - self.nr) & 0xFFFF
        if distance < self.config.receive_window:
            if msg.ns not in self._ooo:
                self._ooo[msg.ns] = msg
                self.stats["queued_out_of_order"] += 1
            self._schedule_ack(now)  # a ZLB with our Nr tells the peer what is missing
        else:
            self.stats["out_of_window"] += 1
        return []

    def _schedule_ack(self, at: float) -> None:
        if self._ack_at is None or at < self._ack_at:
            self._ack_at = at

    def _process_nr(self, nr: int, now: float) -> None:
        # Nr acknowledges every message with Ns < Nr. An Nr beyond what we have sent is bogus.
        if seq_lt(self.ns, nr):
            self.stats["bad_nr"] += 1
            return
        acked = 0
        while self._queue and self._queue[0].deadline is not None and seq_lt(self._queue[0].ns, nr):
            self._queue.popleft()
            acked += 1
        if acked:
            for _ in range(acked):
                if self.cwnd < self.ssthresh:
                    self.cwnd += 1.0
                else:
                    self.cwnd += 1.0 / self.cwnd
            self.cwnd = min(self.cwnd, float(self.peer_window))
            self._pump(now)

    # --- time -------------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        deadlines = [p.deadline for p in self._queue if p.deadline is not None]
        if self._ack_at is not None:
            deadlines.append(self._ack_at)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        for p in self._queue:
            if p.deadline is None or p.deadline > now:
                continue
            if p.retries >= self.config.max_retries:
                self.failed = True
                return
            p.retries += 1
            p.deadline = now + self._rto(p.retries)
            self.stats["retransmits"] += 1
            if self.config.counters is not None:
                self.config.counters.retransmits += 1
            self.ssthresh = max(self.cwnd / 2, 1.0)
            self.cwnd = 1.0
            self._emit(p)
        if self._ack_at is not None and self._ack_at <= now:
            self._ack_at = None
            self._out.append(ControlMessage(self.peer_tunnel_id, 0, self.ns, self.nr))

    def flush_ack(self) -> None:
        """Send a pending acknowledgement now (a ZLB), e.g. before the tunnel is torn down."""
        if self._ack_at is not None:
            self._ack_at = None
            self._out.append(ControlMessage(self.peer_tunnel_id, 0, self.ns, self.nr))

    def abandon(self) -> None:
        """Stop (re)transmitting: the tunnel is gone. Pending acknowledgements still go out."""
        self._queue.clear()
        self._ooo.clear()

    def take_output(self) -> list[ControlMessage]:
        out, self._out = self._out, []
        return out
