"""What a PPP link (:class:`fastl2tp.ppp.link.PppLink`) tells the runtime: small, frozen, typed events.

Order on one link: ``AuthRequested`` (server role; answer with ``complete_auth``), ``AuthResult``,
``NetworkUp`` / ``Ipv6Up`` (each NCP as it opens), ``NetworkDown`` (an NCP left Opened while the link
stays up, e.g. the peer renegotiates IPCP), and exactly one ``LinkDown`` at the end.

Encryption (MPPE over CCP, with ``use_encryption`` YES or REQUIRED) runs beside the NCPs in the Network
phase and settles with ``EncryptionUp`` (keys for the data plane) or ``EncryptionRefused`` (YES: the
link goes on unencrypted; REQUIRED never reports it: the link terminates). ``NetworkUp`` does not wait
for it: with REQUIRED the runtime must not pass IP until ``EncryptionUp`` (and again after an
``EncryptionDown``, until the next ``EncryptionUp``). ``EncryptionResetRequested`` /
``EncryptionResetAcked`` are CCP Reset-Request/Ack for a stateful MPPE data plane.

Bridging (``LinkConfig.bcp``): BCP runs instead of IPCP/IPv6CP and reports ``BridgeUp`` /
``BridgeDown``; the runtime makes the session a port of its bridge through a TAP device.

Multilink (both ends negotiated an MRRU): after authentication the link does not start its NCPs by
itself. It reports ``MultilinkUp`` (the peer's name and endpoint discriminator: what identifies its
bundle, RFC 1990 §5.1.3), and the runtime answers with ``PppLink.start_network`` (the first link of a
new bundle: it runs the bundle's NCPs) or ``PppLink.join_bundle`` (a further link of an existing
bundle: no NCPs of its own). When the link that runs a bundle's NCPs goes down while other links
remain, the runtime moves the NCPs to one of them (``PppLink.release_network`` / ``adopt_network``):
the bundle, its interface and its addresses stay up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from ..wire.auth import AuthMethod
from .auth import AuthDecision, VerifyRequest
from .bcp import BcpValues
from .ccp import CcpValues
from .ipcp import IpcpValues
from .ipv6cp import Ipv6cpValues
from .lcp import LcpValues
from .mppe import MppeKeys


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
    "no common authentication method (…)", "encryption required but the peer refused MPPE",
    "encryption required but MPPE needs MS-CHAPv1 or MS-CHAPv2 authentication", "administrative", …"""

    reason: str


@dataclass(frozen=True, slots=True)
class EncryptionUp(LinkEvent):
    """CCP opened with MPPE in both directions: hand ``keys`` to the data plane (from now on data goes
    as PPP protocol 0x00FD). ``encoding`` is RouterOS's: ``MPPE128 stateless``, ``MPPE40 stateful``."""

    keys: MppeKeys
    encoding: str
    values: CcpValues = field(repr=False)


@dataclass(frozen=True, slots=True)
class EncryptionRefused(LinkEvent):
    """``use-encryption=yes`` and no MPPE (the peer rejected CCP or MPPE, no common key length, no
    MS-CHAP keys ...): the link goes on unencrypted. ``reason`` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class EncryptionDown(LinkEvent):
    """CCP left Opened (the peer renegotiates or terminated it): stop encrypting/decrypting until the
    next ``EncryptionUp`` (with REQUIRED: stop passing IP)."""

    reason: str


@dataclass(frozen=True, slots=True)
class EncryptionResetRequested(LinkEvent):
    """The peer sent a CCP Reset-Request (already acked): the data plane flushes its sender (MPPE
    stateful: change the key and set the A bit on the next packet)."""


@dataclass(frozen=True, slots=True)
class EncryptionResetAcked(LinkEvent):
    """The peer acked our CCP Reset-Request (``PppLink.send_reset_request``)."""


@dataclass(frozen=True, slots=True)
class BridgeUp(LinkEvent):
    """BCP opened: Ethernet frames flow as bridged frames (PPP protocol 0x0031). ``mtu`` / ``mru`` are
    the link's, as for ``NetworkUp``."""

    mtu: int
    mru: int
    values: BcpValues = field(repr=False)


@dataclass(frozen=True, slots=True)
class BridgeDown(LinkEvent):
    """BCP left Opened while the link stays up (the peer renegotiates it)."""

    reason: str


@dataclass(frozen=True, slots=True)
class MultilinkUp(LinkEvent):
    """Authentication is done and both ends negotiated an MRRU (RFC 1990): the runtime decides which
    bundle this link belongs to (``peer_name``, ``peer_endpoint``) and answers ``start_network`` or
    ``join_bundle``. ``values`` are LCP's: MRRUs, header formats, the link's MTU."""

    peer_name: str
    peer_endpoint: bytes | None
    values: LcpValues = field(repr=False)
