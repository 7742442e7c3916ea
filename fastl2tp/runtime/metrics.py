"""Prometheus metrics of a running ``Node``, served over HTTP on the node's own event loop.

Nothing is counted per packet here: the data plane already keeps per-session and per-reason counters
in C, the control plane keeps its own, and ``NodeCollector`` reads them (and the node's tunnels and
sessions) only when Prometheus scrapes. What is no longer visible in the node's state by then — an
authentication that happened, how long a session took to come up, the traffic of sessions that are
gone, retransmissions of tunnels that are gone — is counted as it happens in ``NodeCounters``.

Why not ``prometheus_client.start_http_server``: it serves from a thread of its own, and a scrape
would then read the node's dicts while the event loop changes them. ``MetricsServer`` is a small
HTTP/1.x responder on the loop itself (``asyncio.start_server``): a scrape runs between two loop
callbacks and sees one consistent state. It answers ``GET /metrics`` (and ``HEAD``) and nothing else,
closes every connection after one response, and bounds what a client may cost: the request size, the
time to send it, the time to take the answer, the number of connections at once. A bad client gets a
4xx or a closed connection; nothing it does reaches the daemon's log above DEBUG.

docs/metrics.md lists every metric.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from .._dp import DropReason
from ..config.values import BadValue, parse_host_port
from ..control.transport import TransportCounters
from ..control.tunnel import TunnelState
from ..errors import FastL2tpError
from ..ppp.events import Role
from ..wire.auth import AuthMethod

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from .node import Node, Session

__all__ = ["SETUP_BUCKETS_S", "MetricsServer", "NodeCollector", "NodeCounters", "node_registry", "registry_render",
           "start_metrics"]

log = logging.getLogger(__name__)

Render = Callable[[], Awaitable[bytes]]  # one scrape's text

# Session set-up (L2TP session up -> interface configured) is PPP negotiation, authentication and
# netlink: tens of milliseconds on a LAN, seconds over lossy links or with a slow peer.
SETUP_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

SCRAPE_CHUNK = 64  # sessions read between two returns to the loop (a few ms of work)
SESSION_STATUSES = ("connecting", "connected", "disconnecting")  # always reported, zeros included
_TRAFFIC = (("receive", "bytes", "rx_bytes"), ("receive", "packets", "rx_packets"),
            ("transmit", "bytes", "tx_bytes"), ("transmit", "packets", "tx_packets"))
_DROP_REASONS = tuple(r.name.lower() for r in DropReason if r is not DropReason.OK)
_CONTROL_DROP_PREFIX = "drop_"  # Endpoint.stats keys of datagrams the control plane dropped


def interface_traffic(dp: Any, s: Any) -> tuple[int, int, int, int, int, int]:
    """(rx packets, rx bytes, tx packets, tx bytes, last rx ns, last tx ns) of the session's interface:
    a bundle's interface counts the bundle's traffic (``KeyError`` when the data plane has none)."""
    bundle = getattr(s, "bundle", None)
    if bundle is not None and bundle.owner is s:
        return dp.bundle_traffic(bundle.context)
    return dp.session_traffic(s.tunnel_id, s.session_id)


class NodeCounters:
    """What the node counts as it happens, for the metrics: events that leave no trace in its state.

    The node calls one method per event (a login, a session configured, a session gone); each is a few
    integer operations. ``transport`` goes into the node's ``TransportConfig`` so that every tunnel's
    retransmissions add up here, even for tunnels that come and go between two scrapes.
    """

    def __init__(self) -> None:
        self.auth: Counter[tuple[str, str, str]] = Counter()  # (method, role, "success" | "failure")
        self.setup_buckets = [0] * (len(SETUP_BUCKETS_S) + 1)  # per bucket (not cumulative); last: +Inf
        self.setup_sum_s = 0.0
        self.ended: Counter[str] = Counter()  # rx_bytes/rx_packets/tx_bytes/tx_packets of sessions gone
        self.transport = TransportCounters()

    def auth_result(self, method: AuthMethod, role: Role, succeeded: bool) -> None:
        self.auth[(method.value, role.value, "success" if succeeded else "failure")] += 1

    def session_set_up(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.setup_buckets[bisect.bisect_left(SETUP_BUCKETS_S, seconds)] += 1
        self.setup_sum_s += seconds

    def session_ended(self, stats: Mapping[str, object]) -> None:
        """Keep the traffic of a session the data plane is about to forget (its last ``session_stats``)."""
        for _, _, key in _TRAFFIC:
            self.ended[key] += int(stats[key])  # type: ignore[call-overload]


class _Families:
    """One scrape's metric families, empty until ``NodeCollector.collect`` fills them."""

    def __init__(self) -> None:
        session_labels = ["interface", "user", "tunnel_id", "session_id"]
        self.tunnels = GaugeMetricFamily("fastl2tp_tunnels", "L2TP tunnels by state", labels=["state"])
        self.sessions = GaugeMetricFamily("fastl2tp_sessions", "sessions by status", labels=["status"])
        self.per_session = [
            CounterMetricFamily(f"fastl2tp_session_{way}_{unit}",
                                f"IP {unit} {'from' if way == 'receive' else 'to'} the peer through this session",
                                labels=session_labels)
            for way, unit, _ in _TRAFFIC]
        self.traffic = [
            CounterMetricFamily(f"fastl2tp_{way}_{unit}",
                                f"IP {unit} {'from' if way == 'receive' else 'to'} peers, all sessions "
                                "(those that ended included)")
            for way, unit, _ in _TRAFFIC]
        self.dp_drops = CounterMetricFamily("fastl2tp_dataplane_drops", "packets the data plane dropped, by reason",
                                            labels=["reason"])
        self.control_drops = CounterMetricFamily("fastl2tp_control_drops",
                                                 "control datagrams the L2TP endpoint dropped, by reason",
                                                 labels=["reason"])
        self.auth = CounterMetricFamily("fastl2tp_authentications",
                                        "PPP authentications by method, our role and result",
                                        labels=["method", "role", "result"])
        self.retransmits = CounterMetricFamily("fastl2tp_control_retransmits",
                                               "L2TP control messages sent again (RFC 2661 section 5.8)")
        self.setup = HistogramMetricFamily("fastl2tp_session_setup_seconds",
                                           "time from L2TP session up to its interface configured")
        self.radius = CounterMetricFamily("fastl2tp_radius_client_events",
                                          "RADIUS client: requests, retransmits, failovers, timeouts, replies, "
                                          "refused replies", labels=["event"])
        self.radius_incoming = CounterMetricFamily("fastl2tp_radius_incoming",
                                                   "RFC 5176 requests by outcome (disconnect, coa, nak, duplicate, "
                                                   "unknown_client, bad_request)", labels=["outcome"])

    def all(self) -> list[Metric]:
        return [self.tunnels, self.sessions, *self.per_session, *self.traffic, self.dp_drops, self.control_drops,
                self.auth, self.retransmits, self.setup, self.radius, self.radius_incoming]


