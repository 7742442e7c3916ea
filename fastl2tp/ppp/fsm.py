"""The PPP option negotiation automaton (RFC 1661 §4), written once for every control protocol.

The rules are the RFC's state transition table (§4.1), kept below as data: ``TRANSITIONS`` maps
``(State, Event)`` to ``(actions, next State)``; a missing key is the table's "-" (an illegal
event), which is counted and ignored. :class:`ControlProtocol` turns packets, timer expiries and
administrative commands into those events and carries the actions out. LCP, IPCP, IPv6CP (and
later CCP, BCP) are subclasses that supply an option table (``ppp.options``) and a few hooks.

Sans-IO, after aioquic: inputs are ``receive(payload, now)``, ``handle_timer(now)`` and the commands
``open``, ``close``, ``lower_up``, ``lower_down``; outputs are ``take_output()`` (``(protocol,
packet)`` pairs for the link to frame and send), ``get_timer()`` and ``next_event()``. Time is
passed in; nothing here reads a clock or sleeps. Randomness comes from ``rng(n) -> bytes``.

Identifiers (RFC 1661 §5.1-5.4): a Configure-Ack/Nak/Reject is accepted only if its Identifier is
that of our last Configure-Request and that request has not been answered yet; anything else is
silently discarded (and counted). Retransmissions keep the Identifier; a changed request or one
sent after a reply gets a new one.

Footnotes of the table that we implement as "no extra action": ``r`` (restart option on Open),
``p`` (passive option on TO-) and ``x`` (crossed connection, handled by the listed actions).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from secrets import token_bytes as urandom  # the CSPRNG; tests inject their own rng
from typing import Any, ClassVar

from ..errors import DecodeError
from ..wire.ppp import (
    CP_HEADER_LEN,
    DEFAULT_MRU,
    Code,
    CpPacket,
    MagicData,
    Option,
    decode_cp,
    decode_magic_data,
    decode_options,
    decode_protocol_reject,
    encode_cp,
    encode_magic_data,
    encode_options,
)
from .options import NegotiationFailed, OptionTable, Verdict

logger = logging.getLogger(__name__)

Rng = Callable[[int], bytes]


class State(enum.IntEnum):
    """RFC 1661 §4.2; the value is the RFC's state number."""

    INITIAL = 0
    STARTING = 1
    CLOSED = 2
    STOPPED = 3
    CLOSING = 4
    STOPPING = 5
    REQ_SENT = 6
    ACK_RCVD = 7
    ACK_SENT = 8
    OPENED = 9


class Event(enum.Enum):
    """RFC 1661 §4.3."""

    UP = "Up"  # lower layer is Up
    DOWN = "Down"  # lower layer is Down
    OPEN = "Open"  # administrative Open
    CLOSE = "Close"  # administrative Close
    TO_PLUS = "TO+"  # Timeout with counter > 0
    TO_MINUS = "TO-"  # Timeout with counter expired
    RCR_GOOD = "RCR+"  # Receive-Configure-Request (Good)
    RCR_BAD = "RCR-"  # Receive-Configure-Request (Bad)
    RCA = "RCA"  # Receive-Configure-Ack
    RCN = "RCN"  # Receive-Configure-Nak/Rej
    RTR = "RTR"  # Receive-Terminate-Request
    RTA = "RTA"  # Receive-Terminate-Ack
    RUC = "RUC"  # Receive-Unknown-Code
    RXJ_GOOD = "RXJ+"  # Receive-Code-Reject (permitted) or Receive-Protocol-Reject
    RXJ_BAD = "RXJ-"  # Receive-Code-Reject (catastrophic) or Receive-Protocol-Reject
    RXR = "RXR"  # Receive-Echo-Request, Receive-Echo-Reply or Receive-Discard-Request


