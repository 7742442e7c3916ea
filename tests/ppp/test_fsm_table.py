"""Tests generated from the RFC 1661 §4.1 state transition table.

The table below is the RFC's own text. It is parsed here, independently of ``fsm.TRANSITIONS``, and
(1) compared with the implementation's table, and (2) used to drive a real machine: for every state
x event cell we put an LCP machine in the state, deliver the event as the real input (a packet, a
timer expiry or a command) and check the observable effects of the RFC's actions and the next state.
"""

from __future__ import annotations

import pytest

from fastl2tp.ppp.fsm import (
    TIMER_STATES,
    TRANSITIONS,
    Action,
    Event,
    LayerDown,
    LayerFinished,
    LayerStarted,
    LayerUp,
    State,
)
from fastl2tp.ppp.lcp import Lcp, LcpConfig
from fastl2tp.wire.ppp import Code, CpPacket, Protocol, decode_cp, encode_cp

RFC1661_TABLE = """
      | State
      |    0         1         2         3         4         5
Events| Initial   Starting  Closed    Stopped   Closing   Stopping
------+-----------------------------------------------------------
 Up   |    2     irc,scr/6     -         -         -         -
 Down |    -         -         0       tls/1       0         1
 Open |  tls/1       1     irc,scr/6     3r        5r        5r
 Close|    0       tlf/0       2         2         4         4
      |
  TO+ |    -         -         -         -       str/4     str/5
  TO- |    -         -         -         -       tlf/2     tlf/3
      |
 RCR+ |    -         -       sta/2 irc,scr,sca/8   4         5
 RCR- |    -         -       sta/2 irc,scr,scn/6   4         5
 RCA  |    -         -       sta/2     sta/3       4         5
 RCN  |    -         -       sta/2     sta/3       4         5
      |
 RTR  |    -         -       sta/2     sta/3     sta/4     sta/5
 RTA  |    -         -         2         3       tlf/2     tlf/3
      |
 RUC  |    -         -       scj/2     scj/3     scj/4     scj/5
 RXJ+ |    -         -         2         3         4         5
 RXJ- |    -         -       tlf/2     tlf/3     tlf/2     tlf/3
      |
 RXR  |    -         -         2         3         4         5

      | State
      |    6         7         8           9
Events| Req-Sent  Ack-Rcvd  Ack-Sent    Opened
------+-----------------------------------------
 Up   |    -         -         -           -
 Down |    1         1         1         tld/1
 Open |    6         7         8           9r
 Close|irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4
      |
  TO+ |  scr/6     scr/6     scr/8         -
  TO- |  tlf/3p    tlf/3p    tlf/3p        -
      |
 RCR+ |  sca/8   sca,tlu/9   sca/8   tld,scr,sca/8
 RCR- |  scn/6     scn/7     scn/6   tld,scr,scn/6
 RCA  |  irc/7     scr/6x  irc,tlu/9   tld,scr/6x
 RCN  |irc,scr/6   scr/6x  irc,scr/8   tld,scr/6x
      |
 RTR  |  sta/6     sta/6     sta/6   tld,zrc,sta/5
 RTA  |    6         6         8       tld,scr/6
      |
 RUC  |  scj/6     scj/7     scj/8       scj/9
 RXJ+ |    6         6         8           9
 RXJ- |  tlf/3     tlf/3     tlf/3   tld,irc,str/5
      |
 RXR  |    6         7         8         ser/9
"""

Cell = tuple[tuple[Action, ...], State] | None


def parse_rfc_table(text: str) -> dict[tuple[State, Event], Cell]:
    cells: dict[tuple[State, Event], Cell] = {}
    states: list[State] = []
    for line in text.splitlines():
        if "|" not in line:
            continue
        head, _, rest = line.partition("|")
        head = head.strip()
        if head == "" and rest.split() and rest.split()[0].isdigit():
            states = [State(int(n)) for n in rest.split()]
            continue
        if head in ("", "Events"):
            continue
        event = Event(head)
        tokens = rest.split()
        assert len(tokens) == len(states), line
        for state, token in zip(states, tokens):
            if token == "-":
                cells[(state, event)] = None
                continue
            actions_text, _, target = token.rpartition("/")
            target = target.rstrip("rpx")  # footnotes: restart, passive, crossed
            actions = tuple(Action(a) for a in actions_text.split(",")) if actions_text else ()
            cells[(state, event)] = (actions, State(int(target)))
    return cells


RFC = parse_rfc_table(RFC1661_TABLE)
ALL_CELLS = [(s, e) for s in State for e in Event]


def test_rfc_text_covers_every_cell() -> None:
    assert set(RFC) == set(ALL_CELLS)
    assert len(RFC) == 160


@pytest.mark.parametrize("state,event", ALL_CELLS, ids=lambda x: x.name if isinstance(x, State) else x.value)
def test_table_matches_rfc(state: State, event: Event) -> None:
    assert TRANSITIONS.get((state, event)) == RFC[(state, event)]


# --- driving a real machine through every cell ---------------------------------------------------

NOW = 50.0
OUR_REQ_ID = 7
PEER_ID = 0x42

EXPECTED_PACKET = {
    Action.SCR: Code.CONFIGURE_REQUEST,
    Action.SCA: Code.CONFIGURE_ACK,
    Action.STR: Code.TERMINATE_REQUEST,
    Action.STA: Code.TERMINATE_ACK,
    Action.SCJ: Code.CODE_REJECT,
    Action.SER: Code.ECHO_REPLY,
}
EXPECTED_EVENT = {Action.TLU: LayerUp, Action.TLD: LayerDown, Action.TLS: LayerStarted, Action.TLF: LayerFinished}


