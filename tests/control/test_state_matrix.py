"""Every tunnel state × every message type (RFC 2661 §7.2.1, §7.4): the RFC's answer, never an exception.

Each case builds a tunnel in a state, delivers one well-formed message of a type with the next Ns,
and checks the state that follows and the non-ZLB messages sent. Session messages carry the header
session id of a call that does not exist, so the per-call rows of §7.4 apply ("idle" call state).
"""

from __future__ import annotations

import random

import pytest

from fastl2tp.control.transport import seq_lt
from fastl2tp.control.tunnel import Role, Tunnel, TunnelConfig, TunnelState
from fastl2tp.wire.avp import Avp, AvpType, ControlMessage, MessageType, StopCCNResult
from tests.control.factory import message

PEER = ("198.51.100.9", 1701)
M = MessageType
S = TunnelState
ALL = list(MessageType)
SESSION_MSGS = [M.OCRQ, M.OCRP, M.OCCN, M.ICRQ, M.ICRP, M.ICCN, M.CDN, M.WEN, M.SLI]


def build(state: S, role: Role) -> tuple[Tunnel, int]:
    """A tunnel in ``state``; returns it and the Ns the peer's next message must carry."""
    rng = random.Random(3).randbytes
    t = Tunnel(role, 100, PEER, TunnelConfig(), 0.0, rng)
    if role is Role.LAC:
        t.open(0.0)
        if state is S.WAIT_CTL_REPLY:
            return t, 0
        t.receive(message(M.SCCRP, 100, 0, 0, 1), 0.1)
        ns = 1
    else:
        if state is S.IDLE:
            return t, 0
        t.receive(message(M.SCCRQ, 0, 0, 0, 0), 0.1)
        if state is S.WAIT_CTL_CONN:
            return t, 1
        t.receive(message(M.SCCCN, 100, 0, 1, 1), 0.2)
        ns = 2
    assert t.state is S.ESTABLISHED
    if state is S.CLOSING:
        t.close(__import__("fastl2tp.wire.avp", fromlist=["ResultCode"]).ResultCode(1, 0), 0.3)
    elif state is S.CLOSED:
        t.receive(message(M.StopCCN, 100, 0, ns, 2), 0.3)
        ns += 1
    assert t.state is state
    t.take_output()
    t.take_events()
    return t, ns


def acked_nothing_new(t: Tunnel) -> int:
    """The Nr the peer sends: it has everything we sent, except that a StopCCN of ours stays
    unacknowledged (acknowledging it would end the closing state under test)."""
    q = t.transport._queue
    return q[0].ns if q and t.state is S.CLOSING else t.transport.ns


def expected(state: S, role: Role, mt: MessageType) -> tuple[S, set[MessageType], int | None]:
    """(next state, non-ZLB message types sent, StopCCN result code) per RFC 2661."""
    if state is S.CLOSED:
        return S.CLOSED, set(), None  # lingering: acknowledge only
    if mt is M.StopCCN:
        return S.CLOSED, set(), None
    if state is S.CLOSING:
        return S.CLOSING, set(), None  # our StopCCN is outstanding; everything else is only acked
    if mt is M.HELLO:
        return state, set(), None
    if state is S.IDLE and mt is M.SCCRQ:
        return S.WAIT_CTL_CONN, {M.SCCRP}, None
    if state is S.WAIT_CTL_REPLY and mt is M.SCCRP:
        return S.ESTABLISHED, {M.SCCCN}, None
    if state is S.WAIT_CTL_CONN and mt is M.SCCCN:
        return S.ESTABLISHED, set(), None
    peer_id_known = state not in (S.IDLE, S.WAIT_CTL_REPLY) or mt in (M.SCCRQ, M.SCCRP)
    if state is not S.ESTABLISHED or mt in (M.SCCRQ, M.SCCRP, M.SCCCN):
        if not peer_id_known:
            # No Assigned Tunnel ID from the peer yet: nobody to address a StopCCN to ("clean up").
            return S.CLOSED, set(), None
        return S.CLOSING, {M.StopCCN}, StopCCNResult.FSM_ERROR
    # established, call-level messages for a call we do not know
    if mt is M.ICRQ:
        return S.ESTABLISHED, {M.ICRP} if role is Role.LNS else {M.CDN}, None
    if mt in (M.OCRQ, M.ICRP):
        return S.ESTABLISHED, {M.CDN}, None
    return S.ESTABLISHED, set(), None  # ICCN, CDN, WEN, SLI, OCRP, OCCN for a gone call: ignored


CASES = [
    (state, role, mt)
    for state, roles in (
        (S.IDLE, (Role.LNS,)),
        (S.WAIT_CTL_REPLY, (Role.LAC,)),
        (S.WAIT_CTL_CONN, (Role.LNS,)),
        (S.ESTABLISHED, (Role.LAC, Role.LNS)),
        (S.CLOSING, (Role.LAC, Role.LNS)),
        (S.CLOSED, (Role.LAC, Role.LNS)),
    )
    for role in roles
    for mt in ALL
]


