"""fastl2tp.radius.client: retransmission, failover, dead servers, identifiers, accounting queue.

A fake clock (explicit ``now``) and servers played by the helpers of tests/radius_unit."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from fastl2tp.errors import LocalUsageError
from fastl2tp.radius.client import (
    AccountingDone,
    AccountingFailed,
    AuthDone,
    AuthFailed,
    ClientConfig,
    RadiusClient,
    RadiusServer,
)
from fastl2tp.radius.packets import (
    AccessRequest,
    AccountingRequest,
    AcctStatusType,
    Nas,
    PapPassword,
)

from . import CountingRng, attr, sign_reply, u32, values

SECRET_A = b"secret-a"
SECRET_B = b"secret-b"
A = RadiusServer("10.0.0.1", SECRET_A)
B = RadiusServer("10.0.0.2", SECRET_B, timeout_s=2.0)
NAS = Nas(IPv4Address("192.0.2.1"))
SECRETS = {"10.0.0.1": SECRET_A, "10.0.0.2": SECRET_B}


def login(user=b"alice") -> AccessRequest:
    return AccessRequest(user, PapPassword(b"pw"), NAS, acct_session_id="1")


def acct(n=1) -> AccountingRequest:
    return AccountingRequest(AcctStatusType.INTERIM_UPDATE, NAS, acct_session_id=str(n), session_time_s=n)


def client(*servers, **cfg) -> RadiusClient:
    return RadiusClient(list(servers or (A, B)), rng=CountingRng(), config=ClientConfig(**cfg))


def answer(dgram, code=2, attrs=b"", secret=None) -> bytes:
    """The server's reply to a datagram ``(address, port, data)``."""
    address, _, data = dgram
    secret = secret or SECRETS[address]
    with_ma = data[0] == 1
    return sign_reply(code, data[1], data[4:20], attrs, secret, with_ma=with_ma)


def advance(c: RadiusClient, now: float) -> None:
    """Move the fake clock to ``now``: fire every deadline up to it, each at its own time (the sums of
    timeouts are floats: 2.2 + 1.1 is a hair above 3.3)."""
    while (deadline := c.get_timer()) is not None and deadline <= now + 1e-9:
        c.handle_timer(deadline)


def deliver(c: RadiusClient, dgram, reply: bytes, now: float) -> bool:
    return c.receive_datagram(reply, (dgram[0], dgram[1]), now)


def test_accept_from_the_first_server():
    c = client()
    handle = c.authenticate(login(), 0.0)
    (d,) = c.datagrams_to_send()
    assert d[:2] == ("10.0.0.1", 1812) and d[2][0] == 1
    assert c.get_timer() == pytest.approx(1.1)
    assert deliver(c, d, answer(d, attrs=attr(8, bytes((10, 9, 9, 9))) + attr(27, u32(60))), 0.2)
    (ev,) = c.take_events()
    assert isinstance(ev, AuthDone) and ev.handle == handle and ev.server == ("10.0.0.1", 1812)
    assert ev.result.accepted and str(ev.result.framed_ip_address) == "10.9.9.9" and ev.result.session_timeout_s == 60
    assert c.get_timer() is None and c.pending == 0 and c.next_event() is None


def test_reject_is_done_not_failed():
    c = client()
    h = c.authenticate(login(), 0.0)
    (d,) = c.datagrams_to_send()
    deliver(c, d, answer(d, code=3), 0.1)
    assert [type(e) for e in c.take_events()] == [AuthDone]
    assert c.stats["replies"] == 1 and h == 1


def test_retransmit_identical_at_the_timeout_then_failover_then_fail():
    c = client()
    h = c.authenticate(login(), 0.0)
    (first,) = c.datagrams_to_send()
    advance(c, 1.0)
    assert c.datagrams_to_send() == [] and c.get_timer() == pytest.approx(1.1)
    advance(c, 1.1)
    assert c.datagrams_to_send() == [first]  # byte for byte: same identifier and authenticator
    assert c.get_timer() == pytest.approx(2.2)
    advance(c, 2.2)
    assert c.datagrams_to_send() == [first]
    advance(c, 3.3)  # three sends unanswered: A is dead, on to B
    (to_b,) = c.datagrams_to_send()
    assert to_b[:2] == ("10.0.0.2", 1812)
    assert to_b[2][4:20] != first[2][4:20]  # a new Request Authenticator, User-Password hidden with B's secret
    assert values(to_b[2], 2) != values(first[2], 2)
    assert c.is_dead(("10.0.0.1", 1812), 3.3) and c.stats["failovers"] == 1
    assert c.get_timer() == pytest.approx(5.3)  # B's own timeout, 2 s
    advance(c, 5.3)
    advance(c, 7.3)
    assert len(c.datagrams_to_send()) == 2 and c.take_events() == []
    advance(c, 9.3)
    (ev,) = c.take_events()
    assert isinstance(ev, AuthFailed) and ev.handle == h
    assert "10.0.0.1:1812" in ev.reason and "10.0.0.2:1812" in ev.reason
    assert c.stats["retransmits"] == 4 and c.stats["timeouts"] == 2 and c.stats["auth_failed"] == 1
    assert c.get_timer() is None and c.datagrams_to_send() == [] and c.pending == 0


