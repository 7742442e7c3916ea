"""CCP (RFC 1962) with the one compression option we speak: MPPE (RFC 3078 §2, CCP option 18).

The MPPE option carries four octets of "supported bits"::

    H (0x01000000) stateless      M (0x80) 56-bit     S (0x40) 128-bit
    L (0x20) 40-bit               D (0x10) obsolete   C (0x01) MPPC compression

Negotiation (both roles; MPPE is symmetric in what is negotiated, so we steer both directions to
the same single strength and mode):

- Our Configure-Request offers every strength we allow (``allow_40``/``allow_56``/``allow_128``)
  and H unless ``prefer_stateful``. A Nak narrows it to the strongest strength of the suggestion we
  allow; a Nak we cannot follow or a Configure-Reject of MPPE fails the layer with a reason (the link
  then decides: go on unencrypted or terminate).
- Mode: stateless wins unless the peer insists on stateful. ``prefer_stateful`` is only a preference:
  it yields at once to a peer asking for stateless (in its request or a Nak). Preferring stateless,
  we take stateful (with ``allow_stateful``) when the peer insists: it asks for stateful again after
  our Nak, or Naks our stateless request twice.
- The peer's request is acked only if it names exactly one strength we allow, no C/D/unknown bit,
  and the mode we settled on; otherwise it is Nak'd with exactly that: the strongest common strength
  (or the one already agreed on our side) and the mode (above); whatever we ack, we ask for
  ourselves too. A request without MPPE is Nak'd
  with our offer as a hint (RFC 1661 §5.3), until Max-Failure.
- Every other CCP option is Configure-Rejected (the machine rejects options it has no spec for).
- LayerUp's ``values`` is :class:`CcpValues`: what each direction uses. ``agreed`` is the common
  :class:`MppeMode` when both directions use the same MPPE, else None (the link treats that as a
  refusal).

Reset-Request/Reset-Ack (codes 14/15, RFC 1962 §2.1; in MPPE only stateful mode needs them, RFC 3078
§8): a Reset-Request from the peer (in Opened) is answered with a Reset-Ack at once and surfaces as
:class:`ResetRequested`: the data plane must flush (change key, set the A bit on its next packet).
Our data plane asks for a reset with :meth:`Ccp.send_reset_request` (at most one outstanding per
``reset_timeout_s``); the peer's matching Reset-Ack surfaces as :class:`ResetAcked`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from secrets import token_bytes as urandom  # the CSPRNG; tests inject their own rng

from ..errors import DecodeError
from ..wire.ppp import Code, CpPacket, Protocol, decode_options
from .fsm import ControlProtocol, CpTimers, PppEvent, Rng, State
from .options import ACK, Judgement, NegotiationFailed, OptionSpec, OptionTable, nak

__all__ = [
    "CCP_OPTIONS",
    "Ccp",
    "CcpConfig",
    "CcpOption",
    "CcpValues",
    "Encryption",
    "MppeBit",
    "MppeMode",
    "ResetAcked",
    "ResetRequested",
    "decode_mppe",
    "describe_mppe",
    "encode_mppe",
    "mppe_bits",
]


class Encryption(enum.Enum):
    """The profile's ``use-encryption`` as the link applies it (RouterOS semantics; ``default`` is
    resolved by the configuration before it gets here)."""

    NO = "no"  # CCP is Protocol-Rejected
    YES = "yes"  # offer MPPE; without it the link goes on unencrypted
    REQUIRED = "required"  # MPPE or the link terminates


class CcpOption(enum.IntEnum):
    """CCP option types we name (RFC 1962 §4, the IANA registry); all but MPPE are rejected."""

    OUI = 0
    PREDICTOR_1 = 1
    PREDICTOR_2 = 2
    PUDDLE_JUMPER = 3
    HP_PPC = 16
    STAC_LZS = 17
    MPPE = 18  # RFC 3078 §2 (Microsoft PPC/PPE)
    GANDALF_FZA = 19
    V42BIS = 20
    BSD_COMPRESS = 21
    LZS_DCP = 23
    MVRCA = 24
    DEFLATE = 26


class MppeBit(enum.IntFlag):
    """Supported bits of the MPPE option (RFC 3078 §2)."""

    C = 0x00000001  # MPPC compression: always refused
    D = 0x00000010  # obsolete
    L = 0x00000020  # 40-bit
    S = 0x00000040  # 128-bit
    M = 0x00000080  # 56-bit
    H = 0x01000000  # stateless mode


STRENGTH_BITS = {128: MppeBit.S, 56: MppeBit.M, 40: MppeBit.L}  # strongest first
_STRENGTHS = MppeBit.L | MppeBit.S | MppeBit.M
_KNOWN = _STRENGTHS | MppeBit.C | MppeBit.D | MppeBit.H


def decode_mppe(data: bytes) -> int:
    if len(data) != 4:
        raise DecodeError(f"MPPE option: {len(data)} octets, expected 4", field="mppe")
    return int.from_bytes(data, "big")


def encode_mppe(bits: int) -> bytes:
    return int(bits).to_bytes(4, "big")


def mppe_bits(strength: int, stateless: bool) -> int:
    """The supported bits naming one strength (40/56/128) and a mode."""
    return int(STRENGTH_BITS[strength]) | (int(MppeBit.H) if stateless else 0)


def strengths_of(bits: int) -> tuple[int, ...]:
    """Key strengths named by ``bits``, strongest first."""
    return tuple(k for k, b in STRENGTH_BITS.items() if bits & b)


def describe_mppe(bits: int) -> str:
    """pppd-like: ``+H -M +S -L -D -C``, shortened to the bits that are set: ``MPPE 128 stateless``."""
    parts = [f"{k}-bit" for k in strengths_of(bits)] or ["no strength"]
    parts.append("stateless" if bits & MppeBit.H else "stateful")
    if bits & MppeBit.C:
        parts.append("MPPC")
    if bits & ~_KNOWN & 0xFFFFFFFF:
        parts.append(f"unknown bits 0x{bits & ~_KNOWN & 0xFFFFFFFF:08x}")
    return "MPPE " + " ".join(parts)


@dataclass(frozen=True, slots=True)
class MppeMode:
    """One direction's MPPE: key strength in bits (40, 56, 128) and stateless (H) or stateful."""

    bits: int
    stateless: bool

    def __str__(self) -> str:
        return f"MPPE{self.bits} {'stateless' if self.stateless else 'stateful'}"


