"""The RADIUS client of the NAS, sans-IO: identifiers, retransmission, failover, dead servers.

Shaped like aioquic and ``control/endpoint.py``: commands (``authenticate``, ``account``, ``cancel``),
inputs ``receive_datagram(data, from_addr, now)`` and ``handle_timer(now)``, outputs
``datagrams_to_send()`` (``(address, port, bytes)``), ``get_timer()`` and ``next_event()`` /
``take_events()``. It never reads a clock or touches a socket; randomness (Request Authenticators,
the first identifier of each server) comes from ``rng(n) -> bytes``.

Behaviour:
- A request goes to the first server in the configured order that is not dead, with a fresh
  identifier of that destination (address, port) and, for Access-Request, a fresh Request
  Authenticator. It is sent again, byte for byte (RFC 5080 §2.2.1), every ``server.timeout_s``
  until ``tries_per_server`` sends are unanswered; then that destination is dead for
  ``dead_time_s`` and the request fails over to the next server (new identifier, new authenticator,
  re-encoded with that server's secret; accounting gets its Acct-Delay-Time). When the last
  server gives up: ``AuthFailed`` / ``AccountingFailed``.
- Dead servers are tried too, after the live ones, in the configured order: with every server dead,
  requests still go out. A dead server's holddown ends by itself; then it is first again (as
  RouterOS). An answer from a server makes it alive at once.
- Identifiers: 0..255 per destination; one in flight is never given to another request. A request
  keeps the identifiers of all the servers it was sent to until it ends, so a late answer from a
  server it failed over from is still matched and accepted: the first valid answer wins, later
  ones are dropped as unexpected. (Each answer is checked against the request it names: Response
  Authenticator and Message-Authenticator, so a stale identifier cannot be confused.)
- Replies that do not check out (``DecodeError``) are dropped and counted; the request goes on
  waiting, so a forged reply cannot fail a login.
- Accounting never holds up authentication: it has its own queue and its own limit of requests in
  flight (``max_accounting_in_flight``); when the queue overflows, its oldest request fails.
  Authentication is only ever held back when all 256 identifiers of a destination are in flight.
"""

from __future__ import annotations

import enum
import heapq
import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from secrets import token_bytes as urandom  # the CSPRNG; tests inject their own

from ..errors import DecodeError, LocalUsageError
from .packets import (
    AccessRequest,
    AccessResult,
    AccountingRequest,
    EncodedRequest,
    RadiusRequest,
)

Rng = Callable[[int], bytes]
Destination = tuple[str, int]  # (canonical address, port)
Datagram = tuple[str, int, bytes]


