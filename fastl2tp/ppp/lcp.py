"""LCP (RFC 1661 §6, RFC 1570, RFC 1990 §5.1): the option table, the LCP machine, and keepalive.

Roles: in the server (authenticator) role ``LcpConfig.authenticate`` lists the methods we ask the
peer to authenticate with, in order (RouterOS default ``mschap1, mschap2``); a Configure-Nak moves
us to the method the peer suggests if we offer it, else to our next one; when every method has been
refused the layer finishes with a reason. In the client role ``LcpConfig.allow`` lists, in order of
preference, the methods we are willing to authenticate with: a request for one of them is acked,
anything else is Nak'd with our first choice (or rejected if we allow none).

Keepalive (RouterOS semantics) is :class:`Keepalive`, a small sans-IO piece the machine owns: when
nothing has been received for ``keepalive_timeout_s``, an Echo-Request goes out every
``echo_interval_s``; after ``echo_failures`` unanswered the link is declared down with reason
"keepalive timeout". Anything received counts as life (the link calls :meth:`Lcp.note_rx` for data
traffic as well).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from secrets import token_bytes as urandom  # the CSPRNG; tests inject their own rng
from typing import Any

from ..errors import DecodeError
from ..wire.auth import AuthMethod
from ..wire.ppp import (
    CP_HEADER_LEN,
    DEFAULT_MRU,
    Code,
    CpPacket,
    MagicData,
    Protocol,
    ProtocolRejectBody,
    encode_magic_data,
    encode_protocol_reject,
)
from .fsm import ControlProtocol, CpTimers, Event, Rng, State
from .options import (
    ACK,
    REJECT,
    Judgement,
    NegotiationFailed,
    OptionSpec,
    OptionTable,
    flag,
    nak,
    raw,
    uint,
)


class LcpOption(enum.IntEnum):
    """LCP configuration option types (IANA "PPP LCP Configuration Option Types")."""

    MRU = 1  # RFC 1661 §6.1
    ACCM = 2  # RFC 1662 §7.1
    AUTH_PROTOCOL = 3  # RFC 1661 §6.2
    QUALITY_PROTOCOL = 4  # RFC 1661 §6.3
    MAGIC_NUMBER = 5  # RFC 1661 §6.4
    PFC = 7  # RFC 1661 §6.5
    ACFC = 8  # RFC 1661 §6.6
    CALLBACK = 13  # RFC 1570 §2.3
    MRRU = 17  # RFC 1990 §5.1.1
    SSNH = 18  # RFC 1990 §5.1.2 Short Sequence Number Header Format
    ENDPOINT_DISCRIMINATOR = 19  # RFC 1990 §5.1.3


MIN_MRU = 64  # smallest MRU we accept or Nak to (RFC 1661 §6.1 only requires 1500 by default)
MAGIC_LOOP_LIMIT = 5  # Configure-Requests carrying our own magic before we call it a loop (§6.4)

KEEPALIVE_REASON = "keepalive timeout"


@dataclass(frozen=True, slots=True)
class LcpConfig:
    """What we want from LCP. Names follow RouterOS where it has them."""

    mru: int = 1450  # max-mru: what we can receive; requested when it differs from 1500
    max_mtu: int = 1450  # max-mtu: the largest packet we send; bigger peer MRUs are Nak'd to it
    authenticate: tuple[AuthMethod, ...] = ()  # server role: methods we require, in order
    allow: tuple[AuthMethod, ...] = (AuthMethod.MSCHAP2, AuthMethod.MSCHAP1, AuthMethod.CHAP, AuthMethod.PAP)
    magic: bool = True  # request a Magic-Number (loop detection, echo)
    mrru: int | None = None  # multilink: our MRRU; None rejects MRRU, SSNH and endpoint discriminator
    short_seq: bool = False  # multilink: request the short sequence number header
    endpoint: bytes | None = None  # multilink: our endpoint discriminator (class octet + address)
    keepalive_timeout_s: float | None = 30.0  # None disables keepalive
    echo_interval_s: float = 1.0
    echo_failures: int = 5
    timers: CpTimers = field(default_factory=CpTimers)


@dataclass(frozen=True, slots=True)
class LcpValues:
    """What LCP negotiated. ``peer_*`` are the options the peer asked for (about what it receives
    or how it wants to be treated); the others are ours, as the peer acked them."""

    mru: int  # the peer may send us frames up to this size
    peer_mru: int  # the peer's MRU; the link sends at most min(peer_mru, max_mtu)
    auth: AuthMethod | None  # server role: the method by which we authenticate the peer
    peer_auth: AuthMethod | None  # client role: the method by which the peer authenticates us
    magic: int  # ours (0 when not negotiated)
    peer_magic: int
    peer_accm: int | None
    peer_pfc: bool  # we may compress the protocol field towards the peer
    peer_acfc: bool  # we may omit FF 03 towards the peer
    mrru: int | None
    peer_mrru: int | None
    short_seq: bool
    peer_short_seq: bool
    endpoint: bytes | None
    peer_endpoint: bytes | None


# --- option hooks (ctx is the Lcp instance) ------------------------------------------------------


def _mru_request(lcp: Lcp) -> int | None:
    return lcp.config.mru if lcp.config.mru != DEFAULT_MRU else None


def _mru_judge(lcp: Lcp, value: int) -> Judgement:
    if value < MIN_MRU:
        return nak(MIN_MRU)
    if value > lcp.config.max_mtu:
        return nak(lcp.config.max_mtu)
    return ACK


def _mru_on_nak(lcp: Lcp, ours: int | None, suggested: int | None) -> int | None:
    if ours is None:
        return None
    if suggested is not None and MIN_MRU <= suggested <= lcp.config.mru:
        return suggested
    return ours  # keep asking; past Max-Failure the Nak is treated as a Reject


def _auth_decode(data: bytes) -> bytes:
    if len(data) < 2:
        raise DecodeError("authentication-protocol shorter than 2 bytes", field="auth-protocol")
    return bytes(data)


def _auth_request(lcp: Lcp) -> bytes | None:
    for method in lcp.config.authenticate:
        if method not in lcp._auth_refused:
            return method.lcp_data
    return None


def _auth_judge(lcp: Lcp, value: bytes) -> Judgement:
    method = AuthMethod.from_lcp_data(value)
    if method is not None and method in lcp.config.allow:
        return ACK
    if lcp.config.allow:
        return nak(lcp.config.allow[0].lcp_data)
    return REJECT


def _auth_next(lcp: Lcp, refused: bytes, preferred: AuthMethod | None, why: str) -> bytes:
    method = AuthMethod.from_lcp_data(refused)
    if method is not None:
        lcp._auth_refused.add(method)
    if preferred is not None and preferred in lcp.config.authenticate and preferred not in lcp._auth_refused:
        return preferred.lcp_data
    nxt = _auth_request(lcp)
    if nxt is None:
        offered = ", ".join(m.value for m in lcp.config.authenticate)
        raise NegotiationFailed(f"no common authentication method ({why}; we offer {offered})")
    return nxt


def _auth_on_nak(lcp: Lcp, ours: bytes | None, suggested: bytes | None) -> bytes | None:
    if ours is None:
        return None
    wanted = AuthMethod.from_lcp_data(suggested) if suggested is not None else None
    name = wanted.value if wanted else (f"0x{suggested.hex()}" if suggested else "nothing we know")
    return _auth_next(lcp, ours, wanted, f"peer wants {name}")


def _auth_on_reject(lcp: Lcp, ours: bytes) -> bytes | None:
    return _auth_next(lcp, ours, None, "peer refuses to authenticate")


_magic_codec = uint(4, "magic-number")


def _magic_request(lcp: Lcp) -> int | None:
    return lcp._new_magic() if lcp.config.magic else None


def _magic_judge(lcp: Lcp, value: int) -> Judgement:
    ours = lcp._want.get(LcpOption.MAGIC_NUMBER)
    if value == 0:  # RFC 1661 §6.4: zero MUST be Nak'd if not rejected
        return nak(lcp._new_magic(avoid=ours))
    if ours is not None and value == ours:
        lcp._magic_loops += 1
        if lcp._magic_loops >= MAGIC_LOOP_LIMIT:
            raise NegotiationFailed("loopback detected (peer keeps sending our magic number)")
        return nak(lcp._new_magic(avoid=ours))
    lcp._magic_loops = 0
    return ACK


def _magic_on_nak(lcp: Lcp, ours: int | None, suggested: int | None) -> int | None:
    if ours is None:
        return None
    return lcp._new_magic(avoid=ours)  # RFC 1661 §6.4: choose a new one


def _mp_judge(lcp: Lcp, value: Any) -> Judgement:
    return ACK if lcp.config.mrru is not None else REJECT


def _mrru_judge(lcp: Lcp, value: int) -> Judgement:
    if lcp.config.mrru is None:
        return REJECT
    return ACK if value >= MIN_MRU else nak(lcp.config.mrru)


def _endpoint_decode(data: bytes) -> bytes:
    if len(data) < 1:
        raise DecodeError("endpoint discriminator without class", field="endpoint-discriminator")
    return bytes(data)


_u16 = uint(2, "mru")
_u32 = uint(4, "accm")
_pfc = flag("pfc")
_acfc = flag("acfc")
_ssnh = flag("short-sequence")
_mrru = uint(2, "mrru")

LCP_OPTIONS = OptionTable(
    "LCP",
    [
        OptionSpec(LcpOption.MRU, "MRU", _u16[0], _u16[1], request=_mru_request, judge=_mru_judge,
                   on_nak=_mru_on_nak),
        OptionSpec(LcpOption.ACCM, "ACCM", _u32[0], _u32[1], judge=lambda lcp, v: ACK),
        OptionSpec(LcpOption.AUTH_PROTOCOL, "Authentication-Protocol", _auth_decode, raw, request=_auth_request,
                   judge=_auth_judge, on_nak=_auth_on_nak, on_reject=_auth_on_reject),
        OptionSpec(LcpOption.MAGIC_NUMBER, "Magic-Number", _magic_codec[0], _magic_codec[1], request=_magic_request,
                   judge=_magic_judge, on_nak=_magic_on_nak),
        OptionSpec(LcpOption.PFC, "Protocol-Field-Compression", _pfc[0], _pfc[1], judge=lambda lcp, v: ACK),
        OptionSpec(LcpOption.ACFC, "Address-and-Control-Field-Compression", _acfc[0], _acfc[1],
                   judge=lambda lcp, v: ACK),
        OptionSpec(LcpOption.MRRU, "MRRU", _mrru[0], _mrru[1], request=lambda lcp: lcp.config.mrru,
                   judge=_mrru_judge),
        OptionSpec(LcpOption.SSNH, "Short-Sequence-Number-Header", _ssnh[0], _ssnh[1],
                   request=lambda lcp: True if lcp.config.mrru is not None and lcp.config.short_seq else None,
                   judge=_mp_judge),
        OptionSpec(LcpOption.ENDPOINT_DISCRIMINATOR, "Endpoint-Discriminator", _endpoint_decode, raw,
                   request=lambda lcp: lcp.config.endpoint if lcp.config.mrru is not None else None,
                   judge=_mp_judge),
    ],
)


# --- keepalive -----------------------------------------------------------------------------------


class KeepaliveAction(enum.Enum):
    NONE = "none"
    SEND_ECHO = "send-echo"
    DEAD = "dead"


class Keepalive:
    """RouterOS-style keepalive, sans-IO.

    Idle (nothing received for ``timeout_s``) -> an Echo-Request at once and then every
    ``interval_s``; when ``max_unanswered`` have gone out and ``interval_s`` more has passed with
    nothing received, :meth:`handle_timer` returns DEAD. ``timeout_s=None`` disables it.
    """

    def __init__(self, timeout_s: float | None, interval_s: float = 1.0, max_unanswered: int = 5):
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.max_unanswered = max_unanswered
        self.running = False
        self.last_rx = 0.0
        self.sent = 0  # echoes sent since the last packet received
        self.last_echo = 0.0

    def start(self, now: float) -> None:
        if self.timeout_s is None:
            return
        self.running = True
        self.last_rx = now
        self.sent = 0

    def stop(self) -> None:
        self.running = False

    def note_rx(self, now: float) -> None:
        self.last_rx = max(self.last_rx, now)

    def _idle(self) -> bool:
        return self.sent == 0 or self.last_rx >= self.last_echo

    def get_timer(self) -> float | None:
        if not self.running or self.timeout_s is None:
            return None
        if self._idle():
            return self.last_rx + self.timeout_s
        return self.last_echo + self.interval_s

    def handle_timer(self, now: float) -> KeepaliveAction:
        if not self.running or self.timeout_s is None:
            return KeepaliveAction.NONE
        if self.sent and self.last_rx >= self.last_echo:
            self.sent = 0  # the peer is alive again
        if self.sent == 0:
            if now < self.last_rx + self.timeout_s:
                return KeepaliveAction.NONE
        elif now < self.last_echo + self.interval_s:
            return KeepaliveAction.NONE
        if self.sent >= self.max_unanswered:
            self.running = False
            return KeepaliveAction.DEAD
        self.sent += 1
        self.last_echo = now
        return KeepaliveAction.SEND_ECHO


# --- the LCP machine -----------------------------------------------------------------------------


class Lcp(ControlProtocol):
    """LCP in either role (see the module docstring). ``values`` is an :class:`LcpValues` once up."""

    protocol = Protocol.LCP
    name = "LCP"
    options = LCP_OPTIONS
    lcp_codes = True

    def __init__(self, config: LcpConfig | None = None, *, rng: Rng = urandom, first_identifier: int = 1):
        self.config = config or LcpConfig()
        super().__init__(timers=self.config.timers, rng=rng, first_identifier=first_identifier)
        self.keepalive = Keepalive(self.config.keepalive_timeout_s, self.config.echo_interval_s,
                                   self.config.echo_failures)
        self._auth_refused: set[AuthMethod] = set()
        self._magic_loops = 0
        self.peer_identification: bytes | None = None

    # public API beyond ControlProtocol

    def note_rx(self, now: float) -> None:
        """Something (any PPP frame, data included) was received from the peer."""
        self.keepalive.note_rx(now)

    def get_timer(self) -> float | None:
        timers = [t for t in (super().get_timer(), self.keepalive.get_timer()) if t is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        action = self.keepalive.handle_timer(now)
        if action is KeepaliveAction.SEND_ECHO:
            self.send_echo_request(now)
        elif action is KeepaliveAction.DEAD:
            self._fire(Event.DOWN, now, KEEPALIVE_REASON)
            self._fire(Event.CLOSE, now, KEEPALIVE_REASON)

    def send_echo_request(self, now: float, data: bytes = b"") -> None:
        """An Echo-Request with our magic number (only in the Opened state, RFC 1661 §5.8)."""
        if self.state is not State.OPENED:
            return
        body = encode_magic_data(MagicData(self._echo_magic(), data))[: max(0, self.peer_mru - CP_HEADER_LEN)]
        self._send(CpPacket(Code.ECHO_REQUEST, self._new_id(), body))

    def send_protocol_reject(self, protocol: int, packet: bytes, now: float) -> None:
        """Protocol-Reject a frame of an unknown ``protocol`` (``packet`` is its information field),
        truncated to the peer's MRU. Only sent in the Opened state (RFC 1661 §5.7)."""
        if self.state is not State.OPENED:
            self._count("protocol_reject_not_opened")
            return
        body = encode_protocol_reject(ProtocolRejectBody(protocol, bytes(packet)))
        body = body[: max(0, self.peer_mru - CP_HEADER_LEN)]
        self._send(CpPacket(Code.PROTOCOL_REJECT, self._new_id(), body))

    # hooks

    def _reset_negotiation(self) -> None:
        self._auth_refused = set()
        self._magic_loops = 0

    def _new_magic(self, avoid: int | None = None) -> int:
        while True:
            magic = int.from_bytes(self.rng(4), "big")
            if magic != 0 and magic != avoid:
                return magic

    def _echo_magic(self) -> int:
        return self.ours.get(LcpOption.MAGIC_NUMBER, 0) if self.values is not None else 0

    def _note_rx(self, now: float) -> None:
        self.keepalive.note_rx(now)

    def _rcv_silently_accepted(self, packet: CpPacket, now: float) -> None:
        super()._rcv_silently_accepted(packet, now)
        if packet.code == Code.IDENTIFICATION and len(packet.data) >= 4:
            self.peer_identification = packet.data[4:]

    def _on_up(self, now: float) -> None:
        values: LcpValues = self.values
        self.peer_mru = min(values.peer_mru, self.config.max_mtu)
        self.keepalive.start(now)

    def _on_down(self, now: float) -> None:
        self.keepalive.stop()
        self.peer_mru = DEFAULT_MRU

    def _on_finished(self, now: float) -> None:
        self.keepalive.stop()

    def _build_values(self) -> LcpValues:
        ours, theirs = self.ours, self.theirs
        o = LcpOption

        def method(data: bytes | None) -> AuthMethod | None:
            return AuthMethod.from_lcp_data(data) if data is not None else None

        return LcpValues(
            mru=ours.get(o.MRU, DEFAULT_MRU),
            peer_mru=theirs.get(o.MRU, DEFAULT_MRU),
            auth=method(ours.get(o.AUTH_PROTOCOL)),
            peer_auth=method(theirs.get(o.AUTH_PROTOCOL)),
            magic=ours.get(o.MAGIC_NUMBER, 0),
            peer_magic=theirs.get(o.MAGIC_NUMBER, 0),
            peer_accm=theirs.get(o.ACCM),
            peer_pfc=bool(theirs.get(o.PFC, False)),
            peer_acfc=bool(theirs.get(o.ACFC, False)),
            mrru=ours.get(o.MRRU),
            peer_mrru=theirs.get(o.MRRU),
            short_seq=bool(ours.get(o.SSNH, False)),
            peer_short_seq=bool(theirs.get(o.SSNH, False)),
            endpoint=ours.get(o.ENDPOINT_DISCRIMINATOR),
            peer_endpoint=theirs.get(o.ENDPOINT_DISCRIMINATOR),
        )
