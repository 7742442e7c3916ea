"""Test helpers for PppLink: a server/client pair over a simulated link, and a capture replayer.

Nothing here sleeps or reads a clock: ``LinkPair`` is a small discrete-event simulation (frame
deliveries, auth-backend answers and both links' timers, in time order) with seeded loss, latency and
jitter (jitter reorders frames). ``Replay`` feeds one side of a real capture to one of our links.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from tests.pcaputil import PppCapture

from fastl2tp.errors import DecodeError
from fastl2tp.ppp.auth import AuthDecision, verify_locally
from fastl2tp.ppp.events import AuthRequested, LinkEvent
from fastl2tp.ppp.ipcp import IpcpConfig
from fastl2tp.ppp.link import PppLink
from fastl2tp.wire.ppp import Code, CpPacket, Protocol, decode_cp, decode_frame, decode_options, encode_cp

CP_PROTOCOLS = (Protocol.LCP, Protocol.IPCP, Protocol.IPV6CP, Protocol.CCP)


class ScriptedRng:
    """``rng(n)``: scripted chunks per requested size (in order), then a counter (never zero).

    Keyed by size, so the order in which magic (4), CHAP identifier (1), challenge (8/16/...),
    interface identifier (8) are drawn does not matter."""

    def __init__(self, chunks: dict[int, list[bytes]] | None = None, start: int = 0x1000):
        self.chunks = {n: list(v) for n, v in (chunks or {}).items()}
        self.counter = start

    def __call__(self, n: int) -> bytes:
        queue = self.chunks.get(n)
        if queue:
            return queue.pop(0)
        self.counter += 1
        return (self.counter % (1 << (8 * n)) or 1).to_bytes(n, "big")


def cp(frame: bytes) -> tuple[int, CpPacket | bytes]:
    """(protocol, CpPacket) for control protocols, (protocol, payload) otherwise."""
    f = decode_frame(frame)
    if f.protocol in CP_PROTOCOLS:
        return f.protocol, decode_cp(f.payload)
    return f.protocol, f.payload


def drain_events(link: PppLink) -> list[LinkEvent]:
    out = []
    while (ev := link.next_event()) is not None:
        out.append(ev)
    return out


# --- the pair --------------------------------------------------------------------------------------

Drop = Callable[[str, float, bytes], bool]


@dataclass
class LinkPair:
    """``server`` and ``client`` joined by a simulated wire.

    secrets: the server's user -> password (verify_locally); unknown users are rejected.
    ipcp_for: user -> IpcpConfig handed to ``complete_auth`` with an accepted decision.
    auth_delay_s: how long the "backend" takes to answer (0: in the same step).
    loss: probability that a frame is lost; latency_s + uniform(0, jitter_s): its flight time.
    drop: extra filter ``(sender, now, frame) -> True to drop``.
    protect: ``(sender, frame) -> True`` for frames random loss must spare.
    """

    server: PppLink
    client: PppLink
    secrets: dict[str, str] = field(default_factory=dict)
    ipcp_for: Callable[[str], IpcpConfig | None] | None = None
    auth_delay_s: float = 0.0
    loss: float = 0.0
    latency_s: float = 0.0
    jitter_s: float = 0.0
    seed: int = 0
    drop: Drop | None = None
    protect: Callable[[str, bytes], bool] | None = None
    now: float = 0.0
    log: list[tuple[float, str, bytes]] = field(default_factory=list)  # (time, sender, frame), all sent
    events: dict[str, list[tuple[float, LinkEvent]]] = field(default_factory=lambda: {"server": [], "client": []})

    def __post_init__(self) -> None:
        self._rnd = random.Random(self.seed)
        self._seq = count()
        self._queue: list[tuple[float, int, str, Any]] = []  # (time, seq, kind/target, item)

    def link(self, name: str) -> PppLink:
        return self.server if name == "server" else self.client

    def other(self, name: str) -> str:
        return "client" if name == "server" else "server"

    def start(self, now: float = 0.0) -> None:
        self.now = now
        self.server.open(now)
        self.client.open(now)
        self._drain(now)

    def run(self, until: float) -> float:
        """Process deliveries, backend answers and timers in time order up to ``until``."""
        for _ in range(1_000_000):
            candidates = []
            if self._queue:
                candidates.append(self._queue[0][0])
            for name in ("server", "client"):
                t = self.link(name).get_timer()
                if t is not None:
                    candidates.append(t)
            if not candidates or min(candidates) > until:
                self.now = max(self.now, until)
                return self.now
            now = max(self.now, min(candidates))
            self.now = now
            if self._queue and self._queue[0][0] <= now:
                _, _, kind, item = heapq.heappop(self._queue)
                if kind == "auth":
                    self._complete(item, now)
                else:
                    self.link(kind).receive_frame(item, now)
            else:
                for name in ("server", "client"):
                    t = self.link(name).get_timer()
                    if t is not None and t <= now:
                        self.link(name).handle_timer(now)
            self._drain(now)
        raise AssertionError("simulation did not settle")

    def _drain(self, now: float) -> None:
        while True:
            instant: list[tuple[str, AuthRequested]] = []
            for name in ("server", "client"):
                link = self.link(name)
                for frame in link.take_frames():
                    self.log.append((now, name, frame))
                    if self.drop is not None and self.drop(name, now, frame):
                        continue
                    lost = bool(self.loss) and self._rnd.random() < self.loss
                    if lost and (self.protect is None or not self.protect(name, frame)):
                        continue
                    at = now + self.latency_s + (self._rnd.uniform(0, self.jitter_s) if self.jitter_s else 0.0)
                    heapq.heappush(self._queue, (at, next(self._seq), self.other(name), frame))
                for ev in drain_events(link):
                    self.events[name].append((now, ev))
                    if isinstance(ev, AuthRequested):
                        if self.auth_delay_s > 0:
                            heapq.heappush(self._queue, (now + self.auth_delay_s, next(self._seq), "auth", (name, ev)))
                        else:
                            instant.append((name, ev))
            if not instant:
                return
            for item in instant:
                self._complete(item, now)

    def _complete(self, item: tuple[str, AuthRequested], now: float) -> None:
        name, ev = item
        password = self.secrets.get(ev.username)
        if password is None:
            decision = AuthDecision(False, reason="unknown user")
        else:
            decision = verify_locally(ev.request, password)
        ipcp = self.ipcp_for(ev.username) if self.ipcp_for is not None and decision.accepted else None
        self.link(name).complete_auth(ev.request_id, decision, now, ipcp=ipcp)

    # queries
    def kinds(self, name: str) -> list[str]:
        return [type(ev).__name__ for _, ev in self.events[name]]

    def of(self, name: str, cls: type) -> list[Any]:
        return [ev for _, ev in self.events[name] if isinstance(ev, cls)]

    def sent(self, name: str, protocol: int, code: int | None = None) -> list[tuple[float, Any]]:
        out = []
        for t, who, frame in self.log:
            if who != name:
                continue
            proto, body = cp(frame)
            if proto == protocol and (code is None or (isinstance(body, CpPacket) and body.code == code)):
                out.append((t, body))
        return out


# --- replay of a capture ---------------------------------------------------------------------------


def _options(packet: CpPacket) -> list[tuple[int, bytes]]:
    return [(o.type, o.data) for o in decode_options(packet.data)]


@dataclass
class Replay:
    """Play the peer of a captured session against ``link``: the frames the capture shows from
    ``peer`` go to our link in capture order and at capture times (relative to the first frame).

    The captured side we stand in for (``us``) is the reference: its Configure-Requests are paired,
    in order, with ours per protocol. A captured Ack/Nak/Reject of the k-th reference request is
    delivered as the answer to our k-th request; our request must hold a subset of the reference
    request's options (same type and value), so the real peer, which accepted the reference, would
    accept ours too. Violations are collected in ``mismatches``. An Ack is re-addressed to our
    request (Identifier and data); a Nak/Reject only gets our Identifier (a Reject keeps only options
    we asked for). Terminate-Ack gets the Identifier of our Terminate-Request.

    ``on_reference(capture, now)`` is called for each captured frame of ``us`` (e.g. to close the
    link where the reference side terminated). AuthRequested is answered at once with
    ``verify_locally`` against ``secrets`` and ``ipcp_for(user)``.
    """

    link: PppLink
    captures: list[PppCapture]
    us: str
    peer: str
    secrets: dict[str, str] = field(default_factory=dict)
    ipcp_for: Callable[[str], IpcpConfig | None] | None = None
    on_reference: Callable[[PppCapture, float], None] | None = None
    sent: list[tuple[float, bytes]] = field(default_factory=list)
    events: list[tuple[float, LinkEvent]] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    translated: int = 0

    def __post_init__(self) -> None:
        self._ours: dict[int, list[CpPacket]] = {}
        self._refs: dict[int, list[CpPacket]] = {}
        self._our_term_id: int | None = None
        self._t0 = self.captures[0].time if self.captures else 0.0

    def run(self, tail_s: float = 10.0) -> None:
        self.link.open(0.0)
        self._drain(0.0)
        now = 0.0
        for cap in self.captures:
            now = cap.time - self._t0
            self._timers(now)
            if cap.src == self.us:
                self._note(self._refs, cap.frame)
                if self.on_reference is not None:
                    self.on_reference(cap, now)
            elif cap.src == self.peer:
                self.link.receive_frame(self._translate(cap.frame), now)
            self._drain(now)
        self._timers(now + tail_s)

    def _timers(self, until: float) -> None:
        for _ in range(10_000):
            t = self.link.get_timer()
            if t is None or t > until:
                return
            self.link.handle_timer(t)
            self._drain(t)
        raise AssertionError("timers did not settle")

    def _drain(self, now: float) -> None:
        for frame in self.link.take_frames():
            self.sent.append((now, frame))
            self._note(self._ours, frame)
            proto, body = cp(frame)
            if proto == Protocol.LCP and isinstance(body, CpPacket) and body.code == Code.TERMINATE_REQUEST:
                self._our_term_id = body.identifier
        for ev in drain_events(self.link):
            self.events.append((now, ev))
            if isinstance(ev, AuthRequested):
                password = self.secrets.get(ev.username)
                decision = verify_locally(ev.request, password) if password is not None else AuthDecision(False)
                ipcp = self.ipcp_for(ev.username) if self.ipcp_for is not None and decision.accepted else None
                self.link.complete_auth(ev.request_id, decision, now, ipcp=ipcp)
                self._drain(now)

    @staticmethod
    def _note(table: dict[int, list[CpPacket]], frame: bytes) -> None:
        try:
            proto, body = cp(frame)
        except DecodeError:
            return
        if isinstance(body, CpPacket) and body.code == Code.CONFIGURE_REQUEST:
            reqs = table.setdefault(proto, [])
            if reqs and reqs[-1].identifier == body.identifier and reqs[-1].data == body.data:
                return  # a retransmission
            reqs.append(body)

    def _translate(self, frame: bytes) -> bytes:
        f = decode_frame(frame)
        if f.protocol not in CP_PROTOCOLS:
            return frame
        packet = decode_cp(f.payload)
        head = frame[: len(frame) - len(f.payload)]
        if packet.code == Code.TERMINATE_ACK and self._our_term_id is not None:
            return self._redo(frame, head, CpPacket(packet.code, self._our_term_id, packet.data))
        if packet.code not in (Code.CONFIGURE_ACK, Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT):
            return frame
        refs = self._refs.get(f.protocol, [])
        ks = [k for k, r in enumerate(refs) if r.identifier == packet.identifier]
        ours = self._ours.get(f.protocol, [])
        if not ks or ks[-1] >= len(ours):
            self.mismatches.append(f"0x{f.protocol:04x} {Code(packet.code).name} id {packet.identifier}: "
                                   "no matching request of ours")
            return frame
        ref, our = refs[ks[-1]], ours[ks[-1]]
        ref_opts, our_opts = _options(ref), _options(our)
        extra = [o for o in our_opts if o not in ref_opts]
        if extra:
            self.mismatches.append(f"0x{f.protocol:04x} request {our.identifier} has options the peer never "
                                   f"saw: {extra}")
        if packet.code == Code.CONFIGURE_ACK:
            new = CpPacket(Code.CONFIGURE_ACK, our.identifier, our.data)
        elif packet.code == Code.CONFIGURE_REJECT:
            kept = [o for o in decode_options(packet.data) if (o.type, o.data) in our_opts]
            if kept:
                new = CpPacket(Code.CONFIGURE_REJECT, our.identifier, b"".join(
                    bytes((o.type, len(o.data) + 2)) + o.data for o in kept))
            else:
                new = CpPacket(Code.CONFIGURE_ACK, our.identifier, our.data)
        else:
            new = CpPacket(Code.CONFIGURE_NAK, our.identifier, packet.data)
        return self._redo(frame, head, new)

    def _redo(self, frame: bytes, head: bytes, packet: CpPacket) -> bytes:
        out = head + encode_cp(packet)
        if out != frame:
            self.translated += 1
        return out

    # queries
    def ours(self, protocol: int, codes: set[int] | None = None) -> list[bytes]:
        """Our sent payloads of ``protocol`` (CP packets filtered by code)."""
        out = []
        for _, frame in self.sent:
            f = decode_frame(frame)
            if f.protocol != protocol:
                continue
            if codes is not None and (not f.payload or f.payload[0] not in codes):
                continue
            out.append(f.payload)
        return out

    def kinds(self) -> list[str]:
        return [type(ev).__name__ for _, ev in self.events]

    def of(self, cls: type) -> list[Any]:
        return [ev for _, ev in self.events if isinstance(ev, cls)]


def reference(captures: list[PppCapture], src: str, protocol: int, codes: set[int] | None = None) -> list[bytes]:
    """The payloads ``src`` sent in the capture, of ``protocol`` (CP packets filtered by code)."""
    out = []
    for cap in captures:
        if cap.src != src or cap.protocol != protocol:
            continue
        if codes is not None and (not cap.payload or cap.payload[0] not in codes):
            continue
        out.append(cap.payload)
    return out