class Action(enum.Enum):
    """RFC 1661 §4.4."""

    TLU = "tlu"  # This-Layer-Up
    TLD = "tld"  # This-Layer-Down
    TLS = "tls"  # This-Layer-Started
    TLF = "tlf"  # This-Layer-Finished
    IRC = "irc"  # Initialize-Restart-Count
    ZRC = "zrc"  # Zero-Restart-Count
    SCR = "scr"  # Send-Configure-Request
    SCA = "sca"  # Send-Configure-Ack
    SCN = "scn"  # Send-Configure-Nak/Rej
    STR = "str"  # Send-Terminate-Request
    STA = "sta"  # Send-Terminate-Ack
    SCJ = "scj"  # Send-Code-Reject
    SER = "ser"  # Send-Echo-Reply


Cell = tuple[tuple[Action, ...], State]


def _table() -> dict[tuple[State, Event], Cell]:
    """RFC 1661 §4.1, row by row (events) and column by column (states 0..9); None is "-"."""
    S, E, A = State, Event, Action
    tlu, tld, tls, tlf = A.TLU, A.TLD, A.TLS, A.TLF
    irc, zrc, scr, sca, scn = A.IRC, A.ZRC, A.SCR, A.SCA, A.SCN
    str_, sta, scj, ser = A.STR, A.STA, A.SCJ, A.SER

    def c(state: State, *actions: Action) -> Cell:
        return (tuple(actions), state)

    # fmt: off
    rows: dict[Event, list[Cell | None]] = {
        #          Initial         Starting            Closed                 Stopped                   Closing            Stopping           Req-Sent                Ack-Rcvd                Ack-Sent                Opened
        E.UP:       [c(S.CLOSED),   c(S.REQ_SENT, irc, scr), None,           None,                     None,              None,              None,                   None,                   None,                   None],
        E.DOWN:     [None,          None,               c(S.INITIAL),         c(S.STARTING, tls),       c(S.INITIAL),      c(S.STARTING),     c(S.STARTING),          c(S.STARTING),          c(S.STARTING),          c(S.STARTING, tld)],
        E.OPEN:     [c(S.STARTING, tls), c(S.STARTING), c(S.REQ_SENT, irc, scr), c(S.STOPPED),         c(S.STOPPING),     c(S.STOPPING),     c(S.REQ_SENT),          c(S.ACK_RCVD),          c(S.ACK_SENT),          c(S.OPENED)],
        E.CLOSE:    [c(S.INITIAL),  c(S.INITIAL, tlf),  c(S.CLOSED),          c(S.CLOSED),              c(S.CLOSING),      c(S.CLOSING),      c(S.CLOSING, irc, str_), c(S.CLOSING, irc, str_), c(S.CLOSING, irc, str_), c(S.CLOSING, tld, irc, str_)],
        E.TO_PLUS:  [None,          None,               None,                 None,                     c(S.CLOSING, str_), c(S.STOPPING, str_), c(S.REQ_SENT, scr),   c(S.REQ_SENT, scr),     c(S.ACK_SENT, scr),     None],
        E.TO_MINUS: [None,          None,               None,                 None,                     c(S.CLOSED, tlf),  c(S.STOPPED, tlf), c(S.STOPPED, tlf),      c(S.STOPPED, tlf),      c(S.STOPPED, tlf),      None],
        E.RCR_GOOD: [None,          None,               c(S.CLOSED, sta),     c(S.ACK_SENT, irc, scr, sca), c(S.CLOSING),  c(S.STOPPING),     c(S.ACK_SENT, sca),     c(S.OPENED, sca, tlu),  c(S.ACK_SENT, sca),     c(S.ACK_SENT, tld, scr, sca)],
        E.RCR_BAD:  [None,          None,               c(S.CLOSED, sta),     c(S.REQ_SENT, irc, scr, scn), c(S.CLOSING),  c(S.STOPPING),     c(S.REQ_SENT, scn),     c(S.ACK_RCVD, scn),     c(S.REQ_SENT, scn),     c(S.REQ_SENT, tld, scr, scn)],
        E.RCA:      [None,          None,               c(S.CLOSED, sta),     c(S.STOPPED, sta),        c(S.CLOSING),      c(S.STOPPING),     c(S.ACK_RCVD, irc),     c(S.REQ_SENT, scr),     c(S.OPENED, irc, tlu),  c(S.REQ_SENT, tld, scr)],
        E.RCN:      [None,          None,               c(S.CLOSED, sta),     c(S.STOPPED, sta),        c(S.CLOSING),      c(S.STOPPING),     c(S.REQ_SENT, irc, scr), c(S.REQ_SENT, scr),    c(S.ACK_SENT, irc, scr), c(S.REQ_SENT, tld, scr)],
        E.RTR:      [None,          None,               c(S.CLOSED, sta),     c(S.STOPPED, sta),        c(S.CLOSING, sta), c(S.STOPPING, sta), c(S.REQ_SENT, sta),    c(S.REQ_SENT, sta),     c(S.REQ_SENT, sta),     c(S.STOPPING, tld, zrc, sta)],
        E.RTA:      [None,          None,               c(S.CLOSED),          c(S.STOPPED),             c(S.CLOSED, tlf),  c(S.STOPPED, tlf), c(S.REQ_SENT),          c(S.REQ_SENT),          c(S.ACK_SENT),          c(S.REQ_SENT, tld, scr)],
        E.RUC:      [None,          None,               c(S.CLOSED, scj),     c(S.STOPPED, scj),        c(S.CLOSING, scj), c(S.STOPPING, scj), c(S.REQ_SENT, scj),    c(S.ACK_RCVD, scj),     c(S.ACK_SENT, scj),     c(S.OPENED, scj)],
        E.RXJ_GOOD: [None,          None,               c(S.CLOSED),          c(S.STOPPED),             c(S.CLOSING),      c(S.STOPPING),     c(S.REQ_SENT),          c(S.REQ_SENT),          c(S.ACK_SENT),          c(S.OPENED)],
        E.RXJ_BAD:  [None,          None,               c(S.CLOSED, tlf),     c(S.STOPPED, tlf),        c(S.CLOSED, tlf),  c(S.STOPPED, tlf), c(S.STOPPED, tlf),      c(S.STOPPED, tlf),      c(S.STOPPED, tlf),      c(S.STOPPING, tld, irc, str_)],
        E.RXR:      [None,          None,               c(S.CLOSED),          c(S.STOPPED),             c(S.CLOSING),      c(S.STOPPING),     c(S.REQ_SENT),          c(S.ACK_RCVD),          c(S.ACK_SENT),          c(S.OPENED, ser)],
    }
    # fmt: on
    table: dict[tuple[State, Event], Cell] = {}
    for event, cells in rows.items():
        assert len(cells) == len(State), event
        for state, cell in zip(State, cells):
            if cell is not None:
                table[(state, event)] = cell
    return table