@dataclass(frozen=True, slots=True)
class CcpValues:
    """What CCP settled. ``send``: what we send with (the peer's request, as we acked it); ``recv``:
    what the peer sends with (our request, as it acked it). None: no MPPE that way."""

    send: MppeMode | None
    recv: MppeMode | None

    @property
    def agreed(self) -> MppeMode | None:
        """The common mode when both directions use the same MPPE, else None."""
        return self.send if self.send is not None and self.send == self.recv else None

    @property
    def encoding(self) -> str:
        """RouterOS ``encoding``: ``MPPE128 stateless``; asymmetric ``send/recv``; empty without MPPE."""
        if self.send is None and self.recv is None:
            return ""
        if self.send == self.recv:
            return str(self.send)
        return f"{self.send or 'none'}/{self.recv or 'none'}"


@dataclass(frozen=True, slots=True)
class CcpConfig:
    """allow_*: the key strengths we accept (RouterOS does 40 and 128; 56 only on request).
    allow_stateful: take stateful mode when the peer insists. prefer_stateful: ask for stateful
    ourselves (pppd ``mppe-stateful``). reset_timeout_s: minimum spacing of our Reset-Requests."""

    allow_40: bool = True
    allow_56: bool = False
    allow_128: bool = True
    allow_stateful: bool = True
    prefer_stateful: bool = False
    reset_timeout_s: float = 1.0
    timers: CpTimers = field(default_factory=CpTimers)

    def __post_init__(self) -> None:
        if not (self.allow_40 or self.allow_56 or self.allow_128):
            raise ValueError("CcpConfig: no MPPE key strength allowed")
        if self.prefer_stateful and not self.allow_stateful:
            raise ValueError("CcpConfig: prefer_stateful needs allow_stateful")

    @property
    def allowed(self) -> int:
        return ((MppeBit.L if self.allow_40 else 0) | (MppeBit.M if self.allow_56 else 0)
                | (MppeBit.S if self.allow_128 else 0))


# --- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResetRequested(PppEvent):
    """The peer sent a CCP Reset-Request (already acked): flush the sending side (MPPE: change the key
    and set the A bit on the next packet)."""

    identifier: int


