"""IPCP (RFC 1332) with the DNS/NBNS extensions of RFC 1877.

Server role (``remote_address`` set): the peer gets exactly that address; a request for 0.0.0.0 or
for another address is Nak'd with it, and a request without the option is Nak'd with it as a hint.
DNS/NBNS servers are handed out (Nak with the value) when configured and rejected when not.
Client role (``remote_address`` None): any non-zero address the peer asks for is acked; we ask for
``local_address`` (0.0.0.0 when None) and take what the server Naks; with ``request_dns`` we ask
for primary and secondary DNS and drop whichever the server rejects.
IP-Compression-Protocol (VJ) and the deprecated IP-Addresses option are rejected.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from secrets import token_bytes as urandom  # the CSPRNG; tests inject their own rng

from ..errors import DecodeError
from ..wire.ppp import Protocol
from .fsm import ControlProtocol, CpTimers, Rng
from .options import ACK, REJECT, Judgement, OptionSpec, OptionTable, nak, raw

ANY = IPv4Address(0)


class IpcpOption(enum.IntEnum):
    IP_ADDRESSES = 1  # RFC 1172 §5.1, deprecated (RFC 1332 §3.1)
    IP_COMPRESSION_PROTOCOL = 2  # RFC 1332 §3.2 (Van Jacobson)
    IP_ADDRESS = 3  # RFC 1332 §3.3
    PRIMARY_DNS = 129  # RFC 1877 §1.1
    PRIMARY_NBNS = 130  # RFC 1877 §1.2
    SECONDARY_DNS = 131  # RFC 1877 §1.3
    SECONDARY_NBNS = 132  # RFC 1877 §1.4


@dataclass(frozen=True, slots=True)
class IpcpConfig:
    local_address: IPv4Address | None = None  # ours; requested (0.0.0.0 when None)
    remote_address: IPv4Address | None = None  # server role: what the peer gets
    dns_servers: tuple[IPv4Address, ...] = ()  # server role: primary, secondary
    wins_servers: tuple[IPv4Address, ...] = ()  # server role: primary, secondary NBNS
    request_dns: bool = False  # client role: ask for primary and secondary DNS
    timers: CpTimers = field(default_factory=CpTimers)


@dataclass(frozen=True, slots=True)
class IpcpValues:
    address: IPv4Address | None  # ours, as acked by the peer
    peer_address: IPv4Address | None  # the peer's, as we acked it
    dns: tuple[IPv4Address, ...]  # DNS servers the peer gave us (client role)
    nbns: tuple[IPv4Address, ...]
    peer_dns: tuple[IPv4Address, ...]  # DNS servers we gave the peer (server role)
    peer_nbns: tuple[IPv4Address, ...]


def _decode_addr(data: bytes) -> IPv4Address:
    if len(data) != 4:
        raise DecodeError(f"IPv4 address of {len(data)} bytes", field="ip-address")
    return IPv4Address(bytes(data))


def _encode_addr(addr: IPv4Address) -> bytes:
    return addr.packed


def _address_request(ipcp: Ipcp) -> IPv4Address:
    return ipcp.config.local_address or ANY


def _address_judge(ipcp: Ipcp, value: IPv4Address) -> Judgement:
    remote = ipcp.config.remote_address
    if remote is not None:
        return ACK if value == remote else nak(remote)
    return REJECT if value == ANY else ACK


def _address_on_nak(ipcp: Ipcp, ours: IPv4Address | None, suggested: IPv4Address | None) -> IPv4Address | None:
    if ours is None:
        return None
    return suggested if suggested is not None and suggested != ANY else ours


def _address_hint(ipcp: Ipcp) -> IPv4Address | None:
    return ipcp.config.remote_address


def _server(kind: str, index: int) -> OptionSpec[IPv4Address]:
    """Primary (index 0) or secondary (1) DNS/NBNS: handed out by a server, asked for by a client."""

    def servers(ipcp: Ipcp) -> tuple[IPv4Address, ...]:
        return ipcp.config.dns_servers if kind == "dns" else ipcp.config.wins_servers

    def request(ipcp: Ipcp) -> IPv4Address | None:
        return ANY if kind == "dns" and ipcp.config.request_dns else None

    def judge(ipcp: Ipcp, value: IPv4Address) -> Judgement:
        configured = servers(ipcp)
        if index >= len(configured):
            return REJECT
        return ACK if value == configured[index] else nak(configured[index])

    def on_nak(ipcp: Ipcp, ours: IPv4Address | None, suggested: IPv4Address | None) -> IPv4Address | None:
        if ours is None:
            return None  # an unsolicited hint: we did not ask
        return suggested if suggested is not None else ours

    typ = {("dns", 0): IpcpOption.PRIMARY_DNS, ("dns", 1): IpcpOption.SECONDARY_DNS,
           ("nbns", 0): IpcpOption.PRIMARY_NBNS, ("nbns", 1): IpcpOption.SECONDARY_NBNS}[(kind, index)]
    name = f"{'Primary' if index == 0 else 'Secondary'}-{kind.upper()}"
    return OptionSpec(typ, name, _decode_addr, _encode_addr, request=request, judge=judge, on_nak=on_nak)


IPCP_OPTIONS = OptionTable(
    "IPCP",
    [
        OptionSpec(IpcpOption.IP_ADDRESS, "IP-Address", _decode_addr, _encode_addr, request=_address_request,
                   judge=_address_judge, on_nak=_address_on_nak, hint=_address_hint),
        _server("dns", 0),
        _server("nbns", 0),
        _server("dns", 1),
        _server("nbns", 1),
        OptionSpec(IpcpOption.IP_COMPRESSION_PROTOCOL, "IP-Compression-Protocol", raw, raw),
        OptionSpec(IpcpOption.IP_ADDRESSES, "IP-Addresses", raw, raw),
    ],
)


class Ipcp(ControlProtocol):
    """IPCP in either role (see the module docstring). ``values`` is an :class:`IpcpValues` once up."""

    protocol = Protocol.IPCP
    name = "IPCP"
    options = IPCP_OPTIONS

    def __init__(self, config: IpcpConfig | None = None, *, rng: Rng = urandom, first_identifier: int = 1):
        self.config = config or IpcpConfig()
        super().__init__(timers=self.config.timers, rng=rng, first_identifier=first_identifier)

    def _build_values(self) -> IpcpValues:
        o, ours, theirs = IpcpOption, self.ours, self.theirs

        def servers(d: dict, first: int, second: int) -> tuple[IPv4Address, ...]:
            return tuple(d[t] for t in (first, second) if t in d and d[t] != ANY)

        return IpcpValues(
            address=ours.get(o.IP_ADDRESS),
            peer_address=theirs.get(o.IP_ADDRESS),
            dns=servers(ours, o.PRIMARY_DNS, o.SECONDARY_DNS),
            nbns=servers(ours, o.PRIMARY_NBNS, o.SECONDARY_NBNS),
            peer_dns=servers(theirs, o.PRIMARY_DNS, o.SECONDARY_DNS),
            peer_nbns=servers(theirs, o.PRIMARY_NBNS, o.SECONDARY_NBNS),
        )