class NodeCollector(Collector):
    """Reads a live ``Node`` at scrape time, on the node's loop (see the module docstring).

    Reading a session's counters costs about a microsecond (``DataPlane.session_traffic``), so with
    thousands of sessions one scrape would hold the loop — and with it the data plane — for a long
    time. ``render`` therefore reads the sessions ``chunk`` at a time, giving the loop back between
    chunks, and turns the numbers into text on a worker thread (they are plain values by then). The
    rest (tunnels, statuses, totals, counters) is read after the last pause, at one moment. A session
    that ends during a scrape keeps the series read before it ended, but only ``NodeCounters.ended``
    carries it into the totals, so they neither count it twice nor go down.
    """

    def __init__(self, node: Node, chunk: int = SCRAPE_CHUNK):
        self.node = node
        self.chunk = max(1, chunk)

    def describe(self) -> Iterator[Metric]:
        """The metric names, so that the registry can refuse a clash without reading the node."""
        return iter(_Families().all())

    def collect(self) -> Iterator[Metric]:
        """All at once (for a registry; the server uses ``render``)."""
        f = _Families()
        for _ in self._fill(f):
            pass
        return iter(f.all())

    async def render(self) -> bytes:
        """The Prometheus text of one scrape, without holding the loop for long."""
        f = _Families()
        for _ in self._fill(f):
            await asyncio.sleep(0)
        return await asyncio.to_thread(generate_latest, _Fixed(f.all()))

    def _fill(self, f: _Families) -> Iterator[None]:
        """Fill ``f``; yields where the loop may run (between chunks of sessions)."""
        node = self.node
        read: list[tuple[Session, list[int]]] = []
        for i, s in enumerate(list(node.sessions.values()), 1):
            try:
                rx_p, rx_b, tx_p, tx_b, _, _ = interface_traffic(node.dp, s)
            except KeyError:  # not in the data plane (yet, or any more)
                continue
            st = {"rx_packets": rx_p, "rx_bytes": rx_b, "tx_packets": tx_p, "tx_bytes": tx_b}
            values = [int(st[key]) for _, _, key in _TRAFFIC]
            labels = [s.ifname, s.user, str(s.tunnel_id), str(s.session_id)]
            for family, n in zip(f.per_session, values, strict=True):
                family.add_metric(labels, n)
            read.append((s, values))
            if i % self.chunk == 0:
                yield
        # from here on nothing yields: what follows is one moment of the node's state

        totals = [node.counters.ended[key] for _, _, key in _TRAFFIC]
        for s, values in read:
            if node.sessions.get(s.key) is s:
                for j, n in enumerate(values):
                    totals[j] += n
            # else it ended during this scrape and its traffic is in `ended` now
        for family, n in zip(f.traffic, totals, strict=True):
            family.add_metric([], n)

        by_state = Counter({st.value: 0 for st in TunnelState})
        endpoint = node.driver.endpoint if node.driver is not None else None
        if endpoint is not None:
            by_state.update(t.state.value for t in endpoint.tunnels.values())
        for state, n in sorted(by_state.items()):
            f.tunnels.add_metric([state], n)

        by_status = Counter(dict.fromkeys(SESSION_STATUSES, 0))
        by_status.update("disconnecting" if s.closed else s.status for s in node.sessions.values())
        for status, n in sorted(by_status.items()):
            f.sessions.add_metric([status], n)

        counters = node.dp.counters()
        for reason in _DROP_REASONS:
            f.dp_drops.add_metric([reason], counters[reason])
        if endpoint is not None:
            for key, n in sorted(endpoint.stats.items()):
                if key.startswith(_CONTROL_DROP_PREFIX):
                    f.control_drops.add_metric([key[len(_CONTROL_DROP_PREFIX):]], n)

        auth = Counter({(m.value, r.value, result): 0 for m in AuthMethod for r in Role
                        for result in ("success", "failure")})
        auth.update(node.counters.auth)
        for (method, role, result), n in sorted(auth.items()):
            f.auth.add_metric([method, role, result], n)

        f.retransmits.add_metric([], node.counters.transport.retransmits)

        cumulative, buckets = 0, []
        bounds = [*(repr(float(b)) for b in SETUP_BUCKETS_S), "+Inf"]
        for bound, n in zip(bounds, node.counters.setup_buckets, strict=True):
            cumulative += n
            buckets.append((bound, cumulative))
        f.setup.add_metric([], buckets, node.counters.setup_sum_s)

        radius = getattr(node, "radius", None)
        for event, n in sorted((radius.client.stats if radius is not None else {}).items()):
            f.radius.add_metric([event], n)
        dynauth = getattr(node, "dynauth", None)
        for outcome, n in sorted((dynauth.stats if dynauth is not None else {}).items()):
            f.radius_incoming.add_metric([outcome], n)


