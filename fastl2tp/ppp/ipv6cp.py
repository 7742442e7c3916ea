"""IPv6CP (RFC 5072): interface identifiers for link-local addresses.

Both sides propose a 64-bit Interface-Identifier (ours from the config, else random). A peer's zero
identifier, or one equal to ours, is Nak'd with a fresh random one (RFC 5072 §4.1); a Nak of ours
is followed if the suggestion is usable. IPv6-Compression-Protocol is rejected.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from secrets import token_bytes as urandom  # the CSPRNG; tests inject their own rng

from ..wire.ppp import Protocol
from .fsm import ControlProtocol, CpTimers, Rng
from .options import ACK, Judgement, OptionSpec, OptionTable, fixed, nak, raw

ZERO_ID = bytes(8)


class Ipv6cpOption(enum.IntEnum):
    INTERFACE_IDENTIFIER = 1  # RFC 5072 §4.1
    IPV6_COMPRESSION_PROTOCOL = 2  # RFC 5072 §4.2


@dataclass(frozen=True, slots=True)
class Ipv6cpConfig:
    interface_id: bytes | None = None  # 8 bytes; None picks a random one
    timers: CpTimers = field(default_factory=CpTimers)


@dataclass(frozen=True, slots=True)
class Ipv6cpValues:
    interface_id: bytes | None  # ours, as acked by the peer
    peer_interface_id: bytes | None

    @property
    def link_local(self) -> IPv6Address | None:
        return _link_local(self.interface_id)

    @property
    def peer_link_local(self) -> IPv6Address | None:
        return _link_local(self.peer_interface_id)


def _link_local(iid: bytes | None) -> IPv6Address | None:
    return IPv6Address(bytes.fromhex("fe80000000000000") + iid) if iid is not None else None


def _iid_request(cp: Ipv6cp) -> bytes:
    if cp.config.interface_id is not None and cp.config.interface_id != ZERO_ID:
        return cp.config.interface_id
    return cp._new_id_value()


def _iid_judge(cp: Ipv6cp, value: bytes) -> Judgement:
    ours = cp._want.get(Ipv6cpOption.INTERFACE_IDENTIFIER)
    if value == ZERO_ID or value == ours:
        return nak(cp._new_id_value(avoid=(ours, value)))
    return ACK


def _iid_on_nak(cp: Ipv6cp, ours: bytes | None, suggested: bytes | None) -> bytes | None:
    if ours is None:
        return None
    if suggested is not None and suggested != ZERO_ID and suggested != ours:
        return suggested
    return cp._new_id_value(avoid=(ours,))


IPV6CP_OPTIONS = OptionTable(
    "IPV6CP",
    [
        OptionSpec(Ipv6cpOption.INTERFACE_IDENTIFIER, "Interface-Identifier", fixed(8, "interface-identifier"), raw,
                   request=_iid_request, judge=_iid_judge, on_nak=_iid_on_nak),
        OptionSpec(Ipv6cpOption.IPV6_COMPRESSION_PROTOCOL, "IPv6-Compression-Protocol", raw, raw),
    ],
)


class Ipv6cp(ControlProtocol):
    """IPv6CP; ``values`` is an :class:`Ipv6cpValues` once up."""

    protocol = Protocol.IPV6CP
    name = "IPV6CP"
    options = IPV6CP_OPTIONS

    def __init__(self, config: Ipv6cpConfig | None = None, *, rng: Rng = urandom, first_identifier: int = 1):
        self.config = config or Ipv6cpConfig()
        super().__init__(timers=self.config.timers, rng=rng, first_identifier=first_identifier)

    def _new_id_value(self, avoid: tuple[bytes | None, ...] = ()) -> bytes:
        while True:
            iid = self.rng(8)
            if iid != ZERO_ID and iid not in avoid:
                return iid

    def _build_values(self) -> Ipv6cpValues:
        o = Ipv6cpOption.INTERFACE_IDENTIFIER
        return Ipv6cpValues(self.ours.get(o), self.theirs.get(o))
