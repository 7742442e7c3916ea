"""One L2TP endpoint: demultiplexes datagrams onto tunnels, allocates ids, bounds unauthenticated state.

Sans-IO in aioquic's shape: ``receive_datagram(data, peer, now)``, ``handle_timer(now)``,
``get_timer()``, ``datagrams_to_send()``, ``take_events()``; commands ``open_tunnel``, ``open_session``,
``close_session``, ``close_tunnel``. The runtime owns the sockets and the clock.

Tunnels are found by our own tunnel id (the header's Tunnel ID). A new SCCRQ (header tunnel id 0) is
matched against existing tunnels by (peer address, peer port, peer's Assigned Tunnel ID): Windows
reuses small tunnel ids, and many clients may sit behind one NAT, so the peer's tunnel id alone does
not identify a tunnel. Once a tunnel exists, only its peer address and port may speak for it
(RFC 2661 §8.1: "they MUST remain static for the life of the tunnel"); the one exception is the
SCCRP, which may come from another port than the one the SCCRQ went to (§8.1), and the LAC follows it.

Nothing a peer sends raises out of ``receive_datagram``: undecodable datagrams are dropped and counted
in ``stats``; protocol errors close the tunnel or session they belong to; an unexpected exception in
one tunnel is logged as a bug and closes that tunnel only.
"""

from __future__ import annotations

import heapq
import ipaddress
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..errors import DecodeError, LocalUsageError
from ..wire.avp import (
    AvpType,
    ControlMessage,
    ErrorCode,
    MessageType,
    ResultCode,
    StopCCNResult,
    decode_control_body,
    encode_message,
)
from ..wire.l2tp import UnsupportedVersion, decode_header
from . import events as ev
from .tunnel import Role, Tunnel, TunnelConfig, TunnelState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TunnelSecret:
    """RouterOS ``/ppp l2tp-secret``: the tunnel secret for peers in ``address`` (a prefix)."""

    address: ipaddress.IPv4Network | ipaddress.IPv6Network
    secret: bytes


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    tunnel: TunnelConfig = field(default_factory=TunnelConfig)
    accept_tunnels: bool = True  # an LNS answers SCCRQ; a client-only endpoint does not
    secrets: tuple[TunnelSecret, ...] = ()  # per peer prefix; the longest prefix wins
    max_tunnels: int = 16384
    max_half_open: int = 2048  # tunnels not established yet: state held for peers not yet proven
    max_half_open_per_peer: int = 512  # per peer address (a NAT may hide many clients)


@dataclass(frozen=True, slots=True)
class Datagram:
    data: bytes
    peer: ev.Address
    tunnel_id: int  # which tunnel it belongs to (the runtime may send each tunnel from its own port)


