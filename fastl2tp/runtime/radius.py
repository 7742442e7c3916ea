"""RADIUS on the event loop: the sockets, the timer and the futures around the sans-IO ``RadiusClient``.

One UDP socket per (address family, ``src-address``) talks to every configured server; the client
machine decides what goes where and when (retransmission, failover). A login waits on a future, so a
slow or dead RADIUS server delays only the logins that need it: other sessions' negotiation and all
traffic go on. Accounting is fire-and-forget (failures are logged, never block a login).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from ipaddress import ip_address

from ..config import model as cfg
from ..radius.client import (
    AccountingDone,
    AccountingFailed,
    AuthDone,
    AuthFailed,
    RadiusClient,
    RadiusServer,
)
from ..radius.packets import AccessRequest, AccessResult, AccountingRequest
from .driver import recv_burst

log = logging.getLogger(__name__)

__all__ = ["RadiusRuntime", "RadiusUnavailable", "servers_from_config"]

MAX_DATAGRAM = 4096  # RFC 2865 §3: a RADIUS packet is at most 4096 octets


class RadiusUnavailable(Exception):
    """No RADIUS server answered (every server tried, every retry spent)."""


def servers_from_config(config: cfg.Config) -> list[tuple[RadiusServer, str | None]]:
    """The enabled ``[[radius]]`` entries with service ppp, in order, with their src-address."""
    out = []
    for r in config.radius:
        if r.disabled or cfg.RadiusService.PPP not in r.service:
            continue
        server = RadiusServer(str(r.address), r.secret.encode(), auth_port=r.authentication_port,
                              acct_port=r.accounting_port, timeout_s=r.timeout,
                              require_message_authenticator=r.require_message_auth)
        out.append((server, None if r.src_address is None else str(r.src_address)))
    return out


class RadiusRuntime:
    def __init__(self, config: cfg.Config, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self._src: dict[str, str | None] = {}  # server address -> src-address
        self._socks: dict[tuple[int, str | None], socket.socket] = {}
        self._auth: dict[object, asyncio.Future[AccessResult]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.client = RadiusClient([])
        self.reconfigure(config)

    def reconfigure(self, config: cfg.Config) -> None:
        servers = servers_from_config(config)
        self._src = {srv.address: src for srv, src in servers}
        self.client.set_servers([srv for srv, _ in servers])

    @property
    def has_servers(self) -> bool:
        return bool(self._src)

    # --- commands --------------------------------------------------------------------------------

    async def authenticate(self, request: AccessRequest) -> AccessResult:
        """The server's answer (accepted or rejected); ``RadiusUnavailable`` when none answered."""
        if not self._src:
            raise RadiusUnavailable("no RADIUS server with service ppp is configured")
        fut: asyncio.Future[AccessResult] = self.loop.create_future()
        handle = self.client.authenticate(request, self.loop.time())
        self._auth[handle] = fut
        self._pump()
        try:
            return await fut
        except asyncio.CancelledError:  # the session went away: stop asking for it
            self._auth.pop(handle, None)
            self.client.cancel(handle, self.loop.time())
            raise

    def account(self, request: AccountingRequest) -> None:
        if not self._src:
            return
        self.client.account(request, self.loop.time())
        self._pump()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for sock in self._socks.values():
            try:
                self.loop.remove_reader(sock.fileno())
            except (ValueError, OSError):
                pass
            sock.close()
        self._socks.clear()
        for fut in self._auth.values():
            if not fut.done():
                fut.set_exception(RadiusUnavailable("daemon stopping"))
        self._auth.clear()

    # --- I/O -------------------------------------------------------------------------------------

    def _sock_for(self, address: str) -> socket.socket:
        family = socket.AF_INET6 if ip_address(address).version == 6 else socket.AF_INET
        src = self._src.get(address)
        key = (family, src)
        sock = self._socks.get(key)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.bind((src or ("::" if family == socket.AF_INET6 else "0.0.0.0"), 0))
            except OSError:
                sock.close()
                raise
            self._socks[key] = sock
            self.loop.add_reader(sock.fileno(), self._readable, sock)
        return sock

    def _readable(self, sock: socket.socket) -> None:
        for data, addr in recv_burst(sock, MAX_DATAGRAM, "RADIUS"):
            self.client.receive_datagram(data, (addr[0], addr[1]), self.loop.time())
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.client.handle_timer(self.loop.time())
        self._pump()

    def _pump(self) -> None:
        for address, port, data in self.client.datagrams_to_send():
            try:
                self._sock_for(address).sendto(data, (address, port))
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.ECONNREFUSED, errno.EHOSTUNREACH,
                                     errno.ENETUNREACH):
                    log.warning("RADIUS: send to %s:%d failed: %s", address, port, exc.strerror or exc)
        while (e := self.client.next_event()) is not None:
            if isinstance(e, AuthDone):
                fut = self._auth.pop(e.handle, None)
                if fut is not None and not fut.done():
                    fut.set_result(e.result)
            elif isinstance(e, AuthFailed):
                fut = self._auth.pop(e.handle, None)
                if fut is not None and not fut.done():
                    fut.set_exception(RadiusUnavailable(e.reason))
            elif isinstance(e, AccountingFailed):
                log.warning("RADIUS accounting request lost: %s", e.reason)
            elif isinstance(e, AccountingDone):
                pass
        at = self.client.get_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(at, self._on_timer) if at is not None else None
            self._timer_at = at