@dataclass(frozen=True, slots=True)
class ResetAcked(PppEvent):
    """The peer acked our Reset-Request."""

    identifier: int


# --- the MPPE option -------------------------------------------------------------------------------


def _mppe_request(ccp: Ccp) -> int:
    cfg = ccp.config
    return ccp.config.allowed | (0 if cfg.prefer_stateful else MppeBit.H)


def _strongest(bits: int) -> int | None:
    found = strengths_of(bits)
    return found[0] if found else None


def _mppe_judge(ccp: Ccp, bits: int) -> Judgement:
    cfg = ccp.config
    common = bits & cfg.allowed
    agreed = ccp.agreed_strength
    strength: int | None = agreed
    if agreed is None or not bits & STRENGTH_BITS[agreed]:
        strength = _strongest(common) or agreed or _strongest(cfg.allowed)
    assert strength is not None
    stateless = ccp.mode_for_peer(bool(bits & MppeBit.H))
    target = mppe_bits(strength, stateless)
    if bits == target:
        ccp.agreed_strength = strength
        ccp.peer_mode_accepted(stateless)
        return ACK
    return nak(target)


def _mppe_on_nak(ccp: Ccp, ours: int | None, suggested: int | None) -> int | None:
    if ours is None:
        return None  # a suggestion for MPPE we did not ask for: we always ask, so never
    if suggested is None:
        return ours
    cfg = ccp.config
    strength = _strongest(suggested & cfg.allowed)
    if strength is None:
        raise NegotiationFailed(f"CCP: no common MPPE key length: the peer wants {describe_mppe(suggested)}, "
                                f"we allow {describe_mppe(cfg.allowed | MppeBit.H)}")
    ccp.agreed_strength = strength
    ccp.stateless = ccp.mode_from_nak(bool(suggested & MppeBit.H))
    return mppe_bits(strength, ccp.stateless)


def _mppe_on_reject(ccp: Ccp, ours: int) -> int | None:
    raise NegotiationFailed("CCP: the peer rejected MPPE")


def _mppe_hint(ccp: Ccp) -> int | None:
    return ccp.current_offer()


CCP_OPTIONS = OptionTable(
    "CCP",
    [
        OptionSpec(CcpOption.MPPE, "MPPE", decode_mppe, encode_mppe, request=_mppe_request, judge=_mppe_judge,
                   on_nak=_mppe_on_nak, on_reject=_mppe_on_reject, hint=_mppe_hint),
    ],
)


