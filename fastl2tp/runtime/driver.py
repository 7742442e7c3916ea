"""Drive a control ``Endpoint`` on an asyncio (uvloop) loop with real UDP sockets.

aioquic's shape: every input (a datagram, a timer) is fed to the machine with ``now=loop.time()``,
then ``flush()`` sends what the machine queued, hands its events to the owner and re-arms the one
timer from ``get_timer()``.

Sockets are non-blocking and read with ``loop.add_reader`` (no per-datagram transport objects). The
LNS answers from the port it listens on (1701), which NAT'd Windows clients expect; with
``per_tunnel_port=True`` each tunnel gets a socket of its own on an ephemeral port once it sends
its first message (RFC 2661 §8.1 allows the recipient of SCCRQ to answer from any port).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable, Iterator

from ..control import events as ev
from ..control.endpoint import Endpoint
from ..control.tunnel import Role as TunnelRole

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
RECV_BURST = 64  # datagrams read per wake-up before yielding to the loop


def open_udp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def recv_burst(sock: socket.socket, max_size: int, what: str,
               burst: int = RECV_BURST) -> Iterator[tuple[bytes, tuple]]:
    """The datagrams waiting on a non-blocking socket, at most ``burst`` of them: (data, address).
    Errors the kernel reports on the socket (ICMP port unreachable and the like) are logged at debug
    level and skipped; the protocols above retransmit."""
    for _ in range(burst):
        try:
            yield sock.recvfrom(max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("%s: receive error: %s", what, exc)


class ControlDriver:
    """Feeds one ``Endpoint`` from its sockets and timers; reports events to ``on_event``."""

    def __init__(
        self,
        endpoint: Endpoint,
        sock: socket.socket,
        on_event: Callable[[ev.Event], None],
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        per_tunnel_port: bool = False,
        on_data: Callable[[bytes, tuple[str, int]], None] | None = None,
        read_socket: bool = True,
    ):
        self.endpoint = endpoint
        self.loop = loop or asyncio.get_running_loop()
        self.sock = sock
        self.on_event = on_event
        self.on_data = on_data
        self.per_tunnel_port = per_tunnel_port
        self._tunnel_socks: dict[int, socket.socket] = {}
        # a separate socket for the tunnels peers open to us (LNS role), when set
        self.lns_sock: socket.socket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.stats = {"send_errors": 0, "data_ignored": 0}
        self._reading = read_socket  # False: the data plane reads the socket and hands us control messages
        if read_socket:
            self.loop.add_reader(sock.fileno(), self._readable, sock)

    @property
    def local_address(self) -> tuple[str, int]:
        return self.sock.getsockname()[:2]

    def now(self) -> float:
        return self.loop.time()

    # --- input ----------------------------------------------------------------------------------

    def _readable(self, sock: socket.socket) -> None:
        for data, addr in recv_burst(sock, MAX_DATAGRAM, "L2TP control"):
            self.receive(data, addr[:2])
        self.flush()

    def receive(self, data: bytes, addr: tuple[str, int]) -> None:
        """One datagram (also used by the data plane to hand over punted control messages)."""
        if not self.endpoint.receive_datagram(data, addr, self.now()):
            if self.on_data is not None:
                self.on_data(data, addr)
            else:
                self.stats["data_ignored"] += 1

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.endpoint.handle_timer(self.now())
        self.flush()

    # --- commands (run them, then process) -------------------------------------------------------

    def call(self, fn: Callable[..., object], *args, **kwargs) -> object:
        """Run an endpoint command with ``now`` and send what it produced."""
        result = fn(*args, self.now(), **kwargs)
        self.flush()
        return result

    # --- output ---------------------------------------------------------------------------------

    def _sock_for(self, tunnel_id: int) -> socket.socket:
        if not self.per_tunnel_port:
            if self.lns_sock is not None:
                t = self.endpoint.tunnels.get(tunnel_id)
                if t is not None and t.role is TunnelRole.LNS:
                    return self.lns_sock
            return self.sock
        s = self._tunnel_socks.get(tunnel_id)
        if s is None:
            s = open_udp(self.local_address[0], 0)
            self._tunnel_socks[tunnel_id] = s
            self.loop.add_reader(s.fileno(), self._readable, s)
        return s

    def flush(self) -> None:
        """Send what the endpoint queued, deliver its events, re-arm the timer."""
        for d in self.endpoint.datagrams_to_send():
            try:
                self._sock_for(d.tunnel_id).sendto(d.data, d.peer)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.ECONNREFUSED, errno.EHOSTUNREACH,
                                     errno.ENETUNREACH):
                    log.warning("send to %s failed: %s", d.peer, exc)
                self.stats["send_errors"] += 1  # the transport retransmits
        for e in self.endpoint.take_events():
            try:
                self.on_event(e)
            except Exception:  # noqa: BLE001 - an event handler's bug must not stop the control plane
                log.exception("event handler failed for %s", e)
        self._close_unused_sockets()
        at = self.endpoint.get_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(at, self._on_timer) if at is not None else None
            self._timer_at = at

    def _close_unused_sockets(self) -> None:
        if not self._tunnel_socks:
            return
        for tid in [t for t in self._tunnel_socks if t not in self.endpoint.tunnels]:
            s = self._tunnel_socks.pop(tid)
            self.loop.remove_reader(s.fileno())
            s.close()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for s in [self.sock, *self._tunnel_socks.values()]:
            if s is not self.sock or self._reading:
                try:
                    self.loop.remove_reader(s.fileno())
                except (ValueError, OSError):
                    pass
            s.close()
        self._tunnel_socks.clear()