def machine_in(state: State) -> Lcp:
    """An LCP that requests nothing (empty Configure-Request) with an unanswered request id 7."""
    lcp = Lcp(LcpConfig(mru=1500, magic=False, keepalive_timeout_s=None), first_identifier=0x10)
    lcp.state = state
    lcp._req_id, lcp._req_data, lcp._req_answered = OUR_REQ_ID, b"", False
    return lcp


def cp(code: int, ident: int, data: bytes = b"") -> bytes:
    return encode_cp(CpPacket(code, ident, data))


def deliver(lcp: Lcp, event: Event) -> None:
    if event is Event.UP:
        lcp.lower_up(NOW)
    elif event is Event.DOWN:
        lcp.lower_down(NOW)
    elif event is Event.OPEN:
        lcp.open(NOW)
    elif event is Event.CLOSE:
        lcp.close("administrative close", NOW)
    elif event in (Event.TO_PLUS, Event.TO_MINUS):
        lcp.restart_count = 1 if event is Event.TO_PLUS else 0
        lcp._deadline = NOW  # forced: in states without a timer the event is illegal
        lcp.handle_timer(NOW)
    elif event is Event.RCR_GOOD:
        lcp.receive(cp(Code.CONFIGURE_REQUEST, PEER_ID), NOW)
    elif event is Event.RCR_BAD:
        lcp.receive(cp(Code.CONFIGURE_REQUEST, PEER_ID, b"\x63\x03z"), NOW)  # unknown option 99
    elif event is Event.RCA:
        lcp.receive(cp(Code.CONFIGURE_ACK, OUR_REQ_ID), NOW)
    elif event is Event.RCN:
        lcp.receive(cp(Code.CONFIGURE_NAK, OUR_REQ_ID), NOW)
    elif event is Event.RTR:
        lcp.receive(cp(Code.TERMINATE_REQUEST, PEER_ID, b"bye"), NOW)
    elif event is Event.RTA:
        lcp.receive(cp(Code.TERMINATE_ACK, PEER_ID), NOW)
    elif event is Event.RUC:
        lcp.receive(cp(0x63, PEER_ID, b"??"), NOW)
    elif event is Event.RXJ_GOOD:
        lcp.receive(cp(Code.CODE_REJECT, PEER_ID, cp(Code.ECHO_REQUEST, 1, bytes(4))), NOW)
    elif event is Event.RXJ_BAD:
        lcp.receive(cp(Code.CODE_REJECT, PEER_ID, cp(Code.CONFIGURE_REQUEST, 1)), NOW)
    elif event is Event.RXR:
        lcp.receive(cp(Code.ECHO_REQUEST, PEER_ID, bytes(4) + b"ping"), NOW)
    else:  # pragma: no cover
        raise AssertionError(event)


@pytest.mark.parametrize("state,event", ALL_CELLS, ids=lambda x: x.name if isinstance(x, State) else x.value)
def test_machine_follows_rfc_cell(state: State, event: Event) -> None:
    lcp = machine_in(state)
    deliver(lcp, event)
    raw = lcp.take_output()
    assert all(proto == Protocol.LCP for proto, _ in raw)
    out = [decode_cp(payload) for _, payload in raw]
    evs = []
    while (ev := lcp.next_event()) is not None:
        evs.append(ev)
    cell = RFC[(state, event)]

    if cell is None:  # "-": an illegal event is counted and changes nothing
        assert out == [] and evs == []
        assert lcp.state is state
        assert any(name.startswith("illegal_") for name in lcp.counters), lcp.counters
        return

    actions, next_state = cell
    assert lcp.state is next_state
    expected_codes = []
    for action in actions:
        if action is Action.SCN:  # our RCR- carries an unknown option: a Configure-Reject
            expected_codes.append(Code.CONFIGURE_REJECT)
        elif action in EXPECTED_PACKET:
            expected_codes.append(EXPECTED_PACKET[action])
    assert [p.code for p in out] == expected_codes
    assert [type(e) for e in evs] == [EXPECTED_EVENT[a] for a in actions if a in EXPECTED_EVENT]

    # replies carry the identifier of the packet they answer
    for p in out:
        if p.code in (Code.CONFIGURE_ACK, Code.CONFIGURE_REJECT, Code.ECHO_REPLY):
            assert p.identifier == PEER_ID
        if p.code == Code.TERMINATE_ACK and event in (Event.RTR, Event.RCR_GOOD, Event.RCR_BAD, Event.RCA,
                                                      Event.RCN):
            assert p.identifier == (PEER_ID if event in (Event.RTR, Event.RCR_GOOD, Event.RCR_BAD) else OUR_REQ_ID)

    # restart counter and timer (RFC 1661 §4.4 irc/zrc/scr/str, §4.6)
    sends = sum(1 for a in actions if a in (Action.SCR, Action.STR))
    if Action.ZRC in actions:
        assert lcp.restart_count == 0
    elif Action.IRC in actions:
        full = 2 if next_state in (State.CLOSING, State.STOPPING) else 10
        assert lcp.restart_count == full - sends
    if next_state in TIMER_STATES and (sends or Action.ZRC in actions):
        assert lcp.get_timer() == NOW + 3.0
    if next_state not in TIMER_STATES:
        assert lcp.get_timer() is None