class Ccp(ControlProtocol):
    """CCP with MPPE in either role (see the module docstring). ``values`` is :class:`CcpValues` once up.

    Negotiation state visible to the hooks: ``agreed_strength`` (the strength both directions are
    steered to, once known) and ``stateless`` (the mode we ask for)."""

    protocol = Protocol.CCP
    name = "CCP"
    options = CCP_OPTIONS

    def __init__(self, config: CcpConfig | None = None, *, rng: Rng = urandom, first_identifier: int = 1):
        self.config = config or CcpConfig()
        super().__init__(timers=self.config.timers, rng=rng, first_identifier=first_identifier)
        self.agreed_strength: int | None = None
        self.stateless = not self.config.prefer_stateful
        self._mode_naked = False  # we Nak'd the peer's stateful request once (it may insist)
        self._stateful_naks = 0  # the peer Nak'd our stateless request to stateful
        self._reset_id: int | None = None
        self._reset_sent_at: float | None = None
        self._handlers[Code.RESET_REQUEST] = self._rcv_reset_request
        self._handlers[Code.RESET_ACK] = self._rcv_reset_ack

    # --- commands --------------------------------------------------------------------------------

    def send_reset_request(self, now: float) -> bool:
        """Ask the peer to flush its compressor (MPPE stateful: after a loss). Only while Opened, and at
        most one outstanding Reset-Request per ``reset_timeout_s``; True if one was sent."""
        if self.state is not State.OPENED:
            self._count("reset_request_not_opened")
            return False
        if self._reset_sent_at is not None and now - self._reset_sent_at < self.config.reset_timeout_s:
            self._count("reset_request_suppressed")
            return False
        self._reset_id = self._new_id()
        self._reset_sent_at = now
        self._send(CpPacket(Code.RESET_REQUEST, self._reset_id))
        return True

    # --- hooks used by the option spec -----------------------------------------------------------

    def current_offer(self) -> int:
        """What we ask for now (the hint for a peer request without MPPE)."""
        want = self._want.get(CcpOption.MPPE)
        if want is not None and self.agreed_strength is None:
            return want
        strength = self.agreed_strength or _strongest(self.config.allowed)
        assert strength is not None
        return mppe_bits(strength, self.stateless)

    def mode_for_peer(self, peer_stateless: bool) -> bool:
        """The mode to answer a peer request with. Stateless wins a conflict unless the peer insists on
        stateful: a stateful preference of ours yields at once to a peer asking for stateless; a
        peer asking for stateful is Nak'd once and taken when it asks again (with ``allow_stateful``)."""
        if peer_stateless == self.stateless:
            return peer_stateless
        if peer_stateless:
            self._follow(True)  # our stateful wish was only a preference
            return True
        if not self.config.allow_stateful:
            return True
        if self._mode_naked or self._stateful_naks:
            return False  # it insists
        self._mode_naked = True
        return True

    def mode_from_nak(self, suggested_stateless: bool) -> bool:
        """The mode to ask for after the peer Nak'd us with ``suggested_stateless``: stateless at once;
        stateful only when the peer insists (its second such Nak, or it also asked for stateful)."""
        if suggested_stateless or not self.stateless:
            return suggested_stateless
        if not self.config.allow_stateful:
            raise NegotiationFailed("CCP: the peer insists on stateful MPPE, which is not allowed")
        self._stateful_naks += 1
        return not (self._stateful_naks >= 2 or self._mode_naked)

    def _follow(self, stateless: bool) -> None:
        self.stateless = stateless
        want = self._want.get(CcpOption.MPPE)
        if want is not None:
            self._want[CcpOption.MPPE] = (want & ~MppeBit.H) | (MppeBit.H if stateless else 0)

    def peer_mode_accepted(self, stateless: bool) -> None:
        """We acked the peer's request with this mode: ask for the same from now on."""
        if stateless != self.stateless:
            self._follow(stateless)

    # --- ControlProtocol hooks -------------------------------------------------------------------

    def _reset_negotiation(self) -> None:
        self.agreed_strength = None
        self.stateless = not self.config.prefer_stateful
        self._mode_naked = False
        self._stateful_naks = 0

    def _build_values(self) -> CcpValues:
        send = _mode(self.theirs.get(CcpOption.MPPE), None)
        # What the peer acked is the request as sent (the machine only accepts an Ack equal to it).
        try:
            acked = {o.type: o.data for o in decode_options(self._req_data)}
        except DecodeError:  # pragma: no cover - we encoded it
            acked = {}
        raw = acked.get(CcpOption.MPPE)
        recv = _mode(decode_mppe(raw) if raw is not None and len(raw) == 4 else None,
                     send.bits if send is not None else None)
        return CcpValues(send=send, recv=recv)

    def _on_up(self, now: float) -> None:
        self._reset_id = self._reset_sent_at = None

    def _on_down(self, now: float) -> None:
        self._reset_id = self._reset_sent_at = None

    # --- Reset-Request / Reset-Ack ---------------------------------------------------------------

    def _rcv_reset_request(self, packet: CpPacket, now: float) -> None:
        if self.state is not State.OPENED:
            self._count("reset_request_not_opened")  # RFC 1962 §2.1: only meaningful when Opened
            return
        self._send(CpPacket(Code.RESET_ACK, packet.identifier))
        self._events.append(ResetRequested(self.protocol, packet.identifier))

    def _rcv_reset_ack(self, packet: CpPacket, now: float) -> None:
        if self.state is not State.OPENED or packet.identifier != self._reset_id:
            self._count("stale_reset_ack")
            return
        self._reset_id = self._reset_sent_at = None
        self._events.append(ResetAcked(self.protocol, packet.identifier))


def _mode(bits: int | None, prefer: int | None) -> MppeMode | None:
    """The MPPE mode ``bits`` select; with several strengths (a peer that acked our whole offer), the
    one the other direction uses if present, else the strongest."""
    if bits is None:
        return None
    found = strengths_of(bits)
    if not found:
        return None
    strength = prefer if prefer in found else found[0]
    return MppeMode(strength, bool(bits & MppeBit.H))
