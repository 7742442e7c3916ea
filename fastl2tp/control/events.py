"""Events the control plane hands to the runtime (typed, frozen)."""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.avp import ResultCode

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Event:
    tunnel_id: int


@dataclass(frozen=True, slots=True)
class TunnelUp(Event):
    peer_tunnel_id: int
    peer: Address
    peer_host_name: bytes
    peer_vendor: bytes


@dataclass(frozen=True, slots=True)
class TunnelDown(Event):
    """The tunnel is gone. ``result`` is what was sent or received in StopCCN (None: no StopCCN, e.g.
    the peer stopped answering); ``by_peer`` says who closed it."""

    reason: str
    result: ResultCode | None
    by_peer: bool


@dataclass(frozen=True, slots=True)
class SessionUp(Event):
    session_id: int
    peer_session_id: int
    peer: Address
    calling_number: bytes = b""
    called_number: bytes = b""
    sequencing_required: bool = False
    tx_connect_speed: int | None = None


@dataclass(frozen=True, slots=True)
class SessionDown(Event):
    session_id: int
    reason: str
    result: ResultCode | None
    by_peer: bool
    was_up: bool  # False: the call never came up (refused, or its tunnel failed first)


@dataclass(frozen=True, slots=True)
class SetLinkInfo(Event):
    """The LAC sent SLI: the PPP ACCMs to use on this session (meaningful for async framing only)."""

    session_id: int
    send_accm: int
    receive_accm: int


@dataclass(frozen=True, slots=True)
class WanErrorNotify(Event):
    session_id: int
    errors: tuple[int, ...]