def test_answer_after_failover_from_the_second_server():
    c = client()
    c.authenticate(login(), 0.0)
    c.datagrams_to_send()
    for t in (1.1, 2.2, 3.3):
        advance(c, t)
    to_b = c.datagrams_to_send()[-1]
    assert deliver(c, to_b, answer(to_b), 3.5)
    (ev,) = c.take_events()
    assert isinstance(ev, AuthDone) and ev.server == ("10.0.0.2", 1812)


def test_late_answer_from_the_first_server_after_failover_is_accepted_once():
    c = client()
    h = c.authenticate(login(), 0.0)
    (to_a,) = c.datagrams_to_send()
    for t in (1.1, 2.2, 3.3):
        advance(c, t)
    to_b = c.datagrams_to_send()[-1]
    assert to_b[0] == "10.0.0.2"
    # A answers late: its identifier was kept, the answer is checked against A's request and accepted
    assert deliver(c, to_a, answer(to_a), 3.4)
    (ev,) = c.take_events()
    assert isinstance(ev, AuthDone) and ev.handle == h and ev.server == ("10.0.0.1", 1812)
    assert not c.is_dead(("10.0.0.1", 1812), 3.4)  # it answered: alive again
    # B's answer comes after: nothing waits for it any more
    assert not deliver(c, to_b, answer(to_b), 3.5)
    assert c.take_events() == [] and c.stats["unexpected"] == 1
    assert c.get_timer() is None


def test_dead_server_holddown_then_first_again():
    c = client(dead_time_s=10.0)
    c.authenticate(login(), 0.0)
    c.datagrams_to_send()
    for t in (1.1, 2.2, 3.3):
        advance(c, t)
    to_b = c.datagrams_to_send()[-1]
    deliver(c, to_b, answer(to_b), 3.4)
    c.take_events()
    # while A is dead, new logins go to B first
    c.authenticate(login(b"bob"), 5.0)
    (d,) = c.datagrams_to_send()
    assert d[0] == "10.0.0.2"
    deliver(c, d, answer(d), 5.1)
    # the holddown over (3.3 + 10), A is first again
    c.authenticate(login(b"carol"), 13.3)
    (d,) = c.datagrams_to_send()
    assert d[0] == "10.0.0.1"


def test_dead_servers_are_still_tried_when_all_are_dead():
    c = client()
    c.authenticate(login(), 0.0)
    for t in (1.1, 2.2, 3.3, 5.3, 7.3, 9.3):
        advance(c, t)
    assert isinstance(c.take_events()[0], AuthFailed)
    c.datagrams_to_send()
    assert c.is_dead(("10.0.0.1", 1812), 9.3) and c.is_dead(("10.0.0.2", 1812), 9.3)
    c.authenticate(login(b"bob"), 10.0)
    (d,) = c.datagrams_to_send()
    assert d[0] == "10.0.0.1"  # both dead: still asked, in the configured order
    assert deliver(c, d, answer(d), 10.1)
    assert isinstance(c.take_events()[0], AuthDone)


def test_identifiers_unique_per_destination_and_stall_when_exhausted():
    c = client(A)
    for i in range(256):
        c.authenticate(login(), 0.0)
    out = c.datagrams_to_send()
    ids = [d[2][1] for d in out]
    assert sorted(ids) == list(range(256))
    # the first identifier came from the rng (CountingRng: 0), then in order
    assert ids[:3] == [0, 1, 2]
    h = c.authenticate(login(b"waiting"), 0.5)
    assert c.datagrams_to_send() == [] and c.pending == 257
    # an answer frees identifier 5: the waiting request takes it at once
    deliver(c, out[5], answer(out[5]), 0.6)
    (d,) = c.datagrams_to_send()
    assert d[2][1] == 5 and values(d[2], 1) == [b"waiting"]
    assert c.get_timer() == pytest.approx(1.1)
    deliver(c, d, answer(d), 0.7)
    assert [e.handle for e in c.take_events()] == [6, h]