def _canonical(address: str) -> str:
    """The text form of an IP address as compared here (IPv4-mapped IPv6 taken as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


@dataclass(frozen=True, slots=True)
class RadiusServer:
    """One server (``/radius`` entry). ``secret`` as octets (the config's text, UTF-8 encoded).
    require_message_authenticator: refuse Access replies without a Message-Authenticator (Blast-RADIUS,
    RouterOS ``require-message-auth``); turn off only for a server that cannot sign its replies."""

    address: str
    secret: bytes = field(repr=False)
    auth_port: int = 1812
    acct_port: int = 1813
    timeout_s: float = 1.1
    require_message_authenticator: bool = True

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "address", _canonical(str(self.address)))
        except ValueError:
            raise LocalUsageError(f"RADIUS server address {self.address!r} is not an IP address") from None
        if not self.secret:
            raise LocalUsageError("a RADIUS secret must not be empty")
        if self.timeout_s <= 0:
            raise LocalUsageError("RADIUS timeout must be positive")
        for port in (self.auth_port, self.acct_port):
            if not 1 <= port <= 65535:
                raise LocalUsageError(f"RADIUS port {port} is not 1..65535")

    def destination(self, kind: Kind) -> Destination:
        return (self.address, self.auth_port if kind == Kind.AUTH else self.acct_port)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """tries_per_server: sends of one request to one server (the first and the retransmissions) before
    failing over. dead_time_s: how long a server that gave no answer is tried only after the others.
    max_accounting_in_flight / max_accounting_queued: the accounting queue's limits."""

    tries_per_server: int = 3
    dead_time_s: float = 10.0
    max_accounting_in_flight: int = 64
    max_accounting_queued: int = 10000

    def __post_init__(self) -> None:
        if self.tries_per_server < 1 or self.dead_time_s < 0:
            raise LocalUsageError("tries_per_server must be >= 1 and dead_time_s >= 0")
        if self.max_accounting_in_flight < 1 or self.max_accounting_queued < 0:
            raise LocalUsageError("accounting limits must be positive")


class Kind(enum.Enum):
    AUTH = "authentication"
    ACCT = "accounting"


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RadiusEvent:
    handle: int


@dataclass(frozen=True, slots=True)
class AuthDone(RadiusEvent):
    """A server answered: ``result.accepted`` says whether with Access-Accept."""

    result: AccessResult
    server: Destination


@dataclass(frozen=True, slots=True)
class AuthFailed(RadiusEvent):
    """No server answered (or none is configured)."""

    reason: str


@dataclass(frozen=True, slots=True)
class AccountingDone(RadiusEvent):
    server: Destination


@dataclass(frozen=True, slots=True)
class AccountingFailed(RadiusEvent):
    reason: str


Event = AuthDone | AuthFailed | AccountingDone | AccountingFailed


# --- state ---------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Attempt:
    server: RadiusServer
    destination: Destination
    encoded: EncodedRequest


@dataclass(slots=True, eq=False)
class _Request:
    handle: int
    kind: Kind
    request: RadiusRequest
    created: float
    order: list[RadiusServer]
    pos: int = 0  # index into order of the server being tried
    tries: int = 0  # sends to order[pos]
    deadline: float | None = None  # None: not in flight (queued, or waiting for an identifier)
    attempts: list[_Attempt] = field(default_factory=list)
    refused: str = ""  # why the latest reply to it was dropped
    started: bool = False  # accounting: taken from the queue (counts against the in-flight limit)
    done: bool = False


class _Identifiers:
    """The 256 identifiers of one destination."""

    __slots__ = ("in_use", "next")

    def __init__(self, first: int) -> None:
        self.in_use: set[int] = set()
        self.next = first & 0xFF

    def allocate(self) -> int | None:
        for k in range(256):
            i = (self.next + k) & 0xFF
            if i not in self.in_use:
                self.in_use.add(i)
                self.next = (i + 1) & 0xFF
                return i
        return None


class RadiusClient:
    """Authentication and accounting requests to an ordered list of servers."""

    def __init__(self, servers: list[RadiusServer] | tuple[RadiusServer, ...], rng: Rng | None = None,
                 config: ClientConfig | None = None):
        self.config = config or ClientConfig()
        self._rng: Rng = rng or urandom
        self.servers: tuple[RadiusServer, ...] = tuple(servers)
        self._next_handle = 1
        self._requests: dict[int, _Request] = {}
        self._by_id: dict[tuple[Destination, int], _Request] = {}
        self._ids: dict[Destination, _Identifiers] = {}
        self._dead_until: dict[Destination, float] = {}
        self._timers: list[tuple[float, int, int]] = []  # (deadline, seq, handle), stale entries skipped
        self._timer_seq = 0
        self._stalled: deque[_Request] = deque()  # waiting for a free identifier
        self._acct_queue: deque[_Request] = deque()
        self._acct_in_flight = 0
        self._out: list[Datagram] = []
        self._events: deque[Event] = deque()
        self.stats = {"requests": 0, "retransmits": 0, "failovers": 0, "timeouts": 0, "replies": 0,
                      "bad_replies": 0, "unexpected": 0, "malformed": 0, "auth_failed": 0,
                      "accounting_failed": 0, "accounting_dropped": 0}
        self.last_bad_reply: str = ""  # why the latest dropped reply was refused (for logs)

    # --- commands --------------------------------------------------------------------------------

    def set_servers(self, servers: list[RadiusServer] | tuple[RadiusServer, ...]) -> None:
        """New configuration: new requests use ``servers``; those in flight finish with their list."""
        self.servers = tuple(servers)
        live = {s.destination(k) for s in self.servers for k in Kind}
        for dest in [d for d in self._dead_until if d not in live]:
            del self._dead_until[dest]

    def authenticate(self, request: AccessRequest, now: float) -> int:
        """Send an Access-Request; the answer comes as ``AuthDone`` or ``AuthFailed`` with the handle."""
        if not isinstance(request, AccessRequest):
            raise LocalUsageError("authenticate() takes an AccessRequest")
        req = self._new(Kind.AUTH, request, now)
        if not req.order:
            self._finish(req, AuthFailed(req.handle, "no RADIUS server configured"), now)
        else:
            self._send_first(req, now)
        return req.handle

    def account(self, request: AccountingRequest, now: float) -> int:
        """Queue an Accounting-Request; ``AccountingDone`` or ``AccountingFailed`` follows."""
        if not isinstance(request, AccountingRequest):
            raise LocalUsageError("account() takes an AccountingRequest")
        req = self._new(Kind.ACCT, request, now)
        if not req.order:
            self._finish(req, AccountingFailed(req.handle, "no RADIUS server configured"), now)
            return req.handle
        self._acct_queue.append(req)
        self._pump_accounting(now)
        while len(self._acct_queue) > self.config.max_accounting_queued:
            old = self._acct_queue.popleft()
            self.stats["accounting_dropped"] += 1
            self._finish(old, AccountingFailed(old.handle, "accounting queue full"), now)
        return req.handle

    def cancel(self, handle: int, now: float) -> bool:
        """Forget a request (its session is gone); no event follows. False if it had already ended."""
        req = self._requests.get(handle)
        if req is None:
            return False
        if req.kind == Kind.ACCT and not req.started:
            self._acct_queue.remove(req)
        self._finish(req, None, now)
        self._pump_accounting(now)
        return True

    # --- inputs ----------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, from_addr: tuple, now: float) -> bool:
        """A datagram from a server's address and port. True if it answered a request of ours."""
        if len(data) < 20:
            self.stats["malformed"] += 1
            return False
        try:
            dest = (_canonical(str(from_addr[0])), int(from_addr[1]))
        except (ValueError, IndexError, TypeError):
            self.stats["unexpected"] += 1
            return False
        req = self._by_id.get((dest, data[1]))
        attempt = None if req is None else next(
            (a for a in req.attempts if a.destination == dest and a.encoded.identifier == data[1]), None)
        if req is None or attempt is None:
            self.stats["unexpected"] += 1
            return False
        try:
            result = req.request.parse_reply(attempt.encoded, data)
        except DecodeError as e:
            self.stats["bad_replies"] += 1
            self.last_bad_reply = req.refused = f"from {dest[0]}:{dest[1]}: {e}"
            return False
        self.stats["replies"] += 1
        self._dead_until.pop(dest, None)
        if req.kind == Kind.AUTH:
            self._finish(req, AuthDone(req.handle, result, dest), now)
        else:
            self._finish(req, AccountingDone(req.handle, dest), now)
        self._pump_accounting(now)
        return True

    def handle_timer(self, now: float) -> None:
        """Retransmit, fail over or give up whatever is due at ``now``."""
        while self._timers and self._timers[0][0] <= now:
            deadline, _, handle = heapq.heappop(self._timers)
            req = self._requests.get(handle)
            if req is None or req.deadline != deadline:
                continue  # stale entry
            self._expire(req, now)
        self._pump_accounting(now)

    # --- outputs ---------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest deadline, or None."""
        while self._timers:
            deadline, _, handle = self._timers[0]
            req = self._requests.get(handle)
            if req is not None and req.deadline == deadline:
                return deadline
            heapq.heappop(self._timers)
        return None

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def take_events(self) -> list[Event]:
        out = list(self._events)
        self._events.clear()
        return out

    # --- views -----------------------------------------------------------------------------------

    def is_dead(self, destination: Destination, now: float) -> bool:
        return self._dead_until.get(destination, float("-inf")) > now

    @property
    def pending(self) -> int:
        """Requests not ended (in flight, queued or waiting for an identifier)."""
        return len(self._requests)

    # --- internals -------------------------------------------------------------------------------

    def _new(self, kind: Kind, request: RadiusRequest, now: float) -> _Request:
        handle = self._next_handle
        self._next_handle += 1
        req = _Request(handle, kind, request, now, self._order(kind, now))
        self._requests[handle] = req
        self.stats["requests"] += 1
        return req

    def _order(self, kind: Kind, now: float) -> list[RadiusServer]:
        """Live servers in the configured order, then the dead ones (in the configured order too)."""
        alive = [s for s in self.servers if not self.is_dead(s.destination(kind), now)]
        dead = [s for s in self.servers if self.is_dead(s.destination(kind), now)]
        return alive + dead

    def _pump_accounting(self, now: float) -> None:
        while self._acct_queue and self._acct_in_flight < self.config.max_accounting_in_flight:
            req = self._acct_queue.popleft()
            if req.done:
                continue
            self._acct_in_flight += 1
            req.started = True
            req.order = self._order(Kind.ACCT, now)  # it may have waited: who is dead now
            self._send_first(req, now)

    def _send_first(self, req: _Request, now: float) -> None:
        """Send to ``req.order[req.pos]`` with a new identifier; stall when there is none free."""
        server = req.order[req.pos]
        dest = server.destination(req.kind)
        ids = self._ids.get(dest)
        if ids is None:
            ids = self._ids[dest] = _Identifiers(self._rng(1)[0])
        identifier = ids.allocate()
        if identifier is None:
            req.deadline = None
            self._stalled.append(req)
            return
        authenticator = self._rng(16) if req.kind == Kind.AUTH else None
        encoded = req.request.encode(server.secret, identifier, authenticator, delay_s=now - req.created,
                                     require_message_authenticator=server.require_message_authenticator)
        req.attempts.append(_Attempt(server, dest, encoded))
        self._by_id[(dest, identifier)] = req
        req.tries = 0
        self._transmit(req, now)

    def _transmit(self, req: _Request, now: float) -> None:
        attempt = req.attempts[-1]
        self._out.append((attempt.destination[0], attempt.destination[1], attempt.encoded.data))
        req.tries += 1
        req.deadline = now + attempt.server.timeout_s
        self._timer_seq += 1
        heapq.heappush(self._timers, (req.deadline, self._timer_seq, req.handle))

    def _expire(self, req: _Request, now: float) -> None:
        if req.tries < self.config.tries_per_server:
            self.stats["retransmits"] += 1
            self._transmit(req, now)
            return
        # this server gave no answer: dead for a while; on to the next one
        self.stats["timeouts"] += 1
        dest = req.attempts[-1].destination
        self._dead_until[dest] = now + self.config.dead_time_s
        req.deadline = None
        if req.pos + 1 < len(req.order):
            req.pos += 1
            self.stats["failovers"] += 1
            self._send_first(req, now)
            return
        tried = ", ".join(f"{a.destination[0]}:{a.destination[1]}" for a in req.attempts)
        reason = f"no answer from {tried}"
        if req.refused:
            reason += f"; a reply was refused: {req.refused}"
        if req.kind == Kind.AUTH:
            self.stats["auth_failed"] += 1
            self._finish(req, AuthFailed(req.handle, reason), now)
        else:
            self.stats["accounting_failed"] += 1
            self._finish(req, AccountingFailed(req.handle, reason), now)

    def _finish(self, req: _Request, event: Event | None, now: float) -> None:
        if req.done:
            return
        req.done = True
        req.deadline = None
        self._requests.pop(req.handle, None)
        freed = False
        for a in req.attempts:
            key = (a.destination, a.encoded.identifier)
            if self._by_id.get(key) is req:
                del self._by_id[key]
                self._ids[a.destination].in_use.discard(a.encoded.identifier)
                freed = True
        if req.started and req.kind == Kind.ACCT:
            self._acct_in_flight -= 1
        if event is not None:
            self._events.append(event)
        if freed and self._stalled:
            stalled, self._stalled = self._stalled, deque()
            for other in stalled:
                if not other.done:
                    self._send_first(other, now)