class Endpoint:
    def __init__(self, config: EndpointConfig, rng: Callable[[int], bytes] = secrets.token_bytes):
        self.config = config
        self.rng = rng
        self.tunnels: dict[int, Tunnel] = {}
        self._by_peer: dict[tuple[str, int, int], int] = {}
        self._peer_key: dict[int, tuple[str, int, int]] = {}  # tunnel id -> its key in _by_peer
        self._half_open: set[int] = set()  # tunnels an unproven peer made us create (not yet up)
        self._half_open_by_host: Counter[str] = Counter()
        self._out: list[Datagram] = []
        self._events: list[ev.Event] = []
        self._heap: list[tuple[float, int]] = []
        self._deadline: dict[int, float] = {}
        self.stats: Counter[str] = Counter()

    # --- lookups ------------------------------------------------------------------------------------

    def secret_for(self, host: str) -> bytes | None:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return None
        best: TunnelSecret | None = None
        for s in self.config.secrets:
            if addr.version == s.address.version and addr in s.address:
                if best is None or s.address.prefixlen > best.address.prefixlen:
                    best = s
        return best.secret if best else None

    def _alloc_tunnel_id(self) -> int | None:
        if len(self.tunnels) >= min(self.config.max_tunnels, 0xFFFF):
            return None
        for _ in range(64):
            tid = int.from_bytes(self.rng(2), "big")
            if tid and tid not in self.tunnels:
                return tid
        return next((i for i in range(1, 0x10000) if i not in self.tunnels), None)

    def _track_half_open(self, t: Tunnel) -> None:
        half = t.role is Role.LNS and t.state in (TunnelState.IDLE, TunnelState.WAIT_CTL_CONN)
        if half and t.local_id not in self._half_open:
            self._half_open.add(t.local_id)
            self._half_open_by_host[t.peer[0]] += 1
        elif not half and t.local_id in self._half_open:
            self._half_open.discard(t.local_id)
            self._half_open_by_host[t.peer[0]] -= 1
            if self._half_open_by_host[t.peer[0]] <= 0:
                del self._half_open_by_host[t.peer[0]]

    # --- commands -----------------------------------------------------------------------------------

    def open_tunnel(self, peer: ev.Address, now: float, config: TunnelConfig | None = None) -> int:
        """LAC: dial ``peer`` (SCCRQ). Returns our tunnel id."""
        tid = self._alloc_tunnel_id()
        if tid is None:
            raise LocalUsageError("no free tunnel id")
        t = Tunnel(Role.LAC, tid, peer, config or self.config.tunnel, now, self.rng)
        self.tunnels[tid] = t
        t.open(now)
        self._collect(t, now)
        return tid

    def open_session(self, tunnel_id: int, now: float, *, calling_number: bytes = b"",
                     called_number: bytes = b"") -> int:
        """LAC: place a call in ``tunnel_id`` (sent once the tunnel is up). Returns our session id."""
        t = self._tunnel(tunnel_id)
        sid = t.new_session_id()
        if sid is None:
            raise LocalUsageError(f"tunnel {tunnel_id}: no free session id")
        t.open_session(now, calling_number=calling_number, called_number=called_number, session_id=sid)
        self._collect(t, now)
        return sid

    def close_session(self, tunnel_id: int, session_id: int, now: float,
                      result: ResultCode | None = None, reason: str = "administrative") -> None:
        t = self.tunnels.get(tunnel_id)
        if t is None:
            return
        t.close_session(session_id, result or ResultCode(3, 0), now, reason)  # 3: administrative
        self._collect(t, now)

    def close_tunnel(self, tunnel_id: int, now: float, result: ResultCode | None = None,
                     reason: str = "administrative close") -> None:
        t = self.tunnels.get(tunnel_id)
        if t is None:
            return
        t.close(result or ResultCode(StopCCNResult.GENERAL_REQUEST, 0), now, reason)
        self._collect(t, now)

    def close_all(self, now: float, reason: str = "shutting down") -> None:
        for tid in list(self.tunnels):
            self.close_tunnel(tid, now, ResultCode(StopCCNResult.SHUTTING_DOWN, 0), reason)

    def _tunnel(self, tunnel_id: int) -> Tunnel:
        t = self.tunnels.get(tunnel_id)
        if t is None:
            raise LocalUsageError(f"no tunnel {tunnel_id}")
        return t

    # --- input --------------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, peer: ev.Address, now: float) -> bool:
        """Handle one datagram from ``peer``. Returns False when it is an L2TP data message (the data
        plane's business), True when it was consumed (or dropped) here."""
        try:
            header, start, end = decode_header(data)
        except UnsupportedVersion:
            self.stats["drop_bad_version"] += 1  # §3.1: MUST be discarded
            return True
        except DecodeError:
            self.stats["drop_malformed_header"] += 1
            return True
        if not header.is_control:
            return False
        body = bytes(data[start:end])
        if header.tunnel_id == 0:
            self._receive_new(header, body, peer, now)
            return True
        t = self.tunnels.get(header.tunnel_id)
        if t is None:
            self.stats["drop_unknown_tunnel"] += 1
            return True
        if t.peer != peer:
            if (t.role is Role.LAC and t.state is TunnelState.WAIT_CTL_REPLY and t.peer[0] == peer[0]):
                t.peer = peer  # §8.1: the LNS may answer from another port; follow it
            else:
                self.stats["drop_wrong_peer_address"] += 1
                return True
        try:
            msg = decode_control_body(header, body, t.config.secret)
        except DecodeError:
            self.stats["drop_malformed_message"] += 1
            return True
        self._guarded(t, lambda: t.receive(msg, now), now)
        return True

    def _receive_new(self, header, body: bytes, peer: ev.Address, now: float) -> None:
        secret = self.secret_for(peer[0])
        try:
            msg = decode_control_body(header, body, secret)
        except DecodeError:
            self.stats["drop_malformed_message"] += 1
            return
        if msg.msg_type is not MessageType.SCCRQ:
            self.stats["drop_no_tunnel"] += 1  # only SCCRQ may be sent to tunnel 0 (a ZLB, too: ignore)
            return
        peer_tid = msg.get(AvpType.ASSIGNED_TUNNEL_ID)
        if not isinstance(peer_tid, int) or peer_tid == 0:
            self.stats["drop_sccrq_without_tunnel_id"] += 1
            return
        key = (peer[0], peer[1], peer_tid)
        existing = self._by_peer.get(key)
        if existing is not None and existing in self.tunnels:
            t = self.tunnels[existing]
            self._guarded(t, lambda: t.receive(msg, now), now)  # a retransmitted SCCRQ: re-ack it
            return
        if not self.config.accept_tunnels:
            self.stats["drop_not_accepting"] += 1
            return
        if self._lost_tie_break(msg, peer, now):
            return
        if (len(self._half_open) >= self.config.max_half_open
                or self._half_open_by_host[peer[0]] >= self.config.max_half_open_per_peer):
            self.stats["drop_half_open_limit"] += 1
            return
        tid = self._alloc_tunnel_id()
        if tid is None:
            self.stats["drop_tunnel_limit"] += 1
            return
        cfg = self.config.tunnel if secret is None else replace(self.config.tunnel, secret=secret)
        t = Tunnel(Role.LNS, tid, peer, cfg, now, self.rng)
        self.tunnels[tid] = t
        self._by_peer[key] = tid
        self._peer_key[tid] = key
        self._guarded(t, lambda: t.receive(msg, now), now)

    def _lost_tie_break(self, msg: ControlMessage, peer: ev.Address, now: float) -> bool:
        """§4.4.3 Tie Breaker: both ends sent SCCRQ to each other at once. The lower value wins and the
        loser silently discards its tunnel; equal values lose on both sides; if only one SCCRQ carries
        a Tie Breaker, that one wins; with none on either side, two tunnels are opened.
        Returns True when the incoming SCCRQ is to be discarded."""
        theirs = msg.get(AvpType.TIE_BREAKER)
        theirs = theirs if isinstance(theirs, bytes) else None
        discard_theirs = False
        for t in list(self.tunnels.values()):
            if not (t.role is Role.LAC and t.state is TunnelState.WAIT_CTL_REPLY and t.peer[0] == peer[0]):
                continue
            ours = t.tie_breaker
            if ours is None and theirs is None:
                continue
            if theirs is None or (ours is not None and ours < theirs):
                self.stats["tie_break_won"] += 1
                discard_theirs = True
                continue
            # We lose (or tie): give up our own tunnel, silently (no StopCCN).
            t._finish("lost the tie-break to the peer's SCCRQ", None, by_peer=False, now=now, linger=False)
            self._collect(t, now)
            self.stats["tie_break_lost"] += 1
            if ours == theirs:
                discard_theirs = True
        return discard_theirs

    def _guarded(self, t: Tunnel, action: Callable[[], None], now: float) -> None:
        """Run ``action`` on one tunnel; a bug in it closes that tunnel only."""
        try:
            action()
        except Exception:  # noqa: BLE001 - the per-tunnel guard of DESIGN.md
            log.exception("tunnel %d: internal error; closing the tunnel", t.local_id)
            self.stats["internal_errors"] += 1
            try:
                t.close(ResultCode(StopCCNResult.GENERAL_ERROR, ErrorCode.VENDOR_ERROR, b"internal error"), now,
                        "internal error")
            except Exception:  # noqa: BLE001
                log.exception("tunnel %d: close failed too; dropping its state", t.local_id)
                t.state = TunnelState.CLOSED
                t._linger_until = now
        self._collect(t, now)

    # --- time ---------------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap:
            at, tid = heap[0]
            if self._deadline.get(tid) == at:
                return at
            heapq.heappop(heap)  # stale entry
        return None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        due: list[int] = []
        while heap and heap[0][0] <= now:
            at, tid = heapq.heappop(heap)
            if self._deadline.get(tid) == at:
                del self._deadline[tid]
                due.append(tid)
        for tid in due:
            t = self.tunnels.get(tid)
            if t is not None:
                self._guarded(t, lambda: t.handle_timer(now), now)

    # --- output -------------------------------------------------------------------------------------

    def _collect(self, t: Tunnel, now: float) -> None:
        for msg in t.take_output():
            try:
                data = encode_message(msg, t.config.secret, self.rng)
            except (LocalUsageError, ValueError):
                log.exception("tunnel %d: cannot encode %s", t.local_id, msg.msg_type)
                continue
            self._out.append(Datagram(data, t.peer, t.local_id))
        self._events.extend(t.take_events())
        if t.peer_tunnel_id and t.local_id not in self._peer_key:
            key = (t.peer[0], t.peer[1], t.peer_tunnel_id)
            if key not in self._by_peer:
                self._by_peer[key] = t.local_id
                self._peer_key[t.local_id] = key
        if t.is_finished(now):
            self._forget(t)
            return
        at = t.get_timer()
        if at is None:
            self._deadline.pop(t.local_id, None)
        elif self._deadline.get(t.local_id) != at:
            self._deadline[t.local_id] = at
            heapq.heappush(self._heap, (at, t.local_id))
        self._track_half_open(t)

    def _forget(self, t: Tunnel) -> None:
        self.tunnels.pop(t.local_id, None)
        self._deadline.pop(t.local_id, None)
        key = self._peer_key.pop(t.local_id, None)
        if key is not None and self._by_peer.get(key) == t.local_id:
            del self._by_peer[key]
        self._track_half_open(t)  # the tunnel is closed: no longer half-open

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def take_events(self) -> list[ev.Event]:
        out, self._events = self._events, []
        return out
