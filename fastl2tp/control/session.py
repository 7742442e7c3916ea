"""Session (call) state, RFC 2661 §7.4: incoming calls on both sides.

The rules are data: ``SESSION_TRANSITIONS`` maps (side, state, message type) to the action the tunnel
takes. A message with no row for the session's current state gets the RFC's default answer: the
session is cleared with a CDN (§7.4.1/§7.4.2: "Receive ICRQ, ICRP, ICCN in established → send CDN,
clean up"). The tunnel (``tunnel.py``) carries the actions out; this module holds no I/O and no clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..wire.avp import MessageType


class CallSide(enum.Enum):
    LAC = "lac"  # we placed the incoming call (ICRQ) towards the LNS
    LNS = "lns"  # we answer incoming calls


class SessionState(enum.Enum):
    WAIT_TUNNEL = "wait-tunnel"  # LAC: call requested before the tunnel is up
    WAIT_REPLY = "wait-reply"  # LAC: ICRQ sent, waiting for ICRP
    WAIT_CONNECT = "wait-connect"  # LNS: ICRP sent, waiting for ICCN
    ESTABLISHED = "established"


class SessionAction(enum.Enum):
    SEND_ICCN = "send-iccn"  # LAC got an acceptable ICRP: answer ICCN, session up
    CONNECTED = "connected"  # LNS got ICCN: session up
    PEER_CLEARED = "peer-cleared"  # CDN received: clean up
    CLEAR = "clear"  # illegal in this state: send CDN, clean up
    LINK_INFO = "link-info"  # SLI: report the ACCMs
    WAN_ERROR = "wan-error"  # WEN: report the counters
    IGNORE = "ignore"


S, M, A = SessionState, MessageType, SessionAction
SESSION_TRANSITIONS: dict[tuple[CallSide, SessionState, MessageType], SessionAction] = {
    # §7.4.1, LAC side of an incoming call
    (CallSide.LAC, S.WAIT_REPLY, M.ICRP): A.SEND_ICCN,
    (CallSide.LAC, S.WAIT_REPLY, M.CDN): A.PEER_CLEARED,
    (CallSide.LAC, S.ESTABLISHED, M.CDN): A.PEER_CLEARED,
    (CallSide.LAC, S.ESTABLISHED, M.SLI): A.LINK_INFO,  # an LNS may send SLI too (RFC 2661 §6.14)
    # §7.4.2, LNS side of an incoming call
    (CallSide.LNS, S.WAIT_CONNECT, M.ICCN): A.CONNECTED,
    (CallSide.LNS, S.WAIT_CONNECT, M.CDN): A.PEER_CLEARED,
    (CallSide.LNS, S.WAIT_CONNECT, M.SLI): A.LINK_INFO,
    (CallSide.LNS, S.WAIT_CONNECT, M.WEN): A.WAN_ERROR,
    (CallSide.LNS, S.ESTABLISHED, M.CDN): A.PEER_CLEARED,
    (CallSide.LNS, S.ESTABLISHED, M.SLI): A.LINK_INFO,  # Windows and Meraki send these
    (CallSide.LNS, S.ESTABLISHED, M.WEN): A.WAN_ERROR,
}
del S, M, A


def session_action(side: CallSide, state: SessionState, msg_type: MessageType) -> SessionAction:
    """What to do with ``msg_type`` for a session in ``state``: the table's row, else CDN + clean up
    (a CDN for a session that is already being cleared is simply accepted)."""
    action = SESSION_TRANSITIONS.get((side, state, msg_type))
    if action is not None:
        return action
    if msg_type is MessageType.CDN:
        return SessionAction.PEER_CLEARED
    return SessionAction.CLEAR


@dataclass(slots=True)
class Session:
    """One call inside a tunnel. ``session_id`` is ours (the header of what the peer sends us);
    ``peer_session_id`` is the peer's (0 until it told us)."""

    session_id: int
    side: CallSide
    state: SessionState
    deadline: float | None = None  # setup timeout while not established
    peer_session_id: int = 0
    call_serial: int = 0
    calling_number: bytes = b""
    called_number: bytes = b""
    sequencing_required: bool = False
    tx_connect_speed: int | None = None
    extra: dict = field(default_factory=dict)
