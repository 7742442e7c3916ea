"""RADIUS dynamic authorization (RFC 5176): Disconnect-Request and CoA-Request from the RADIUS servers.

``[radius-incoming] accept = yes`` opens a UDP socket on ``port`` (1700 as RouterOS; RFC 5176 says
3799). A request is believed only from the address of a configured ``[[radius]]`` server, signed with
that server's secret (Request Authenticator, and the Message-Authenticator when present); anything
else is dropped and counted. A retransmitted request (same source, identifier and authenticator
within 30 s) gets the same answer again without acting twice.

Sessions are identified by User-Name, Acct-Session-Id (``/ppp active`` session-id) and
Framed-IP-Address (all given must match). Disconnect ends them (Disconnect-ACK; NAK with
Session-Context-Not-Found when none matches); CoA changes their Session-Timeout, Idle-Timeout and
Mikrotik-Rate-Limit (CoA-ACK).
"""

from __future__ import annotations

import logging
import socket
from collections import OrderedDict
from ipaddress import ip_address
from typing import TYPE_CHECKING

from ..errors import DecodeError
from ..radius.packets import (
    DynAuthRequest,
    ErrorCause,
    encode_dynauth_reply,
    parse_dynauth_request,
)
from .driver import recv_burst

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)

__all__ = ["DynAuthServer"]

MAX_DATAGRAM = 4096
DUPLICATE_WINDOW_S = 30.0
MAX_REMEMBERED = 1024


class DynAuthServer:
    def __init__(self, node: Node, port: int) -> None:
        self.node = node
        self.port = port
        self.loop = node.loop
        self.stats = {"disconnect": 0, "coa": 0, "nak": 0, "duplicate": 0, "unknown_client": 0, "bad_request": 0}
        self._recent: OrderedDict[tuple[str, int, int, bytes], tuple[float, bytes]] = OrderedDict()
        self._socks: list[socket.socket] = []

    def start(self) -> None:
        """Listen on IPv4 and, where the host has it, IPv6. OSError if the port cannot be bound."""
        for family, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setblocking(False)
                sock.bind((any_addr, self.port))
            except OSError:
                sock.close()
                if family == socket.AF_INET:
                    self.close()
                    raise
                continue  # no IPv6 here: IPv4 alone is fine
            self._socks.append(sock)
            self.loop.add_reader(sock.fileno(), self._readable, sock)
        log.info("RADIUS incoming (Disconnect/CoA) on UDP port %d", self.port)

    def close(self) -> None:
        for sock in self._socks:
            try:
                self.loop.remove_reader(sock.fileno())
            except (ValueError, OSError):
                pass
            sock.close()
        self._socks.clear()

    def _secret_for(self, address: str) -> bytes | None:
        try:
            addr = ip_address(address.split("%")[0])
        except ValueError:
            return None
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        for r in self.node.config.radius:
            if not r.disabled and r.address == addr:
                return r.secret.encode()
        return None

    def _readable(self, sock: socket.socket) -> None:
        for data, addr in recv_burst(sock, MAX_DATAGRAM, "RADIUS incoming"):
            try:
                reply = self.handle(data, addr[0], addr[1])
            except Exception:  # noqa: BLE001 - one request's bug must not stop the listener
                log.exception("RADIUS incoming: internal error")
                continue
            if reply is not None:
                try:
                    sock.sendto(reply, addr)
                except OSError as exc:
                    log.debug("RADIUS incoming: send to %s failed: %s", addr[0], exc)

    def handle(self, data: bytes, host: str, port: int) -> bytes | None:
        """One datagram → the reply to send back, or None (dropped)."""
        secret = self._secret_for(host)
        if secret is None:
            self.stats["unknown_client"] += 1
            log.debug("RADIUS incoming: request from %s, which is no configured RADIUS server: dropped", host)
            return None
        try:
            req = parse_dynauth_request(data, secret)
        except DecodeError as exc:
            self.stats["bad_request"] += 1
            log.warning("RADIUS incoming: request from %s dropped: %s", host, exc)
            return None
        now = self.loop.time()
        key = (host, port, req.identifier, req.authenticator)
        self._expire(now)
        if key in self._recent:
            self.stats["duplicate"] += 1
            return self._recent[key][1]
        ack, cause = self._act(req)
        if not ack:
            self.stats["nak"] += 1
        reply = encode_dynauth_reply(req, secret, ack=ack, error_cause=cause)
        self._recent[key] = (now, reply)
        while len(self._recent) > MAX_REMEMBERED:
            self._recent.popitem(last=False)
        return reply

    def _expire(self, now: float) -> None:
        while self._recent:
            key, (at, _) = next(iter(self._recent.items()))
            if now - at < DUPLICATE_WINDOW_S:
                break
            del self._recent[key]

    def _act(self, req: DynAuthRequest) -> tuple[bool, ErrorCause | None]:
        node = self.node
        what = "Disconnect" if req.is_disconnect else "CoA"
        if req.nas_identifier is not None and req.nas_identifier != node.host_name:
            return False, ErrorCause.NAS_IDENTIFICATION_MISMATCH
        listen = node.config.l2tp_server.server.listen_address
        if req.nas_ip_address is not None and not listen.is_unspecified and req.nas_ip_address != listen:
            return False, ErrorCause.NAS_IDENTIFICATION_MISMATCH
        if req.user_name is None and req.acct_session_id is None and req.framed_ip_address is None:
            return False, ErrorCause.MISSING_ATTRIBUTE
        user = None if req.user_name is None else req.user_name.decode("utf-8", "replace")
        sessions = node.find_sessions(user=user, acct_session_id=req.acct_session_id,
                                      framed_ip=req.framed_ip_address)
        if not sessions:
            log.info("RADIUS %s-Request: no session of user=%s acct-session-id=%s address=%s", what, user,
                     req.acct_session_id, req.framed_ip_address)
            return False, ErrorCause.SESSION_CONTEXT_NOT_FOUND
        for s in sessions:
            if req.is_disconnect:
                self.stats["disconnect"] += 1
                s.log.info("RADIUS Disconnect-Request")
                node.disconnect(s.key, "RADIUS disconnect request")
            else:
                self.stats["coa"] += 1
                s.log.info("RADIUS CoA-Request")
                node.change_session(
                    s, session_timeout=None if req.session_timeout_s is None else float(req.session_timeout_s),
                    idle_timeout=None if req.idle_timeout_s is None else float(req.idle_timeout_s),
                    rate_limit=req.mikrotik_rate_limit)
        return True, None