def test_identifier_not_reused_while_in_flight_and_separate_per_port():
    c = client(A)
    c.authenticate(login(), 0.0)
    c.account(acct(), 0.0)
    auth, accounting = c.datagrams_to_send()
    assert auth[1] == 1812 and accounting[1] == 1813
    c.authenticate(login(), 0.0)
    (second,) = c.datagrams_to_send()
    assert second[2][1] != auth[2][1]


def test_forged_or_misaddressed_replies_are_dropped_and_the_request_goes_on():
    c = client()
    c.authenticate(login(), 0.0)
    (d,) = c.datagrams_to_send()
    assert not deliver(c, d, answer(d, secret=b"guess"), 0.1)
    assert c.stats["bad_replies"] == 1 and "Response Authenticator" in c.last_bad_reply
    assert not c.receive_datagram(answer(d), ("10.0.0.2", 1812), 0.1)  # right bytes, wrong server
    assert not c.receive_datagram(answer(d), ("10.0.0.1", 1813), 0.1)
    assert not c.receive_datagram(b"short", ("10.0.0.1", 1812), 0.1)
    assert c.stats["unexpected"] == 2 and c.stats["malformed"] == 1
    assert c.take_events() == [] and c.pending == 1
    assert c.receive_datagram(answer(d), ("::ffff:10.0.0.1", 1812), 0.2)  # a dual-stack socket's view
    assert isinstance(c.take_events()[0], AuthDone)


def test_cancel_frees_the_request():
    c = client()
    h = c.authenticate(login(), 0.0)
    (d,) = c.datagrams_to_send()
    assert c.cancel(h, 0.1) and not c.cancel(h, 0.1)
    assert c.get_timer() is None and c.pending == 0
    assert not deliver(c, d, answer(d), 0.2)
    advance(c, 5.0)
    assert c.take_events() == [] and c.datagrams_to_send() == []


def test_no_server_fails_at_once():
    c = RadiusClient([], rng=CountingRng())
    h = c.authenticate(login(), 0.0)
    a = c.account(acct(), 0.0)
    assert c.take_events() == [AuthFailed(h, "no RADIUS server configured"),
                               AccountingFailed(a, "no RADIUS server configured")]
    with pytest.raises(LocalUsageError):
        c.authenticate(acct(), 0.0)
    with pytest.raises(LocalUsageError):
        RadiusServer("radius.example", b"x")


# --- accounting ------------------------------------------------------------------------------------


def acct_answer(dgram) -> bytes:
    address, _, data = dgram
    return sign_reply(5, data[1], data[4:20], b"", SECRETS[address], with_ma=False)


def test_accounting_done_and_failover_with_delay_time():
    c = client()
    h = c.account(acct(), 0.0)
    (first,) = c.datagrams_to_send()
    assert first[:2] == ("10.0.0.1", 1813) and values(first[2], 41) == [u32(0)]
    for t in (1.1, 2.2, 3.3):
        advance(c, t)
    to_b = c.datagrams_to_send()[-1]
    assert to_b[:2] == ("10.0.0.2", 1813)
    assert values(to_b[2], 41) == [u32(3)]  # Acct-Delay-Time: it waited 3.3 s
    assert deliver(c, to_b, acct_answer(to_b), 4.0)
    assert c.take_events() == [AccountingDone(h, ("10.0.0.2", 1813))]
    # the accounting port's death does not touch the authentication port's
    assert c.is_dead(("10.0.0.1", 1813), 4.0) and not c.is_dead(("10.0.0.1", 1812), 4.0)


def test_accounting_never_blocks_authentication():
    c = client(A, max_accounting_in_flight=2, max_accounting_queued=3)
    handles = [c.account(acct(n), 0.0) for n in range(6)]
    sent = c.datagrams_to_send()
    assert len(sent) == 2 and all(d[1] == 1813 for d in sent)
    # the queue holds 3: the oldest queued one (the 3rd) fails when the 6th comes
    assert c.take_events() == [AccountingFailed(handles[2], "accounting queue full")]
    assert c.stats["accounting_dropped"] == 1
    # authentication goes out at once, however full accounting is
    h = c.authenticate(login(), 0.5)
    (d,) = c.datagrams_to_send()
    assert d[1] == 1812
    deliver(c, d, answer(d), 0.6)
    (ev,) = c.take_events()
    assert isinstance(ev, AuthDone) and ev.handle == h and ev.result.accepted
    # an accounting answer lets the next queued one go
    deliver(c, sent[0], acct_answer(sent[0]), 0.7)
    (nxt,) = c.datagrams_to_send()
    assert values(nxt[2], 44) == [b"3"]
    assert isinstance(c.take_events()[0], AccountingDone)