class _Fixed(Collector):
    """Families already filled, for ``generate_latest`` on a worker thread."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def node_registry(node: Node) -> CollectorRegistry:
    """A registry of its own (not prometheus_client's global one, which would also export this process's
    Python internals and could not hold two nodes in one test process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


def registry_render(registry: CollectorRegistry) -> Render:
    """``MetricsServer``'s ``render`` for a registry whose collectors are cheap: generated on the loop."""

    async def render() -> bytes:
        return generate_latest(registry)

    return render


# --- HTTP ------------------------------------------------------------------------------------------

MAX_REQUEST_BYTES = 8192  # request line and headers together; /metrics needs a few hundred
READ_TIMEOUT_S = 5.0  # to send the whole request
WRITE_TIMEOUT_S = 10.0  # to take the whole answer
MAX_CLIENTS = 16  # connections at once; more are closed at once (Prometheus uses one)
LINGER_S = 2.0  # after the answer: wait this long for the client to close (see MetricsServer._linger)
LINGER_BYTES = 65536  # and read no more than this meanwhile
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error", 505: "HTTP Version Not Supported"}


class _BadRequest(Exception):
    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status = status


class MetricsServer:
    """``GET /metrics`` → ``render()``, on the running loop. One response per connection."""

    def __init__(self, render: Render, *, max_request_bytes: int = MAX_REQUEST_BYTES,
                 read_timeout_s: float = READ_TIMEOUT_S, write_timeout_s: float = WRITE_TIMEOUT_S,
                 max_clients: int = MAX_CLIENTS):
        self.render = render
        self.max_request_bytes = max_request_bytes
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s
        self.max_clients = max_clients
        self.server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self.stats: Counter[str] = Counter()  # responses by status, refused connections

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port chosen by the kernel when asked for port 0)."""
        assert self.server is not None and self.server.sockets
        host, port = self.server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self, host: str, port: int) -> None:
        """Listen; ``OSError`` when the address cannot be bound."""
        self.server = await asyncio.start_server(self._serve, host, port, limit=self.max_request_bytes,
                                                 reuse_address=True)

    async def close(self) -> None:
        """Stop listening and drop the connections still open."""
        if self.server is None:
            return
        self.server.close()
        for writer in list(self._clients):
            writer.transport.abort()
        self._clients.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 1.0)
        self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= self.max_clients:
            self.stats["refused"] += 1
            writer.transport.abort()
            return
        self._clients.add(writer)
        try:
            try:
                async with asyncio.timeout(self.read_timeout_s):
                    method, path = await self._read_request(reader)
            except _BadRequest as exc:
                log.debug("metrics: %s from %s: %s", exc.status, writer.get_extra_info("peername"), exc)
                await self._respond(writer, exc.status, f"{_REASONS[exc.status]}: {exc}\n".encode())
            except TimeoutError:
                log.debug("metrics: request from %s timed out", writer.get_extra_info("peername"))
                self.stats["timeout"] += 1
                return
            else:
                await self._answer(writer, method, path)
            await self._linger(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:  # the client went away or stalled
            log.debug("metrics: connection from %s: %s", writer.get_extra_info("peername"), exc or type(exc).__name__)
        finally:
            self._clients.discard(writer)
            writer.transport.abort()

    async def _answer(self, writer: asyncio.StreamWriter, method: str, path: str) -> None:
        if method not in ("GET", "HEAD"):
            await self._respond(writer, 405, b"Method Not Allowed: only GET\n", extra="Allow: GET, HEAD\r\n")
        elif path != "/metrics":
            await self._respond(writer, 404, b"Not Found: the metrics are at /metrics\n")
        else:
            try:
                body = await self.render()
            except Exception:  # noqa: BLE001 - a collector bug: log it, answer 500, keep serving
                log.exception("metrics: collecting failed")
                await self._respond(writer, 500, b"Internal Server Error\n")
                return
            await self._respond(writer, 200, body, content_type=CONTENT_TYPE_LATEST, head=method == "HEAD")

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Close after the answer without losing it: closing a socket that still holds unread input (a
        request body, a pipelined request) sends a reset, which may discard the answer at the client
        before it reads it. So: our side done (FIN), then read and drop what comes until the client
        closes, for a short while and a bounded amount."""
        if writer.can_write_eof():
            writer.write_eof()
        left = LINGER_BYTES
        async with asyncio.timeout(LINGER_S):
            while left > 0 and (data := await reader.read(min(left, 4096))):
                left -= len(data)

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str]:
        """The request line's method and path (query dropped); headers are read, checked and ignored."""
        size = 0
        lines: list[bytes] = []
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # a line longer than the stream limit
                raise _BadRequest(400, "request too large") from None
            size += len(line)
            if size > self.max_request_bytes:
                raise _BadRequest(400, "request too large")
            if not line.endswith(b"\n"):
                raise asyncio.IncompleteReadError(line, None)  # the client closed before the end
            if line in (b"\r\n", b"\n"):
                if lines:
                    break
                continue  # RFC 9112 §2.2: ignore empty lines before the request line
            lines.append(line)
        try:
            words = lines[0].decode("ascii").rstrip("\r\n").split(" ")
        except UnicodeDecodeError:
            raise _BadRequest(400, "request line is not ASCII") from None
        if len(words) != 3 or not all(words):
            raise _BadRequest(400, "malformed request line")
        method, target, version = words
        if not version.startswith("HTTP/1."):
            if version.startswith("HTTP/"):
                raise _BadRequest(505, f"{version} is not served (HTTP/1.0 or HTTP/1.1)")
            raise _BadRequest(400, "malformed request line")
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            raise _BadRequest(505, f"{version} is not served (HTTP/1.0 or HTTP/1.1)")
        if not method.isalpha() or not method.isupper() or not target.startswith("/"):
            raise _BadRequest(400, "malformed request line")
        for header in lines[1:]:
            name, colon, _ = header.partition(b":")
            if not colon or not name or name != name.strip():
                raise _BadRequest(400, "malformed header line")
        return method, target.split("?", 1)[0]

    async def _respond(self, writer: asyncio.StreamWriter, status: int, body: bytes, *,
                       content_type: str = "text/plain; charset=utf-8", extra: str = "", head: bool = False) -> None:
        self.stats[str(status)] += 1
        head_text = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n")
        writer.write(head_text.encode("ascii") + (b"" if head else body))
        async with asyncio.timeout(self.write_timeout_s):
            await writer.drain()


async def start_metrics(node: Node, listen: str) -> MetricsServer:
    """Serve ``node``'s metrics on ``listen`` (``"127.0.0.1:9117"``, ``"[::1]:9117"``).

    Raises ``FastL2tpError`` with one line when ``listen`` is not an address:port or cannot be bound.
    """
    try:
        address, port = parse_host_port(listen)
    except BadValue as exc:
        raise FastL2tpError(f"metrics: {exc}") from None
    server = MetricsServer(NodeCollector(node).render)
    try:
        await server.start(str(address), port)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)  # uvloop's strerror also repeats the address
        raise FastL2tpError(f"metrics: cannot listen on {listen}: {why}") from None
    return server