TRANSITIONS: dict[tuple[State, Event], Cell] = _table()

NEGOTIATING = frozenset({State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT})
# The Restart timer runs in these states only (RFC 1661 §4.6, and the TO rows of §4.1).
TIMER_STATES = frozenset({State.CLOSING, State.STOPPING}) | NEGOTIATING
TERMINATING = frozenset({State.CLOSING, State.STOPPING})
# Codes 1..7 exist in every control protocol; a Code-Reject of one is catastrophic (RFC 1661 §5.6).
BASIC_CODES = frozenset(range(Code.CONFIGURE_REQUEST, Code.CODE_REJECT + 1))


@dataclass(frozen=True, slots=True)
class CpTimers:
    """Counters and timers of RFC 1661 §4.6 (the RFC's suggested defaults)."""

    restart_s: float = 3.0  # Restart timer
    max_terminate: int = 2  # Terminate-Requests sent without a Terminate-Ack
    max_configure: int = 10  # Configure-Requests sent without an Ack/Nak/Reject
    max_failure: int = 5  # Configure-Naks sent before Naks turn into Rejects


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PppEvent:
    """Base of the events a control protocol reports; ``protocol`` is its PPP protocol number."""

    protocol: int


@dataclass(frozen=True, slots=True)
class LayerStarted(PppEvent):
    """This-Layer-Started: the layer needs its lower layer (RFC 1661 §4.4 tls)."""


