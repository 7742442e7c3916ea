"""The control connection (tunnel), RFC 2661 §7.2, in both roles, sans-IO.

A ``Tunnel`` owns its reliable ``Transport`` and its sessions. It is driven with ``receive(msg, now)``
(messages already decoded and addressed to it), ``handle_timer(now)`` and commands (``open``, ``close``,
``open_session``, ``close_session``); it hands back messages with ``take_output()`` and events with
``take_events()``. It never reads a clock, opens a socket or sleeps; randomness comes from ``rng``.

The state rules are the table ``TUNNEL_TRANSITIONS`` (§7.2.1): (state, message type) → handler. A
tunnel message with no row in the current state is a state-machine error and closes the tunnel with
StopCCN result 7, which is what the RFC's table asks for ("Receive SCCRQ, SCCRP, SCCCN in established
→ send StopCCN, clean up").

How far a failure reaches: a bad session message clears that session (CDN); a bad tunnel message, an
unknown mandatory AVP in a tunnel message, or a failed challenge clears the tunnel (StopCCN).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import L2tpProtocolError, LocalUsageError
from ..wire.avp import (
    TUNNEL_MESSAGES,
    Accm,
    Avp,
    AvpType,
    CallErrors,
    CDNResult,
    ControlMessage,
    ErrorCode,
    MessageType,
    ResultCode,
    StopCCNResult,
    avp,
    make_message,
    missing_avps,
    unknown_mandatory,
    unresolved_hidden,
)
from . import events as ev
from .session import CallSide, Session, SessionAction, SessionState, session_action
from .transport import Transport, TransportConfig

log = logging.getLogger(__name__)

PROTOCOL_VERSION = (1, 0)  # §4.4.3: version 1 revision 0 for RFC 2661
FRAMING_SYNC = 1
FRAMING_ASYNC = 2
BEARER_DIGITAL = 1
BEARER_ANALOG = 2


class Role(enum.Enum):
    LAC = "lac"  # we initiate the tunnel (client, SCCRQ)
    LNS = "lns"  # we answer it (server, SCCRP)


class TunnelState(enum.Enum):
    IDLE = "idle"
    WAIT_CTL_REPLY = "wait-ctl-reply"  # LAC: SCCRQ sent
    WAIT_CTL_CONN = "wait-ctl-conn"  # LNS: SCCRP sent
    ESTABLISHED = "established"
    CLOSING = "closing"  # we sent StopCCN and wait for its acknowledgement
    CLOSED = "closed"  # gone; kept for ``linger_s`` to acknowledge retransmissions


@dataclass(frozen=True, slots=True)
class TunnelConfig:
    """Per-tunnel settings. ``secret`` enables tunnel authentication (§5.1.1)."""

    host_name: bytes = b"fastl2tp"
    vendor_name: bytes = b"fastl2tp"
    firmware_revision: int = 0x0100
    framing_capabilities: int = FRAMING_SYNC | FRAMING_ASYNC
    bearer_capabilities: int = 0
    transport: TransportConfig = field(default_factory=TransportConfig)
    hello_interval_s: float | None = 60.0  # HELLO after this much silence (§6.5); None: never
    secret: bytes | None = None
    setup_timeout_s: float = 30.0  # a tunnel or call that is not up by then is cleared
    linger_s: float = 31.0  # after close: keep state to re-acknowledge a retransmitted StopCCN (§5.7)
    send_tie_breaker: bool = True
    max_sessions: int = 65535
    tx_connect_speed: int = 100_000_000  # what a LAC reports in ICCN (bps)


def challenge_response(msg_type: MessageType, secret: bytes, challenge: bytes) -> bytes:
    """§5.1.1: MD5 over the message type of the carrying message (one octet), the secret and the
    challenge, as CHAP does with its Identifier."""
    return hashlib.md5(bytes((int(msg_type),)) + secret + challenge).digest()


Handler = Callable[["Tunnel", ControlMessage, float], None]


class _TunnelLog(logging.LoggerAdapter):
    """Prefixes every line with the tunnel id (and keeps it as a record attribute for structured logs)."""

    def process(self, msg, kwargs):
        kwargs.setdefault("extra", {}).update(self.extra)
        return f"tunnel {self.extra['tunnel']}: {msg}", kwargs


class Tunnel:
    """One control connection and its sessions."""

    def __init__(
        self,
        role: Role,
        local_id: int,
        peer: ev.Address,
        config: TunnelConfig,
        now: float,
        rng: Callable[[int], bytes] = secrets.token_bytes,
    ):
        if not 1 <= local_id <= 0xFFFF:
            raise ValueError("tunnel id must be 1..65535")
        self.role = role
        self.local_id = local_id
        self.peer = peer
        self.config = config
        self.rng = rng
        self.state = TunnelState.IDLE
        self.transport = Transport(config.transport, now)
        self.peer_tunnel_id = 0
        self.peer_host_name = b""
        self.peer_vendor = b""
        self.sessions: dict[int, Session] = {}
        self.tie_breaker: bytes | None = None
        self.close_result: ResultCode | None = None
        self._our_challenge: bytes | None = None
        self._peer_challenge: bytes | None = None
        self._setup_deadline: float | None = now + config.setup_timeout_s
        self._linger_until: float | None = None
        self._last_hello = now
        self._next_serial = 1
        self._events: list[ev.Event] = []
        self.stats: dict[str, int] = {"ignored": 0, "tolerated_missing_avps": 0}
        self.log = _TunnelLog(log, {"tunnel": local_id})

    # --- public commands --------------------------------------------------------------------------

    def open(self, now: float) -> None:
        """LAC: start the control connection with SCCRQ."""
        if self.role is not Role.LAC or self.state is not TunnelState.IDLE:
            raise LocalUsageError("open() is for an idle LAC tunnel")
        avps = [
            avp(AvpType.PROTOCOL_VERSION, PROTOCOL_VERSION),
            avp(AvpType.HOST_NAME, self.config.host_name),
            avp(AvpType.FRAMING_CAPABILITIES, self.config.framing_capabilities),
            avp(AvpType.BEARER_CAPABILITIES, self.config.bearer_capabilities),
            avp(AvpType.FIRMWARE_REVISION, self.config.firmware_revision),
            avp(AvpType.VENDOR_NAME, self.config.vendor_name),
            avp(AvpType.ASSIGNED_TUNNEL_ID, self.local_id),
            avp(AvpType.RECEIVE_WINDOW_SIZE, self.config.transport.receive_window),
        ]
        if self.config.send_tie_breaker:
            self.tie_breaker = self.rng(8)
            avps.append(avp(AvpType.TIE_BREAKER, self.tie_breaker))
        if self.config.secret is not None:
            self._our_challenge = self.rng(16)
            avps.append(avp(AvpType.CHALLENGE, self._our_challenge))
        self._send(0, MessageType.SCCRQ, avps, now)
        self.state = TunnelState.WAIT_CTL_REPLY

    def close(self, result: ResultCode, now: float, reason: str = "administrative close") -> None:
        """Clear the tunnel with StopCCN (all its sessions go with it)."""
        if self.state in (TunnelState.CLOSING, TunnelState.CLOSED):
            return
        if self.peer_tunnel_id == 0:
            # Nobody to address a StopCCN to (the peer never told us its tunnel id): just clean up.
            self._finish(reason, result, by_peer=False, now=now, linger=False)
            return
        self.close_result = result
        self._send(0, MessageType.StopCCN, [avp(AvpType.ASSIGNED_TUNNEL_ID, self.local_id),
                                            avp(AvpType.RESULT_CODE, result)], now)
        self.log.info("closing: %s (result %s/%s)", reason, result.result, result.error)
        self._drop_sessions(reason, result, by_peer=False)
        self._events.append(ev.TunnelDown(self.local_id, reason, result, by_peer=False))
        self.state = TunnelState.CLOSING
        self._setup_deadline = None

    def open_session(
        self, now: float, *, calling_number: bytes = b"", called_number: bytes = b"", session_id: int
    ) -> int:
        """LAC: place an incoming call (ICRQ). Queued until the tunnel is established."""
        if self.role is not Role.LAC:
            raise LocalUsageError("only a LAC places calls")
        if self.state in (TunnelState.CLOSING, TunnelState.CLOSED):
            raise LocalUsageError(f"tunnel {self.local_id} is closing")
        if session_id in self.sessions or not 1 <= session_id <= 0xFFFF:
            raise LocalUsageError(f"session id {session_id} is in use or out of range")
        s = Session(session_id, CallSide.LAC, SessionState.WAIT_TUNNEL, deadline=now + self.config.setup_timeout_s,
                    calling_number=calling_number, called_number=called_number)
        self.sessions[session_id] = s
        if self.state is TunnelState.ESTABLISHED:
            self._send_icrq(s, now)
        return session_id

    def close_session(self, session_id: int, result: ResultCode, now: float, reason: str = "administrative") -> None:
        s = self.sessions.get(session_id)
        if s is None:
            return
        self._clear_session(s, result, reason, now, send_cdn=s.state is not SessionState.WAIT_TUNNEL)

    # --- input --------------------------------------------------------------------------------------

    def receive(self, msg: ControlMessage, now: float) -> None:
        """A control message addressed to this tunnel (header tunnel id = ours, or 0 for SCCRQ)."""
        if self.state is TunnelState.CLOSED:
            # Lingering: acknowledge (duplicates are re-acked by the transport), act on nothing.
            self.transport.receive(msg, now)
            return
        for m in self.transport.receive(msg, now):
            if self.state is TunnelState.CLOSED:
                break
            try:
                self._dispatch(m, now)
            except L2tpProtocolError as exc:
                self._fail(exc, now)
        self._after_input(now)

    def _after_input(self, now: float) -> None:
        if self.state is TunnelState.CLOSING and self.transport.idle:
            self._finish_closed(now)

    def _dispatch(self, m: ControlMessage, now: float) -> None:
        mt = m.msg_type
        if not isinstance(mt, MessageType):
            # §4.4.1: an unknown message type with the M bit clears the tunnel; without it, ignore.
            if m.avps[0].mandatory:
                raise L2tpProtocolError(StopCCNResult.GENERAL_ERROR, ErrorCode.BAD_VALUE,
                                        f"unknown mandatory message type {mt}")
            self.stats["ignored"] += 1
            return
        tunnel_level = mt in TUNNEL_MESSAGES
        if mt in (MessageType.SCCRQ, MessageType.SCCRP) and self.peer_tunnel_id == 0:
            # Know where to address a StopCCN even if the rest of this message is refused.
            peer_tid = m.get(AvpType.ASSIGNED_TUNNEL_ID)
            if isinstance(peer_tid, int):
                self.peer_tunnel_id = self.transport.peer_tunnel_id = peer_tid
        bad = unknown_mandatory(m)
        if bad is not None:
            self._reject(m, mt, tunnel_level, ErrorCode.UNKNOWN_MANDATORY_AVP,
                         f"unknown mandatory AVP ({bad.name}) in {mt.name}", now)
            return
        hidden = unresolved_hidden(m)
        if hidden is not None:
            self._reject(m, mt, tunnel_level, ErrorCode.VENDOR_ERROR,
                         f"hidden {hidden.name} in {mt.name} but no tunnel secret to unhide it", now)
            return
        fatal, tolerated = missing_avps(m)
        if tolerated:
            self.stats["tolerated_missing_avps"] += 1
        if fatal:
            names = ", ".join(sorted(t.name for t in fatal))
            self._reject(m, mt, tunnel_level, ErrorCode.BAD_LENGTH, f"{mt.name} lacks {names}", now)
            return
        if mt is MessageType.StopCCN:
            self._on_stopccn(m, now)
        elif self.state is TunnelState.CLOSING:
            self.stats["ignored"] += 1  # our StopCCN is on its way; the transport acknowledges this
        elif mt is MessageType.HELLO:
            pass  # acknowledged by the transport; nothing else to do
        elif tunnel_level:
            handler = TUNNEL_TRANSITIONS.get((self.state, mt))
            if handler is None:
                raise L2tpProtocolError(StopCCNResult.FSM_ERROR, None, f"{mt.name} in state {self.state.value}")
            handler(self, m, now)
        elif self.state is not TunnelState.ESTABLISHED:
            raise L2tpProtocolError(StopCCNResult.FSM_ERROR, None,
                                    f"{mt.name} before the tunnel is established")
        else:
            self._session_message(m, mt, now)

    def _reject(self, m: ControlMessage, mt: MessageType, tunnel_level: bool, error: ErrorCode, text: str,
                now: float) -> None:
        if tunnel_level:
            raise L2tpProtocolError(StopCCNResult.GENERAL_ERROR, error, text)
        self.log.warning("%s", text)
        result = ResultCode(CDNResult.GENERAL_ERROR, error, text.encode()[:200])
        s = self.sessions.get(m.session_id)
        if s is not None:
            self._clear_session(s, result, text, now)
        elif mt in (MessageType.ICRQ, MessageType.OCRQ):
            peer_sid = m.get(AvpType.ASSIGNED_SESSION_ID)
            if isinstance(peer_sid, int):
                self._send_cdn(0, peer_sid, result, now)

    # --- tunnel handlers (§7.2.1) -------------------------------------------------------------------

    def _check_version(self, m: ControlMessage) -> None:
        version = m.get(AvpType.PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            # §4.4.2: result 5, and the error code carries the highest version we support.
            raise L2tpProtocolError(StopCCNResult.BAD_PROTOCOL_VERSION, 0x0100,
                                    f"protocol version {version} not supported")

    def _learn_peer(self, m: ControlMessage) -> None:
        self.peer_tunnel_id = m.get(AvpType.ASSIGNED_TUNNEL_ID)
        self.transport.peer_tunnel_id = self.peer_tunnel_id
        self.peer_host_name = m.get(AvpType.HOST_NAME, b"")
        self.peer_vendor = m.get(AvpType.VENDOR_NAME, b"")
        rws = m.get(AvpType.RECEIVE_WINDOW_SIZE)
        if isinstance(rws, int) and rws > 0:
            self.transport.set_peer_window(rws)
        if self.peer_tunnel_id == 0:
            raise L2tpProtocolError(StopCCNResult.GENERAL_ERROR, ErrorCode.BAD_VALUE, "Assigned Tunnel ID 0")

    def _peer_challenge_response(self, m: ControlMessage, carrier: MessageType) -> list[Avp]:
        """Our answer to a Challenge AVP in ``m``, to go in a ``carrier`` message."""
        challenge = m.get(AvpType.CHALLENGE)
        if challenge is None:
            return []
        if self.config.secret is None:
            raise L2tpProtocolError(StopCCNResult.NOT_AUTHORIZED, None,
                                    "peer asked for tunnel authentication but no secret is configured")
        return [avp(AvpType.CHALLENGE_RESPONSE, challenge_response(carrier, self.config.secret, challenge))]

    def _verify_our_challenge(self, m: ControlMessage, carrier: MessageType) -> None:
        if self._our_challenge is None:
            return
        assert self.config.secret is not None
        expected = challenge_response(carrier, self.config.secret, self._our_challenge)
        got = m.get(AvpType.CHALLENGE_RESPONSE)
        if not isinstance(got, bytes) or not hmac.compare_digest(got, expected):
            raise L2tpProtocolError(StopCCNResult.NOT_AUTHORIZED, None,
                                    "tunnel authentication failed: bad or missing Challenge Response")

    def _on_sccrq(self, m: ControlMessage, now: float) -> None:
        """LNS, idle: answer SCCRQ with SCCRP (or refuse it)."""
        self._learn_peer(m)
        self._check_version(m)
        avps = [
            avp(AvpType.PROTOCOL_VERSION, PROTOCOL_VERSION),
            avp(AvpType.FRAMING_CAPABILITIES, self.config.framing_capabilities),
            avp(AvpType.BEARER_CAPABILITIES, self.config.bearer_capabilities),
            avp(AvpType.FIRMWARE_REVISION, self.config.firmware_revision),
            avp(AvpType.HOST_NAME, self.config.host_name),
            avp(AvpType.VENDOR_NAME, self.config.vendor_name),
            avp(AvpType.ASSIGNED_TUNNEL_ID, self.local_id),
            avp(AvpType.RECEIVE_WINDOW_SIZE, self.config.transport.receive_window),
        ]
        avps += self._peer_challenge_response(m, MessageType.SCCRP)
        if self.config.secret is not None:
            self._our_challenge = self.rng(16)
            avps.append(avp(AvpType.CHALLENGE, self._our_challenge))
        self._send(0, MessageType.SCCRP, avps, now)
        self.state = TunnelState.WAIT_CTL_CONN

    def _on_sccrp(self, m: ControlMessage, now: float) -> None:
        """LAC, wait-ctl-reply: check SCCRP, answer SCCCN, the tunnel is up."""
        self._learn_peer(m)
        self._check_version(m)
        self._verify_our_challenge(m, MessageType.SCCRP)
        avps = self._peer_challenge_response(m, MessageType.SCCCN)
        self._send(0, MessageType.SCCCN, avps, now)
        self._established(now)

    def _on_scccn(self, m: ControlMessage, now: float) -> None:
        """LNS, wait-ctl-conn: the LAC confirmed; verify its challenge response."""
        self._verify_our_challenge(m, MessageType.SCCCN)
        self._established(now)

    def _established(self, now: float) -> None:
        self.state = TunnelState.ESTABLISHED
        self._setup_deadline = None
        self._last_hello = now
        self.log.info("up: peer %s:%d tunnel %d host %r", self.peer[0], self.peer[1], self.peer_tunnel_id,
                      self.peer_host_name.decode("utf-8", "replace"))
        self._events.append(ev.TunnelUp(self.local_id, self.peer_tunnel_id, self.peer, self.peer_host_name,
                                        self.peer_vendor))
        for s in list(self.sessions.values()):
            if s.state is SessionState.WAIT_TUNNEL:
                self._send_icrq(s, now)

    def _on_stopccn(self, m: ControlMessage, now: float) -> None:
        result = m.get(AvpType.RESULT_CODE)
        if not isinstance(result, ResultCode):
            result = None
        if self.peer_tunnel_id == 0:
            tid = m.get(AvpType.ASSIGNED_TUNNEL_ID)
            if isinstance(tid, int):
                self.peer_tunnel_id = self.transport.peer_tunnel_id = tid
        text = "peer sent StopCCN"
        if result is not None:
            text += f" (result {result.result}/{result.error}"
            if result.message:
                text += ": " + result.message.rstrip(b"\0").decode("utf-8", "replace")
            text += ")"
        self.transport.flush_ack()  # §5.7: acknowledge the StopCCN at once
        self._finish(text, result, by_peer=True, now=now, linger=True)

    # --- sessions (§7.4) ----------------------------------------------------------------------------

    def _alloc_session_id(self) -> int | None:
        if len(self.sessions) >= min(self.config.max_sessions, 0xFFFF):
            return None
        for _ in range(64):
            sid = int.from_bytes(self.rng(2), "big")
            if sid and sid not in self.sessions:
                return sid
        return next((i for i in range(1, 0x10000) if i not in self.sessions), None)

    def new_session_id(self) -> int | None:
        """A free session id in this tunnel (for ``open_session``)."""
        return self._alloc_session_id()

    def _send_icrq(self, s: Session, now: float) -> None:
        s.call_serial = self._next_serial
        self._next_serial = (self._next_serial + 1) & 0xFFFFFFFF or 1
        avps = [avp(AvpType.ASSIGNED_SESSION_ID, s.session_id), avp(AvpType.CALL_SERIAL_NUMBER, s.call_serial),
                avp(AvpType.BEARER_TYPE, 0)]
        if s.calling_number:
            avps.append(avp(AvpType.CALLING_NUMBER, s.calling_number))
        if s.called_number:
            avps.append(avp(AvpType.CALLED_NUMBER, s.called_number))
        self._send(0, MessageType.ICRQ, avps, now)
        s.state = SessionState.WAIT_REPLY
        s.deadline = now + self.config.setup_timeout_s

    def _session_message(self, m: ControlMessage, mt: MessageType, now: float) -> None:
        if mt is MessageType.ICRQ:
            self._on_icrq(m, now)
            return
        if mt is MessageType.OCRQ:
            # Outgoing calls are not offered: refuse cleanly (§7.4.3 "not acceptable" → CDN).
            peer_sid = m.get(AvpType.ASSIGNED_SESSION_ID)
            self._send_cdn(0, peer_sid, ResultCode(CDNResult.PERMANENT_NO_FACILITIES, ErrorCode.NO_ERROR,
                                                   b"outgoing calls are not supported"), now)
            return
        s = self.sessions.get(m.session_id)
        if s is None:
            if mt is MessageType.ICRP:
                # §7.4.1 idle + ICRP: send CDN. We do not know this call.
                peer_sid = m.get(AvpType.ASSIGNED_SESSION_ID)
                self._send_cdn(0, peer_sid, ResultCode(CDNResult.GENERAL_ERROR, ErrorCode.INVALID_SESSION_ID,
                                                       b"no such session"), now)
            else:
                self.stats["ignored"] += 1  # CDN/ICCN/SLI/WEN for a session already gone
            return
        action = session_action(s.side, s.state, mt)
        if action is SessionAction.SEND_ICCN:
            s.peer_session_id = m.get(AvpType.ASSIGNED_SESSION_ID)
            avps = [avp(AvpType.TX_CONNECT_SPEED, self.config.tx_connect_speed),
                    avp(AvpType.FRAMING_TYPE, FRAMING_SYNC)]
            self._send(s.peer_session_id, MessageType.ICCN, avps, now)
            self._session_up(s)
        elif action is SessionAction.CONNECTED:
            s.tx_connect_speed = m.get(AvpType.TX_CONNECT_SPEED)
            s.sequencing_required = m.has(AvpType.SEQUENCING_REQUIRED)
            self._session_up(s)
        elif action is SessionAction.PEER_CLEARED:
            result = m.get(AvpType.RESULT_CODE)
            text = "peer sent CDN"
            if isinstance(result, ResultCode):
                text += f" (result {result.result}/{result.error}"
                if result.message:
                    text += ": " + result.message.rstrip(b"\0").decode("utf-8", "replace")
                text += ")"
            self._session_gone(s, text, result if isinstance(result, ResultCode) else None, by_peer=True)
        elif action is SessionAction.LINK_INFO:
            accm = m.get(AvpType.ACCM)
            if isinstance(accm, Accm):
                self._events.append(ev.SetLinkInfo(self.local_id, s.session_id, accm.send, accm.receive))
        elif action is SessionAction.WAN_ERROR:
            errs = m.get(AvpType.CALL_ERRORS)
            if isinstance(errs, CallErrors):
                self._events.append(ev.WanErrorNotify(self.local_id, s.session_id, (
                    errs.crc, errs.framing, errs.hardware_overruns, errs.buffer_overruns, errs.timeouts,
                    errs.alignment)))
        elif action is SessionAction.CLEAR:
            text = f"{mt.name} in session state {s.state.value}"
            self._clear_session(s, ResultCode(CDNResult.GENERAL_ERROR, ErrorCode.BAD_VALUE, text.encode()), text,
                                now)

    def _on_icrq(self, m: ControlMessage, now: float) -> None:
        peer_sid = m.get(AvpType.ASSIGNED_SESSION_ID)
        if self.role is not Role.LNS:
            self._send_cdn(0, peer_sid, ResultCode(CDNResult.PERMANENT_NO_FACILITIES, ErrorCode.NO_ERROR,
                                                   b"this end does not accept calls"), now)
            return
        if not peer_sid:
            self._send_cdn(0, 0, ResultCode(CDNResult.GENERAL_ERROR, ErrorCode.BAD_VALUE,
                                            b"Assigned Session ID 0"), now)
            return
        sid = self._alloc_session_id()
        if sid is None:
            self._send_cdn(0, peer_sid, ResultCode(CDNResult.TEMPORARY_NO_FACILITIES, ErrorCode.NO_RESOURCES,
                                                   b"session limit reached"), now)
            return
        s = Session(sid, CallSide.LNS, SessionState.WAIT_CONNECT, deadline=now + self.config.setup_timeout_s,
                    peer_session_id=peer_sid, call_serial=m.get(AvpType.CALL_SERIAL_NUMBER, 0),
                    calling_number=m.get(AvpType.CALLING_NUMBER, b""),
                    called_number=m.get(AvpType.CALLED_NUMBER, b""))
        self.sessions[sid] = s
        self._send(peer_sid, MessageType.ICRP, [avp(AvpType.ASSIGNED_SESSION_ID, sid)], now)

    def _session_up(self, s: Session) -> None:
        s.state = SessionState.ESTABLISHED
        s.deadline = None
        self.log.info("session %d up (peer session %d)", s.session_id, s.peer_session_id)
        self._events.append(ev.SessionUp(self.local_id, s.session_id, s.peer_session_id, self.peer,
                                         s.calling_number, s.called_number, s.sequencing_required,
                                         s.tx_connect_speed))

    def _send_cdn(self, local_sid: int, peer_sid: int, result: ResultCode, now: float) -> None:
        self._send(peer_sid or 0, MessageType.CDN,
                   [avp(AvpType.RESULT_CODE, result), avp(AvpType.ASSIGNED_SESSION_ID, local_sid)], now)

    def _clear_session(self, s: Session, result: ResultCode, reason: str, now: float, send_cdn: bool = True) -> None:
        if send_cdn and self.state is TunnelState.ESTABLISHED:
            self._send_cdn(s.session_id, s.peer_session_id, result, now)
        self._session_gone(s, reason, result, by_peer=False)

    def _session_gone(self, s: Session, reason: str, result: ResultCode | None, by_peer: bool) -> None:
        if self.sessions.pop(s.session_id, None) is None:
            return
        was_up = s.state is SessionState.ESTABLISHED
        self.log.info("session %d down: %s", s.session_id, reason)
        self._events.append(ev.SessionDown(self.local_id, s.session_id, reason, result, by_peer, was_up))

    def _drop_sessions(self, reason: str, result: ResultCode | None, by_peer: bool) -> None:
        for s in list(self.sessions.values()):
            self._session_gone(s, reason, result, by_peer)

    # --- closing ------------------------------------------------------------------------------------

    def _fail(self, exc: L2tpProtocolError, now: float) -> None:
        """A tunnel-level protocol error: StopCCN with the error's result code."""
        message = exc.message.encode("utf-8", "replace")[:200]
        result = ResultCode(exc.result_code, exc.error_code if exc.error_code is not None else 0, message)
        self.log.warning("protocol error: %s", exc.message)
        self.close(result, now, exc.message)

    def _finish(self, reason: str, result: ResultCode | None, by_peer: bool, now: float, linger: bool) -> None:
        already_down = self.state in (TunnelState.CLOSING, TunnelState.CLOSED)
        self._drop_sessions(reason, result, by_peer)
        if not already_down:
            self.log.info("down: %s", reason)
            self._events.append(ev.TunnelDown(self.local_id, reason, result, by_peer))
        self.transport.abandon()
        self.state = TunnelState.CLOSED
        self._setup_deadline = None
        self._linger_until = now + self.config.linger_s if linger else now

    def _finish_closed(self, now: float) -> None:
        # Our StopCCN was acknowledged (or can no longer be delivered): keep the state a while to
        # acknowledge stray retransmissions from the peer, then go.
        self.transport.abandon()
        self.state = TunnelState.CLOSED
        self._linger_until = now + self.config.linger_s

    def is_finished(self, now: float) -> bool:
        """All state may be dropped: closed and done lingering."""
        return self.state is TunnelState.CLOSED and self._linger_until is not None and now >= self._linger_until

    # --- time ---------------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.state is TunnelState.CLOSED:
            t = self.transport.get_timer()
            candidates = [x for x in (self._linger_until, t) if x is not None]
            return min(candidates) if candidates else None
        candidates = []
        t = self.transport.get_timer()
        if t is not None:
            candidates.append(t)
        if self._setup_deadline is not None:
            candidates.append(self._setup_deadline)
        if self.state is TunnelState.ESTABLISHED:
            h = self._hello_deadline()
            if h is not None:
                candidates.append(h)
            candidates.extend(s.deadline for s in self.sessions.values() if s.deadline is not None)
        return min(candidates) if candidates else None

    def _hello_deadline(self) -> float | None:
        if self.config.hello_interval_s is None:
            return None
        return max(self.transport.last_rx, self._last_hello) + self.config.hello_interval_s

    def handle_timer(self, now: float) -> None:
        if self.state is TunnelState.CLOSED:
            self.transport.handle_timer(now)  # only acknowledgements are left to send
            return
        self.transport.handle_timer(now)
        if self.transport.failed:
            reason = "peer not responding (control message retries exhausted)"
            if self.state is TunnelState.CLOSING:
                self._finish_closed(now)
            else:
                self._finish(reason, None, by_peer=False, now=now, linger=False)
            return
        if self._setup_deadline is not None and now >= self._setup_deadline:
            self.close(ResultCode(StopCCNResult.GENERAL_ERROR, ErrorCode.NO_ERROR, b"setup timed out"), now,
                       "tunnel setup timed out")
            return
        if self.state is TunnelState.ESTABLISHED:
            h = self._hello_deadline()
            if h is not None and now >= h:
                self._last_hello = now
                if self.transport.idle:
                    self._send(0, MessageType.HELLO, [], now)
            for s in list(self.sessions.values()):
                if s.deadline is not None and now >= s.deadline:
                    self._clear_session(s, ResultCode(CDNResult.TIMEOUT, ErrorCode.NO_ERROR, b"call setup timed out"),
                                        "call setup timed out", now)
        self._after_input(now)

    # --- output -------------------------------------------------------------------------------------

    def _send(self, session_id: int, msg_type: MessageType, avps: list[Avp], now: float) -> None:
        self.transport.send(session_id, make_message(msg_type, *avps), now)

    def take_output(self) -> list[ControlMessage]:
        return self.transport.take_output()

    def take_events(self) -> list[ev.Event]:
        out, self._events = self._events, []
        return out


TUNNEL_TRANSITIONS: dict[tuple[TunnelState, MessageType], Handler] = {
    (TunnelState.IDLE, MessageType.SCCRQ): Tunnel._on_sccrq,
    (TunnelState.WAIT_CTL_REPLY, MessageType.SCCRP): Tunnel._on_sccrp,
    (TunnelState.WAIT_CTL_CONN, MessageType.SCCCN): Tunnel._on_scccn,
}