def test_accounting_and_authentication_answered_independently():
    c = client(A, max_accounting_in_flight=1)
    a1 = c.account(acct(1), 0.0)
    c.account(acct(2), 0.0)
    h = c.authenticate(login(), 0.0)
    acct1, auth = c.datagrams_to_send()
    deliver(c, auth, answer(auth), 0.1)
    ev = c.take_events()
    assert len(ev) == 1 and isinstance(ev[0], AuthDone) and ev[0].handle == h and ev[0].result.accepted
    # the unanswered accounting request times out on its own schedule; auth was not held up
    for t in (1.1, 2.2):
        advance(c, t)
    assert c.datagrams_to_send() == [acct1, acct1]
    advance(c, 3.3)
    assert c.take_events() == [AccountingFailed(a1, "no answer from 10.0.0.1:1813")]
    (acct2,) = c.datagrams_to_send()  # the queue moves on
    assert values(acct2[2], 44) == [b"2"]


def test_get_timer_is_the_earliest_deadline():
    c = client(A, RadiusServer("10.0.0.3", b"s3", timeout_s=0.5))
    c.authenticate(login(), 0.0)
    c.authenticate(login(), 0.3)
    assert c.get_timer() == pytest.approx(1.1)
    advance(c, 1.1)
    assert c.get_timer() == pytest.approx(1.4)


def test_set_servers_applies_to_new_requests():
    c = client()
    c.authenticate(login(), 0.0)
    c.datagrams_to_send()
    c.set_servers([RadiusServer("10.0.0.9", b"new")])
    c.authenticate(login(), 0.1)
    (d,) = c.datagrams_to_send()
    assert d[0] == "10.0.0.9"
    advance(c, 1.1)
    assert [x[0] for x in c.datagrams_to_send()] == ["10.0.0.1"]  # the old request keeps its list


def test_cancel_queued_accounting_and_zero_queue():
    c = client(A, max_accounting_in_flight=1, max_accounting_queued=1)
    first = c.account(acct(1), 0.0)
    queued = c.account(acct(2), 0.0)
    assert len(c.datagrams_to_send()) == 1 and c.take_events() == []
    assert c.cancel(queued, 0.1) and c.pending == 1
    c.cancel(first, 0.2)
    assert c.datagrams_to_send() == [] and c.pending == 0
    # with no queue at all, what can go out at once still does
    c2 = client(A, max_accounting_in_flight=1, max_accounting_queued=0)
    c2.account(acct(1), 0.0)
    dropped = c2.account(acct(2), 0.0)
    assert len(c2.datagrams_to_send()) == 1
    assert c2.take_events() == [AccountingFailed(dropped, "accounting queue full")]


def test_unsigned_replies_refused_unless_the_server_is_marked_legacy():
    """A server that does not sign its Access replies (FreeRADIUS < 3.2.5 without
    ``Message-Authenticator := 0x00`` in the reply) fails logins, and the failure says why."""
    c = client(A)
    h = c.authenticate(login(), 0.0)
    (d,) = c.datagrams_to_send()
    unsigned = sign_reply(2, d[2][1], d[2][4:20], b"", SECRET_A, with_ma=False)
    assert not deliver(c, d, unsigned, 0.1)
    advance(c, 3.3)
    (ev,) = c.take_events()
    assert isinstance(ev, AuthFailed) and ev.handle == h and "Message-Authenticator" in ev.reason
    legacy = client(RadiusServer("10.0.0.1", SECRET_A, require_message_authenticator=False))
    legacy.authenticate(login(), 0.0)
    (d,) = legacy.datagrams_to_send()
    assert values(d[2], 80)  # still sent with one
    assert deliver(legacy, d, sign_reply(2, d[2][1], d[2][4:20], b"", SECRET_A, with_ma=False), 0.1)
    # a present Message-Authenticator is checked even then
    legacy.authenticate(login(), 1.0)
    (d,) = legacy.datagrams_to_send()
    forged = sign_reply(2, d[2][1], d[2][4:20], b"", SECRET_A, ma_vector=bytes(16))
    assert not deliver(legacy, d, forged, 1.1)