@dataclass(frozen=True, slots=True)
class LayerUp(PppEvent):
    """This-Layer-Up: negotiation finished; ``values`` are the committed negotiated values."""

    values: Any


@dataclass(frozen=True, slots=True)
class LayerDown(PppEvent):
    """This-Layer-Down: the layer left the Opened state; ``reason`` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class LayerFinished(PppEvent):
    """This-Layer-Finished: the lower layer is no longer needed; ``reason`` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolRejected(PppEvent):
    """LCP received a Protocol-Reject for ``rejected_protocol``: stop sending it (RFC 1661 §5.7)."""

    rejected_protocol: int


# --- the machine ---------------------------------------------------------------------------------


class ControlProtocol:
    """One control protocol (LCP, IPCP, ...) driven by the RFC 1661 automaton.

    Subclasses set ``protocol`` and ``options`` and may override the hooks (``_reset_negotiation``,
    ``_build_values``, ``_on_up``, ``_on_down``, ``_on_finished``, ``_note_rx``, ``_echo_magic``).
    ``lcp_codes`` enables the LCP-only codes 8-13 (RFC 1661 §5.7-5.9, RFC 1570 §2).

    State visible to the link: ``state``, ``values`` (the negotiated values after LayerUp, else
    None), ``ours``/``theirs`` (committed option values: ours the peer acked, the peer's we
    acked, keyed by option type), ``counters`` (drops and oddities by name) and ``peer_mru``
    (the size limit for packets we send; the link sets it from LCP, default 1500).
    """

    protocol: ClassVar[int] = 0
    name: ClassVar[str] = "CP"
    options: ClassVar[OptionTable] = OptionTable("CP")
    lcp_codes: ClassVar[bool] = False

    def __init__(self, *, timers: CpTimers | None = None, rng: Rng = urandom, first_identifier: int = 1):
        self.timers = timers or CpTimers()
        self.rng = rng
        self.state = State.INITIAL
        self.values: Any = None
        self.ours: dict[int, Any] = {}
        self.theirs: dict[int, Any] = {}
        self.counters: dict[str, int] = {}
        self.peer_mru = DEFAULT_MRU
        self.restart_count = 0
        self._deadline: float | None = None
        self._next_id = first_identifier & 0xFF
        self._want: dict[int, Any] = {}  # what our next Configure-Request asks for
        self._ours_pending: dict[int, Any] = {}  # our options as the peer acked them (RCA)
        self._theirs_pending: dict[int, Any] = {}  # the peer's options as we acked them (sca)
        self._req_id: int | None = None  # Identifier of our last Configure-Request
        self._req_data = b""  # its options, as sent
        self._req_answered = True
        self._term_id: int | None = None
        self._naks_sent = 0  # Configure-Naks sent in a row (Max-Failure)
        self._naks_rcvd = 0  # Configure-Naks received in a row (our own bound)
        self._reason = ""
        self._rx: CpPacket | None = None  # the packet being processed (sta, scj, ser use it)
        self._response: CpPacket | None = None  # our Configure-Ack/Nak/Reject to it
        self._out: list[tuple[int, bytes]] = []
        self._events: deque[PppEvent] = deque()
        self._handlers: dict[int, Callable[[CpPacket, float], None]] = {
            Code.CONFIGURE_REQUEST: self._rcv_configure_request,
            Code.CONFIGURE_ACK: self._rcv_configure_ack,
            Code.CONFIGURE_NAK: self._rcv_configure_nak_rej,
            Code.CONFIGURE_REJECT: self._rcv_configure_nak_rej,
            Code.TERMINATE_REQUEST: self._rcv_terminate_request,
            Code.TERMINATE_ACK: self._rcv_terminate_ack,
            Code.CODE_REJECT: self._rcv_code_reject,
        }
        if self.lcp_codes:
            self._handlers.update({
                Code.PROTOCOL_REJECT: self._rcv_protocol_reject,
                Code.ECHO_REQUEST: self._rcv_echo,
                Code.ECHO_REPLY: self._rcv_echo,
                Code.DISCARD_REQUEST: self._rcv_echo,
                Code.IDENTIFICATION: self._rcv_silently_accepted,
                Code.TIME_REMAINING: self._rcv_silently_accepted,
            })
        self._actions: dict[Action, Callable[[float, State, State], None]] = {
            Action.TLU: self._tlu,
            Action.TLD: self._tld,
            Action.TLS: self._tls,
            Action.TLF: self._tlf,
            Action.IRC: self._irc,
            Action.ZRC: self._zrc,
            Action.SCR: self._scr,
            Action.SCA: self._sca,
            Action.SCN: self._scn,
            Action.STR: self._str,
            Action.STA: self._sta,
            Action.SCJ: self._scj,
            Action.SER: self._ser,
        }

    # --- public API ------------------------------------------------------------------------------

    def open(self, now: float) -> None:
        """Administrative Open: we want this layer up."""
        self._fire(Event.OPEN, now)

    def close(self, reason: str, now: float) -> None:
        """Administrative Close; ``reason`` goes into the Terminate-Request and the Layer events."""
        self._fire(Event.CLOSE, now, reason)

    def lower_up(self, now: float) -> None:
        self._fire(Event.UP, now)

    def lower_down(self, now: float, reason: str = "lower layer down") -> None:
        self._fire(Event.DOWN, now, reason)

    def protocol_rejected(self, now: float) -> None:
        """The peer Protocol-Rejected this protocol (LCP reported it): RXJ- (RFC 1661 §5.7)."""
        self._fire(Event.RXJ_BAD, now, f"{self.name} protocol rejected by peer")

    def receive(self, payload: bytes, now: float) -> None:
        """A packet of this protocol from the peer (the information field of the PPP frame).
        Malformed input is dropped and counted; nothing is raised."""
        self._note_rx(now)
        try:
            packet = decode_cp(payload)
        except DecodeError:
            self._count("malformed_packet")
            return
        handler = self._handlers.get(packet.code, self._rcv_unknown_code)
        self._rx = packet
        try:
            handler(packet, now)
        finally:
            self._rx = None
            self._response = None

    def get_timer(self) -> float | None:
        """The earliest time at which ``handle_timer`` must be called, or None."""
        return self._deadline

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline:
            return
        self._deadline = None
        if self.restart_count > 0:
            self._fire(Event.TO_PLUS, now)
        elif self.state in NEGOTIATING:
            self._fire(Event.TO_MINUS, now, f"{self.name}: no answer to {self.timers.max_configure} "
                                            "Configure-Requests")
        else:
            self._fire(Event.TO_MINUS, now)

    def take_output(self) -> list[tuple[int, bytes]]:
        """Packets to send, as ``(protocol, control packet)``; the link adds the PPP header."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> PppEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def is_opened(self) -> bool:
        return self.state is State.OPENED

    # --- hooks for subclasses --------------------------------------------------------------------

    def _reset_negotiation(self) -> None:
        """Called when a new negotiation starts, before the option values are requested again."""

    def _build_values(self) -> Any:
        """The negotiated values reported in LayerUp, from ``self.ours`` and ``self.theirs``."""
        return (dict(self.ours), dict(self.theirs))

    def _on_up(self, now: float) -> None:
        pass

    def _on_down(self, now: float) -> None:
        pass

    def _on_finished(self, now: float) -> None:
        pass

    def _note_rx(self, now: float) -> None:
        pass

    def _echo_magic(self) -> int:
        return 0

    # --- the automaton ---------------------------------------------------------------------------

    def _fire(self, event: Event, now: float, reason: str | None = None) -> None:
        cell = TRANSITIONS.get((self.state, event))
        if cell is None:
            self._count(f"illegal_{event.name.lower()}_in_{self.state.name.lower()}")
            return
        actions, next_state = cell
        if reason is not None and (
            Action.TLD in actions
            or (self.state not in TERMINATING and (Action.TLF in actions or Action.STR in actions))
        ):
            self._reason = reason  # while terminating, the reason we started terminating for stays
        old = self.state
        for action in actions:
            self._actions[action](now, old, next_state)
        self.state = next_state
        if next_state not in TIMER_STATES:
            self._deadline = None
        if old is not next_state:
            logger.debug("%s %s: %s -> %s", self.name, event.value, old.name, next_state.name)

    def _fail(self, reason: str, now: float) -> None:
        logger.debug("%s negotiation failed: %s", self.name, reason)
        self._fire(Event.CLOSE, now, reason)

    # actions (RFC 1661 §4.4)

    def _tlu(self, now: float, old: State, new: State) -> None:
        self.ours = dict(self._ours_pending)
        self.theirs = dict(self._theirs_pending)
        self.values = self._build_values()
        self._events.append(LayerUp(self.protocol, self.values))
        self._on_up(now)

    def _tld(self, now: float, old: State, new: State) -> None:
        self.values = None
        self._events.append(LayerDown(self.protocol, self._reason))
        self._on_down(now)

    def _tls(self, now: float, old: State, new: State) -> None:
        self._events.append(LayerStarted(self.protocol))

    def _tlf(self, now: float, old: State, new: State) -> None:
        self._events.append(LayerFinished(self.protocol, self._reason))
        self._on_finished(now)

    def _irc(self, now: float, old: State, new: State) -> None:
        self.restart_count = self.timers.max_terminate if new in TERMINATING else self.timers.max_configure

    def _zrc(self, now: float, old: State, new: State) -> None:
        self.restart_count = 0
        self._deadline = now + self.timers.restart_s

    def _scr(self, now: float, old: State, new: State) -> None:
        if old not in NEGOTIATING:
            self._begin_negotiation()
        data = encode_options(
            Option(spec.type, spec.encode(self._want[spec.type])) for spec in self.options if spec.type in self._want
        )
        if self._req_id is not None and not self._req_answered and data == self._req_data:
            ident = self._req_id  # a retransmission keeps its Identifier (RFC 1661 §5.1)
        else:
            ident = self._new_id()
        self._req_id, self._req_data, self._req_answered = ident, data, False
        self._send(CpPacket(Code.CONFIGURE_REQUEST, ident, data))
        self.restart_count -= 1
        self._deadline = now + self.timers.restart_s

    def _sca(self, now: float, old: State, new: State) -> None:
        assert self._response is not None and self._response.code == Code.CONFIGURE_ACK
        self._naks_sent = 0
        self._send(self._response)

    def _scn(self, now: float, old: State, new: State) -> None:
        assert self._response is not None and self._response.code in (Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT)
        if self._response.code == Code.CONFIGURE_NAK:
            self._naks_sent += 1
        self._send(self._response)

    def _str(self, now: float, old: State, new: State) -> None:
        if old not in TERMINATING or self._term_id is None:
            self._term_id = self._new_id()
        text = self._reason.encode("utf-8", "replace")[: max(0, self.peer_mru - CP_HEADER_LEN)]
        self._send(CpPacket(Code.TERMINATE_REQUEST, self._term_id, text))
        self.restart_count -= 1
        self._deadline = now + self.timers.restart_s

    def _sta(self, now: float, old: State, new: State) -> None:
        ident = self._rx.identifier if self._rx is not None else self._new_id()
        self._send(CpPacket(Code.TERMINATE_ACK, ident))

    def _scj(self, now: float, old: State, new: State) -> None:
        assert self._rx is not None
        rejected = encode_cp(self._rx)[: max(0, self.peer_mru - CP_HEADER_LEN)]
        self._send(CpPacket(Code.CODE_REJECT, self._new_id(), rejected))

    def _ser(self, now: float, old: State, new: State) -> None:
        rx = self._rx
        if rx is None or rx.code != Code.ECHO_REQUEST:
            return  # Echo-Reply and Discard-Request are RXR too, and need no answer
        body = MagicData(self._echo_magic(), rx.data[4:])
        data = encode_magic_data(body)[: max(0, self.peer_mru - CP_HEADER_LEN)]
        self._send(CpPacket(Code.ECHO_REPLY, rx.identifier, data))

    # --- negotiation -----------------------------------------------------------------------------

    def _begin_negotiation(self) -> None:
        """A new negotiation: ask for our configured values again (RFC 1661 §4.4 scr after tld)."""
        self._naks_sent = 0
        self._naks_rcvd = 0
        self._reset_negotiation()
        self._want = {}
        for spec in self.options:
            value = spec.request(self)
            if value is not None:
                self._want[spec.type] = value

    def _judge_request(self, packet: CpPacket, options: tuple[Option, ...]) -> bool:
        """Prepare the answer to a Configure-Request; True if it is a Configure-Ack (RCR+)."""
        max_failure = self.timers.max_failure
        rejects: list[Option] = []
        naks: list[Option] = []
        acked: dict[int, Any] = {}
        for opt in options:
            spec = self.options.get(opt.type)
            if spec is None:
                rejects.append(opt)  # unknown: rejected with its raw bytes (RFC 1661 §5.4)
                self._count("unknown_option")
                continue
            try:
                value = spec.decode(opt.data)
            except DecodeError:
                rejects.append(opt)
                self._count("malformed_option")
                continue
            judgement = spec.judge(self, value)
            if judgement.verdict is Verdict.ACK:
                acked[opt.type] = value
            elif judgement.verdict is Verdict.NAK and self._naks_sent < max_failure:
                naks.append(Option(opt.type, spec.encode(judgement.suggestion)))
            else:  # a Reject, or a Nak past Max-Failure (RFC 1661 §4.6)
                rejects.append(opt)
        if not rejects and self._naks_sent < max_failure:
            present = {opt.type for opt in options}
            for spec in self.options:
                if spec.type not in present:
                    hint = spec.hint(self)
                    if hint is not None:
                        naks.append(Option(spec.type, spec.encode(hint)))
        if rejects:
            self._response = CpPacket(Code.CONFIGURE_REJECT, packet.identifier, encode_options(rejects))
        elif naks:
            self._response = CpPacket(Code.CONFIGURE_NAK, packet.identifier, encode_options(naks))
        else:
            self._response = CpPacket(Code.CONFIGURE_ACK, packet.identifier, packet.data)
            self._theirs_pending = acked
            return True
        return False

    def _apply_nak(self, options: tuple[Option, ...]) -> None:
        as_reject = self._naks_rcvd > self.timers.max_failure
        for opt in options:
            spec = self.options.get(opt.type)
            if spec is None:
                continue  # a suggestion for an option we do not know: ignore it
            try:
                suggested = spec.decode(opt.data)
            except DecodeError:
                suggested = None
                self._count("malformed_option")
            ours = self._want.get(opt.type)
            if ours is None:
                new = None if as_reject else spec.on_nak(self, None, suggested)
            elif as_reject:
                new = spec.on_reject(self, ours)
            else:
                new = spec.on_nak(self, ours, suggested)
            self._set_want(opt.type, new)

    def _apply_reject(self, options: tuple[Option, ...]) -> None:
        for opt in options:
            spec = self.options.get(opt.type)
            ours = self._want.get(opt.type)
            if spec is None or ours is None:
                continue
            self._set_want(opt.type, spec.on_reject(self, ours))

    def _set_want(self, typ: int, value: Any) -> None:
        if value is None:
            self._want.pop(typ, None)
        else:
            self._want[typ] = value

    def _is_reply_to_request(self, packet: CpPacket) -> bool:
        if self._req_id is None or packet.identifier != self._req_id or self._req_answered:
            self._count("stale_reply")
            return False
        return True

    # --- receive handlers ------------------------------------------------------------------------

    def _rcv_configure_request(self, packet: CpPacket, now: float) -> None:
        if self.state not in NEGOTIATING and self.state not in (State.STOPPED, State.OPENED):
            # Initial/Starting: illegal; Closed/Closing/Stopping: answered without looking (§4.1).
            self._fire(Event.RCR_GOOD, now)
            return
        try:
            options = decode_options(packet.data)
        except DecodeError:
            self._count("malformed_packet")
            return
        if self.state in (State.STOPPED, State.OPENED):
            self._naks_sent = 0
        try:
            good = self._judge_request(packet, options)
        except NegotiationFailed as exc:
            self._fail(exc.reason, now)
            return
        if self.state is State.OPENED:
            reason = f"{self.name}: peer renegotiates"
        else:
            reason = None
        self._fire(Event.RCR_GOOD if good else Event.RCR_BAD, now, reason)

    def _rcv_configure_ack(self, packet: CpPacket, now: float) -> None:
        if not self._is_reply_to_request(packet):
            return
        if packet.data != self._req_data:
            self._count("bad_ack")  # must match our request exactly (RFC 1661 §5.2)
            return
        self._req_answered = True
        self._naks_rcvd = 0
        self._ours_pending = dict(self._want)
        self._fire(Event.RCA, now, f"{self.name}: renegotiation")

    def _rcv_configure_nak_rej(self, packet: CpPacket, now: float) -> None:
        if not self._is_reply_to_request(packet):
            return
        try:
            options = decode_options(packet.data)
        except DecodeError:
            self._count("malformed_packet")
            return
        if packet.code == Code.CONFIGURE_REJECT:
            requested = {opt.type for opt in decode_options(self._req_data)}
            if any(opt.type not in requested for opt in options):
                self._count("bad_reject")  # must be a subset of our request (RFC 1661 §5.4)
                return
        self._req_answered = True
        try:
            if packet.code == Code.CONFIGURE_NAK:
                self._naks_rcvd += 1
                self._apply_nak(options)
            else:
                self._apply_reject(options)
        except NegotiationFailed as exc:
            self._fail(exc.reason, now)
            return
        self._fire(Event.RCN, now, f"{self.name}: renegotiation")

    def _rcv_terminate_request(self, packet: CpPacket, now: float) -> None:
        text = packet.data.decode("utf-8", "replace")
        printable = "".join(ch if ch.isprintable() else "?" for ch in text)[:200]
        self._fire(Event.RTR, now, f"peer terminated {self.name}" + (f": {printable}" if printable else ""))

    def _rcv_terminate_ack(self, packet: CpPacket, now: float) -> None:
        self._fire(Event.RTA, now, f"{self.name}: unexpected Terminate-Ack")

    def _rcv_code_reject(self, packet: CpPacket, now: float) -> None:
        if not packet.data:
            self._count("malformed_packet")
            return
        rejected = packet.data[0]
        if rejected in BASIC_CODES:
            self._fire(Event.RXJ_BAD, now, f"peer rejected {self.name} code {rejected}")
        else:
            self._count(f"code_{rejected}_rejected")
            self._fire(Event.RXJ_GOOD, now)

    def _rcv_protocol_reject(self, packet: CpPacket, now: float) -> None:
        try:
            body = decode_protocol_reject(packet.data)
        except DecodeError:
            self._count("malformed_packet")
            return
        if body.protocol == self.protocol:
            self._fire(Event.RXJ_BAD, now, f"peer rejected {self.name}")
            return
        if self.state is State.OPENED:
            self._events.append(ProtocolRejected(self.protocol, body.protocol))
        else:
            self._count("protocol_reject_not_opened")
        self._fire(Event.RXJ_GOOD, now)

    def _rcv_echo(self, packet: CpPacket, now: float) -> None:
        try:
            decode_magic_data(packet.data)
        except DecodeError:
            self._count("malformed_packet")
            return
        self._fire(Event.RXR, now)

    def _rcv_silently_accepted(self, packet: CpPacket, now: float) -> None:
        self._count(f"code_{packet.code}")  # Identification / Time-Remaining (RFC 1570 §2)

    def _rcv_unknown_code(self, packet: CpPacket, now: float) -> None:
        self._count("unknown_code")
        self._fire(Event.RUC, now)

    # --- helpers ---------------------------------------------------------------------------------

    def _new_id(self) -> int:
        ident = self._next_id
        self._next_id = (ident + 1) & 0xFF
        return ident

    def _send(self, packet: CpPacket) -> None:
        self._out.append((self.protocol, encode_cp(packet)))

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1