@pytest.mark.parametrize("state,role,mt", CASES, ids=lambda x: getattr(x, "name", str(x)))
def test_state_times_message(state, role, mt):
    t, ns = build(state, role)
    session_id = 555 if mt in SESSION_MSGS and mt is not M.ICRQ and mt is not M.OCRQ else 0
    first_new = t.transport.ns
    t.receive(message(mt, 100, session_id, ns, acked_nothing_new(t)), 1.0)
    t.handle_timer(1.0 + 0.5)
    sent = [m for m in t.take_output() if not m.is_zlb and not seq_lt(m.ns, first_new)]  # no retransmissions
    want_state, want_sent, want_result = expected(state, role, mt)
    assert t.state is want_state
    assert {m.msg_type for m in sent} == want_sent
    if want_result is not None:
        (stop,) = [m for m in sent if m.msg_type is M.StopCCN]
        assert stop.get(AvpType.RESULT_CODE).result == want_result


@pytest.mark.parametrize("state,role", sorted({(s, r) for s, r, _ in CASES}, key=str))
@pytest.mark.parametrize("mandatory", [False, True])
def test_unknown_message_type(state, role, mandatory):
    t, ns = build(state, role)
    first_new = t.transport.ns
    t.receive(ControlMessage(100, 0, ns, acked_nothing_new(t), (Avp(0, 77, mandatory),)), 1.0)
    sent = [m for m in t.take_output() if not m.is_zlb and not seq_lt(m.ns, first_new)]
    if state in (S.CLOSED, S.CLOSING) or not mandatory:
        assert sent == []
    elif state in (S.IDLE, S.WAIT_CTL_REPLY):
        assert sent == [] and t.state is S.CLOSED  # no peer tunnel id to send StopCCN to
    else:
        assert [m.msg_type for m in sent] == [M.StopCCN]


# --- calls: every session state × every call-level message (§7.4.1, §7.4.2) -------------------------

CALL_MSGS = [M.OCRP, M.OCCN, M.ICRP, M.ICCN, M.CDN, M.WEN, M.SLI]


def build_call(role: Role, established: bool):
    """An established tunnel with one call in wait-reply/wait-connect or established."""
    from tests.control.factory import REQUIRED  # noqa: F401 - same factory as above

    t, ns = build(S.ESTABLISHED, role)
    if role is Role.LAC:
        sid = t.new_session_id()
        t.open_session(1.0, session_id=sid)
        if established:
            t.receive(message(M.ICRP, 100, sid, ns, t.transport.ns), 1.1)
            ns += 1
    else:
        t.receive(message(M.ICRQ, 100, 0, ns, t.transport.ns), 1.0)
        ns += 1
        sid = next(iter(t.sessions))
        if established:
            t.receive(message(M.ICCN, 100, sid, ns, t.transport.ns), 1.1)
            ns += 1
    t.take_output()
    t.take_events()
    return t, ns, sid


def expected_call(role: Role, established: bool, mt: MessageType):
    """(call still there, established afterwards, message types sent) per §7.4."""
    if role is Role.LAC and not established and mt is M.ICRP:
        return True, True, {M.ICCN}
    if role is Role.LNS and not established and mt is M.ICCN:
        return True, True, set()
    if mt is M.CDN:
        return False, False, set()
    # SLI: from the LNS once the call is up (§6.14), and from Windows/Meraki LACs to the LNS;
    # WEN: LAC to LNS only (§6.13).
    if (mt is M.SLI and (role is Role.LNS or established)) or (mt is M.WEN and role is Role.LNS):
        return True, established, set()
    return False, False, {M.CDN}  # illegal in this call state: send CDN, clean up


@pytest.mark.parametrize("role", [Role.LAC, Role.LNS], ids=lambda r: r.name)
@pytest.mark.parametrize("established", [False, True], ids=["setting-up", "established"])
@pytest.mark.parametrize("mt", CALL_MSGS, ids=lambda m: m.name)
def test_call_state_times_message(role, established, mt):
    t, ns, sid = build_call(role, established)
    first_new = t.transport.ns
    t.receive(message(mt, 100, sid, ns, t.transport.ns), 2.0)
    sent = [m for m in t.take_output() if not m.is_zlb and not seq_lt(m.ns, first_new)]
    present, est, want_sent = expected_call(role, established, mt)
    assert (sid in t.sessions) == present
    if present:
        assert (t.sessions[sid].state.value == "established") == est
    assert {m.msg_type for m in sent} == want_sent
    assert t.state is S.ESTABLISHED  # a call-level problem never takes the tunnel down
