"""What a PPP link (:class:`fastl2tp.ppp.link.PppLink`) tells the runtime: small, frozen, typed events.

Order on one link: ``AuthRequested`` (server role; answer with ``complete_auth``), ``AuthResult``,
``NetworkUp`` / ``Ipv6Up`` (each NCP as it opens), ``NetworkDown`` (an NCP left Opened while the link
stays up, e.g. the peer renegotiates IPCP), and exactly one ``LinkDown`` at the end.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from ..wire.auth import AuthMethod
from .auth import AuthDecision, VerifyRequest
from .ipcp import IpcpValues
from .ipv6cp import Ipv6cpValues


class Role(enum.Enum):
    """Our side of a link, or of one authentication: SERVER authenticates the peer (LNS, RouterOS
    ``authentication=``); CLIENT is authenticated by the peer (LAC, RouterOS ``allow=``)."""

    SERVER = "server"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """Base of the events a PPP link emits."""


@dataclass(frozen=True, slots=True)
class AuthRequested(LinkEvent):
    """Server role: verify these credentials (locally or by RADIUS) and answer
    ``PppLink.complete_auth(request.request_id, decision, now, ipcp=...)``."""

    request: VerifyRequest

    @property
    def request_id(self) -> int:
        return self.request.request_id

    @property
    def username(self) -> str:
        return self.request.username

    @property
    def method(self) -> AuthMethod:
        return self.request.method


@dataclass(frozen=True, slots=True)
class AuthResult(LinkEvent):
    """One authentication ended. ``role`` is our side of it (SERVER: we verified the peer).
    On success ``decision`` holds what was granted and the MPPE key material; on failure
    ``reason`` and (MS-CHAP) ``error_code`` say why. Never holds a password."""

    role: Role
    method: AuthMethod
    username: str
    succeeded: bool
    reason: str = ""
    error_code: int | None = None
    decision: AuthDecision | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class NetworkUp(LinkEvent):
    """IPCP is Opened. ``dns``/``nbns``: client role, the servers the peer gave us; server role, the
    ones we gave the peer. ``mtu``: the largest information field we send (the peer's MRU bounded by
    max-mtu); ``mru``: the largest the peer may send us."""

    local_address: IPv4Address | None
    peer_address: IPv4Address | None
    dns: tuple[IPv4Address, ...]
    nbns: tuple[IPv4Address, ...]
    mtu: int
    mru: int
    values: IpcpValues = field(repr=False)


@dataclass(frozen=True, slots=True)
class Ipv6Up(LinkEvent):
    """IPv6CP is Opened: the interface identifiers (RFC 5072 §4.1) of both ends."""

    interface_id: bytes | None
    peer_interface_id: bytes | None
    mtu: int
    mru: int
    values: Ipv6cpValues = field(repr=False)

    @property
    def link_local(self) -> IPv6Address | None:
        return self.values.link_local

    @property
    def peer_link_local(self) -> IPv6Address | None:
        return self.values.peer_link_local


@dataclass(frozen=True, slots=True)
class NetworkDown(LinkEvent):
    """An NCP (``protocol`` 0x8021 IPCP or 0x8057 IPv6CP) left Opened while the link stays up."""

    protocol: int
    reason: str


@dataclass(frozen=True, slots=True)
class LinkDown(LinkEvent):
    """The link is Dead; emitted exactly once. ``reason`` is the first cause, in words:
    "peer terminated LCP: …", "authentication failed: user ex: E=691 …", "keepalive timeout",
    "no common authentication method (…)", "encryption required but MPPE is not available yet",
    "administrative", …"""

    reason: str
