"""Both roles over an in-memory link, with a fake clock: outcomes, exact timers, retries, bad input."""

from __future__ import annotations

import logging

import pytest
from tests.ppp.auth.authtrace import FakeRng
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp.errors import LocalUsageError
from fastl2tp.ppp.auth import (
    AuthConfig,
    AuthDecision,
    Authenticator,
    AuthFailed,
    AuthPeer,
    AuthState,
    AuthSucceeded,
    ChapAuthenticator,
    ChapPeer,
    MsChap2Credentials,
    PapAuthenticator,
    PapPeer,
    VerifyRequest,
    crypto,
    verify_locally,
)
from fastl2tp.wire.auth import (
    PROTO_CHAP,
    AuthMethod,
    ChapChallenge,
    ChapCode,
    ChapResponse,
    ChapStatus,
    MsChap2Response,
    MsChap2Success,
    PapCode,
    PapReply,
    decode_chap,
    decode_pap,
    encode_chap,
    encode_mschap2_response,
    encode_pap,
    format_mschap2_success,
    parse_mschap_failure,
)

PASSWORD = "s3cret-Pa55"
ALL = list(AuthMethod)
CHAPS = [AuthMethod.CHAP, AuthMethod.MSCHAP1, AuthMethod.MSCHAP2]


def events(m):
    out = []
    while (ev := m.next_event()) is not None:
        out.append(ev)
    return out


class Pair:
    """Authenticator and peer joined by a lossless in-memory link; the backend checks ``secret``."""

    def __init__(self, method, peer_password=PASSWORD, secret=PASSWORD, config=None):
        self.srv = Authenticator(method, b"lns", config=config)
        self.cli = AuthPeer(method, "alice", peer_password, config=config)
        self.secret = secret
        self.log: list[tuple[str, object]] = []

    def run(self, now=0.0, rounds=6):
        for _ in range(rounds):
            for proto, data in self.srv.take_output():
                assert proto == self.srv.method.protocol
                self.cli.receive(data, now)
            for _proto, data in self.cli.take_output():
                self.srv.receive(data, now)
            for ev in events(self.srv):
                self.log.append(("srv", ev))
                if isinstance(ev, VerifyRequest):
                    self.srv.complete(ev.request_id, verify_locally(ev, self.secret), now)
            for ev in events(self.cli):
                self.log.append(("cli", ev))
        return [(who, type(ev).__name__) for who, ev in self.log]


@pytest.mark.parametrize("method", ALL)
def test_success(method):
    p = Pair(method)
    p.srv.start(0.0)
    p.cli.start(0.0)
    assert p.run() == [("srv", "VerifyRequest"), ("srv", "AuthSucceeded"), ("cli", "AuthSucceeded")]
    assert p.srv.state is p.cli.state is AuthState.SUCCEEDED
    assert p.srv.get_timer() is None and p.cli.get_timer() is None and p.srv.done and p.cli.done
    srv_ok, cli_ok = p.log[1][1], p.log[2][1]
    assert srv_ok.username == "alice" and cli_ok.username == "alice"
    if method in (AuthMethod.MSCHAP1, AuthMethod.MSCHAP2):
        # both ends derive the same MPPE keys, mirrored
        s_send, s_recv = srv_ok.decision.keys.start_keys(is_server=True)
        c_send, c_recv = cli_ok.decision.keys.start_keys(is_server=False)
        assert (s_send, s_recv) == (c_recv, c_send)
    else:
        assert srv_ok.decision.keys is None


@pytest.mark.parametrize("method", ALL)
def test_wrong_password(method):
    p = Pair(method, peer_password="wrong")
    p.srv.start(0.0)
    p.cli.start(0.0)
    assert p.run() == [("srv", "VerifyRequest"), ("srv", "AuthFailed"), ("cli", "AuthFailed")]
    srv_fail, cli_fail = p.log[1][1], p.log[2][1]
    assert srv_fail.reason == "wrong password"
    if method in (AuthMethod.MSCHAP1, AuthMethod.MSCHAP2):
        assert srv_fail.error_code == cli_fail.error_code == 691
        assert cli_fail.reason == "E=691 authentication failure"
    elif method is AuthMethod.PAP:
        assert cli_fail.reason == "PAP Authenticate-Nak: Login incorrect"
    else:
        assert cli_fail.reason == "CHAP Failure: Access denied"
    assert p.srv.state is p.cli.state is AuthState.FAILED


def test_failure_log_has_user_and_reason_but_no_secret(caplog):
    for method in ALL:
        p = Pair(method, peer_password="wrong-" + PASSWORD)
        with caplog.at_level(logging.DEBUG, logger="fastl2tp"):
            p.srv.start(0.0)
            p.cli.start(0.0)
            p.run()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "authentication failed: user=alice method=mschap2 reason=wrong password" in text
    secrets = [PASSWORD, crypto.nt_password_hash(PASSWORD).hex(), crypto.nt_password_hash(PASSWORD).hex().upper()]
    for s in secrets:
        assert s not in text
    for _who, ev in p.log:
        assert PASSWORD not in repr(ev)
    assert PASSWORD not in repr(p.cli)


# --- timers ---


def test_chap_challenge_retransmission_timing():
    srv = Authenticator(AuthMethod.MSCHAP2, b"lns", rng=FakeRng(b"\x07", b"C" * 16))
    srv.start(100.0)
    first = srv.take_output()
    assert first == [(PROTO_CHAP, encode_chap(ChapChallenge(7, b"C" * 16, b"lns")))]
    assert srv.get_timer() == 103.0
    srv.handle_timer(102.999)
    assert srv.take_output() == []
    for n in range(1, 10):
        assert srv.get_timer() == 100.0 + 3 * n
        srv.handle_timer(100.0 + 3 * n)
        assert srv.take_output() == first  # the same Challenge: same Identifier, same value
    assert srv.get_timer() == 130.0
    assert events(srv) == []
    srv.handle_timer(130.0)
    assert srv.take_output() == []
    (ev,) = events(srv)
    assert isinstance(ev, AuthFailed) and ev.reason == "timeout: no response to CHAP Challenge"
    assert srv.get_timer() is None and srv.state is AuthState.FAILED


def test_timer_config():
    cfg = AuthConfig(restart_interval_s=1.5, max_transmits=2)
    srv = Authenticator(AuthMethod.CHAP, config=cfg)
    srv.start(0.0)
    srv.handle_timer(1.5)
    assert len(srv.take_output()) == 2
    srv.handle_timer(3.0)
    assert isinstance(events(srv)[0], AuthFailed)
    with pytest.raises(LocalUsageError):
        AuthConfig(max_transmits=0)


def test_pap_request_retransmission_timing_and_late_ack():
    cli = AuthPeer(AuthMethod.PAP, "alice", PASSWORD, rng=FakeRng(b"\xfe"))
    cli.start(10.0)
    ids = [decode_pap(cli.take_output()[0][1]).identifier]
    for n in range(1, 10):
        assert cli.get_timer() == 10.0 + 3 * n
        cli.handle_timer(10.0 + 3 * n)
        (out,) = cli.take_output()
        ids.append(decode_pap(out[1]).identifier)
    assert ids == [(0xFE + i) & 0xFF for i in range(10)]  # a new Identifier each time, wrapping
    # an Ack to an earlier transmission still counts
    cli.receive(encode_pap(PapReply(PapCode.AUTHENTICATE_ACK, 0xFF, b"hi")), 38.0)
    (ev,) = events(cli)
    assert isinstance(ev, AuthSucceeded) and ev.decision.message == "hi"
    assert cli.get_timer() is None


def test_pap_request_gives_up():
    cli = AuthPeer(AuthMethod.PAP, "alice", PASSWORD)
    cli.start(0.0)
    for n in range(1, 10):
        cli.handle_timer(3.0 * n)
    assert len(cli.take_output()) == 10
    cli.handle_timer(30.0)
    (ev,) = events(cli)
    assert isinstance(ev, AuthFailed) and ev.reason == "timeout: no reply to Authenticate-Request"
    cli.receive(encode_pap(PapReply(PapCode.AUTHENTICATE_ACK, 0, b"")), 31.0)
    assert events(cli) == [] and cli.dropped == 1


def test_waiting_sides_time_out():
    srv = Authenticator(AuthMethod.PAP)
    srv.start(5.0)
    assert srv.get_timer() == 35.0
    srv.handle_timer(35.0)
    assert events(srv)[0].reason == "timeout waiting for Authenticate-Request"
    cli = AuthPeer(AuthMethod.MSCHAP2, "alice", PASSWORD)
    cli.start(5.0)
    assert cli.get_timer() == 35.0
    cli.handle_timer(35.0)
    assert events(cli)[0].reason == "timeout waiting for CHAP Challenge"
    cli = AuthPeer(AuthMethod.CHAP, "alice", PASSWORD)
    cli.start(0.0)
    cli.receive(encode_chap(ChapChallenge(1, b"x" * 16)), 1.0)
    first = cli.take_output()
    # the Response is repeated every restart interval (a lost Success/Failure), then the peer gives up
    repeats = []
    while cli.get_timer() < 31.0:
        t = cli.get_timer()
        cli.handle_timer(t)
        assert cli.take_output() == first
        repeats.append(t)
    assert repeats == [4.0, 7.0, 10.0, 13.0, 16.0, 19.0, 22.0, 25.0, 28.0]
    assert cli.get_timer() == 31.0
    cli.handle_timer(31.0)
    assert events(cli)[0].reason == "timeout waiting for CHAP Success or Failure"


# --- duplicates, stale and hostile input ---


@pytest.mark.parametrize("method", CHAPS)
def test_lost_success_is_repeated(method):
    p = Pair(method)
    p.srv.start(0.0)
    p.cli.start(0.0)
    challenge = p.srv.take_output()
    p.cli.receive(challenge[0][1], 0.0)
    (response,) = p.cli.take_output()
    p.srv.receive(response[1], 0.0)
    p.srv.receive(response[1], 0.0)  # duplicate while verifying: dropped
    assert p.srv.dropped == 1
    (req,) = events(p.srv)
    p.srv.complete(req.request_id, verify_locally(req, PASSWORD), 0.0)
    (success,) = p.srv.take_output()
    # the Success is lost; the peer sees the Challenge again and answers identically
    p.srv.handle_timer(3.0)  # no retransmission once answered
    assert p.srv.take_output() == []
    p.cli.receive(challenge[0][1], 3.0)
    assert p.cli.take_output() == [response]
    p.srv.receive(response[1], 3.0)
    assert p.srv.take_output() == [success]
    p.cli.receive(success[1], 3.1)
    assert [type(e) for e in events(p.cli)] == [AuthSucceeded]
    assert [type(e) for e in events(p.srv)] == [AuthSucceeded]
    assert p.srv.complete(req.request_id, verify_locally(req, PASSWORD), 4.0) is False  # stale


def test_mschap2_peer_challenge_is_reused_for_a_repeated_challenge():
    rng = FakeRng(b"P" * 16)
    cli = AuthPeer(AuthMethod.MSCHAP2, "alice", PASSWORD, rng=rng)
    cli.start(0.0)
    challenge = encode_chap(ChapChallenge(9, b"A" * 16, b"lns"))
    cli.receive(challenge, 0.0)
    cli.receive(challenge, 3.0)
    a, b = cli.take_output()
    assert a == b and rng.asked == [16]


def test_pap_lost_ack_is_repeated_and_requests_during_verification_dropped():
    srv = Authenticator(AuthMethod.PAP)
    cli = AuthPeer(AuthMethod.PAP, "alice", PASSWORD, rng=FakeRng(b"\x05"))
    srv.start(0.0)
    cli.start(0.0)
    (req1,) = cli.take_output()
    srv.receive(req1[1], 0.0)
    srv.receive(req1[1], 0.0)
    assert srv.dropped == 1
    (vr,) = events(srv)
    srv.complete(vr.request_id, verify_locally(vr, PASSWORD), 0.5)
    (ack,) = srv.take_output()
    srv.receive(req1[1], 1.0)
    assert srv.take_output() == [ack]


def test_responses_with_other_identifiers_are_dropped():
    srv = Authenticator(AuthMethod.CHAP, rng=FakeRng(b"\x10", b"c" * 16))
    srv.start(0.0)
    srv.take_output()
    srv.receive(encode_chap(ChapResponse(0x11, b"r" * 16, b"alice")), 0.1)
    srv.receive(encode_chap(ChapResponse(0x10, b"short", b"alice")), 0.1)  # MD5 value must be 16
    srv.receive(encode_chap(ChapChallenge(0x10, b"x")), 0.1)
    assert srv.dropped == 3 and events(srv) == [] and srv.state is AuthState.WAITING
    cli = AuthPeer(AuthMethod.MSCHAP1, "alice", PASSWORD)
    cli.start(0.0)
    cli.receive(encode_chap(ChapChallenge(1, b"x" * 16)), 0.0)  # v1 challenges are 8 octets
    cli.receive(encode_chap(ChapStatus(ChapCode.SUCCESS, 1, b"")), 0.0)  # nothing answered yet
    assert cli.dropped == 2 and cli.take_output() == [] and events(cli) == []


MACHINES = [
    *(lambda m=m: Authenticator(m, b"lns") for m in ALL),
    *(lambda m=m: AuthPeer(m, "alice", PASSWORD) for m in ALL),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=8), st.integers(0, len(MACHINES) - 1))
def test_garbage_never_raises(packets, which):
    m = MACHINES[which]()
    m.start(0.0)
    for i, data in enumerate(packets):
        m.receive(data, float(i))
        for ev in events(m):
            if isinstance(ev, VerifyRequest):
                m.complete(ev.request_id, AuthDecision(False, reason="nope"), float(i))
        m.handle_timer(float(i) * 10)
        m.take_output()


def test_class_dispatch():
    assert type(Authenticator(AuthMethod.PAP)) is PapAuthenticator
    assert type(Authenticator(method=AuthMethod.MSCHAP1)) is ChapAuthenticator
    assert type(AuthPeer(AuthMethod.PAP, "a", "b")) is PapPeer
    assert type(AuthPeer(AuthMethod.CHAP, b"a", "b")) is ChapPeer
    assert isinstance(ChapAuthenticator(AuthMethod.CHAP), Authenticator)


# --- MS-CHAP specifics ---


def _mschap2_exchange(**srv_kwargs):
    srv = Authenticator(AuthMethod.MSCHAP2, b"lns", rng=FakeRng(b"\x01", b"A" * 16), **srv_kwargs)
    cli = AuthPeer(AuthMethod.MSCHAP2, "alice", PASSWORD, rng=FakeRng(b"P" * 16))
    srv.start(0.0)
    cli.start(0.0)
    cli.receive(srv.take_output()[0][1], 0.0)
    (resp,) = cli.take_output()
    return srv, cli, resp


def test_mschap2_client_rejects_a_wrong_authenticator_response():
    srv, cli, resp = _mschap2_exchange()
    bad = format_mschap2_success(MsChap2Success(b"\x00" * 20, "Access granted"))
    cli.receive(encode_chap(ChapStatus(ChapCode.SUCCESS, 1, bad)), 0.1)
    (ev,) = events(cli)
    assert isinstance(ev, AuthFailed) and "S=" in ev.reason and cli.state is AuthState.FAILED


def test_mschap2_client_rejects_a_success_without_s():
    srv, cli, resp = _mschap2_exchange()
    cli.receive(encode_chap(ChapStatus(ChapCode.SUCCESS, 1, b"Access granted")), 0.1)
    (ev,) = events(cli)
    assert isinstance(ev, AuthFailed) and ev.reason == "malformed MS-CHAPv2 Success (no valid S=)"


def test_mschap2_backend_authenticator_response_is_used_verbatim_and_required():
    srv, cli, resp = _mschap2_exchange()
    srv.receive(resp[1], 0.0)
    (req,) = events(srv)
    local = verify_locally(req, PASSWORD)
    radius_like = AuthDecision(True, authenticator_response=local.authenticator_response, message="Welcome",
                               attributes={"Framed-IP-Address": "10.0.0.2"})
    srv.complete(req.request_id, radius_like, 0.1)
    (success,) = srv.take_output()
    assert decode_chap(success[1]).message == (local.authenticator_response + " M=Welcome").encode()
    (ok,) = events(srv)
    assert ok.decision.attributes["Framed-IP-Address"] == "10.0.0.2" and ok.decision.keys is None
    cli.receive(success[1], 0.2)
    assert isinstance(events(cli)[0], AuthSucceeded)

    srv, cli, resp = _mschap2_exchange()
    srv.receive(resp[1], 0.0)
    (req,) = events(srv)
    srv.complete(req.request_id, AuthDecision(True), 0.1)  # no S=: fail closed
    (failure,) = srv.take_output()
    assert decode_chap(failure[1]).code is ChapCode.FAILURE
    (ev,) = events(srv)
    assert isinstance(ev, AuthFailed) and ev.reason == "backend accepted without an authenticator response"


def test_mschap2_win98_flags_get_no_m_part():
    srv = Authenticator(AuthMethod.MSCHAP2, b"lns", rng=FakeRng(b"\x01", b"A" * 16))
    srv.start(0.0)
    srv.take_output()
    peer_ch = b"P" * 16
    nt = crypto.generate_nt_response(b"A" * 16, peer_ch, b"alice", crypto.nt_password_hash(PASSWORD))
    value = encode_mschap2_response(MsChap2Response(peer_ch, nt, 0x04))
    srv.receive(encode_chap(ChapResponse(1, value, b"alice")), 0.0)
    (req,) = events(srv)
    assert isinstance(req.credentials, MsChap2Credentials) and req.credentials.flags == 4
    srv.complete(req.request_id, verify_locally(req, PASSWORD), 0.0)
    (success,) = srv.take_output()
    assert decode_chap(success[1]).message.startswith(b"S=") and b"M=" not in decode_chap(success[1]).message


def test_mschap2_retry_after_failure():
    cfg = AuthConfig(mschap_max_retries=1)
    srv = Authenticator(AuthMethod.MSCHAP2, b"lns", rng=FakeRng(b"\x01", b"A" * 16, b"B" * 16, b"C" * 16),
                        config=cfg)
    srv.start(0.0)
    srv.take_output()

    def respond(identifier, challenge, password):
        nt = crypto.generate_nt_response(challenge, b"P" * 16, b"alice", crypto.nt_password_hash(password))
        value = encode_mschap2_response(MsChap2Response(b"P" * 16, nt))
        srv.receive(encode_chap(ChapResponse(identifier, value, b"alice")), 1.0)
        (req,) = events(srv)
        srv.complete(req.request_id, verify_locally(req, PASSWORD), 1.0)
        (out,) = srv.take_output()
        return decode_chap(out[1])

    first = respond(1, b"A" * 16, "typo")
    f = parse_mschap_failure(first.message)
    assert (first.code, f.error, f.retry, f.challenge, f.version) == (ChapCode.FAILURE, 691, True, b"B" * 16, 3)
    assert events(srv) == [] and srv.state is AuthState.RETRY_WAIT and srv.get_timer() == 61.0
    # the old Response again (our Failure was lost): the Failure is repeated, no retry is used up
    nt = crypto.generate_nt_response(b"A" * 16, b"P" * 16, b"alice", crypto.nt_password_hash("typo"))
    srv.receive(encode_chap(ChapResponse(1, encode_mschap2_response(MsChap2Response(b"P" * 16, nt)), b"alice")), 2)
    assert [decode_chap(d) for _, d in srv.take_output()] == [first] and events(srv) == []
    second = respond(2, b"B" * 16, "typo again")  # Identifier one greater than the Failure's
    f2 = parse_mschap_failure(second.message)
    assert (f2.retry, f2.challenge) == (False, b"C" * 16)
    (ev,) = events(srv)
    assert isinstance(ev, AuthFailed) and ev.error_code == 691


def test_mschap1_retry_then_success_and_retry_timeout():
    cfg = AuthConfig(mschap_max_retries=2)
    srv = Authenticator(AuthMethod.MSCHAP1, b"lns", rng=FakeRng(b"\x01", b"A" * 8, b"B" * 8), config=cfg)
    srv.start(0.0)
    srv.take_output()

    def send(identifier, challenge, password):
        from fastl2tp.wire.auth import MsChap1Response, encode_mschap1_response

        nt = crypto.nt_challenge_response(challenge, crypto.nt_password_hash(password))
        srv.receive(encode_chap(ChapResponse(identifier, encode_mschap1_response(MsChap1Response(bytes(24), nt)),
                                             b"alice")), 1.0)
        (req,) = events(srv)
        srv.complete(req.request_id, verify_locally(req, PASSWORD), 1.0)
        return decode_chap(srv.take_output()[0][1])

    first = send(1, b"A" * 8, "typo")
    assert first.message == b"E=691 R=1 C=4242424242424242"
    ok = send(2, b"B" * 8, PASSWORD)
    assert ok.code is ChapCode.SUCCESS and ok.identifier == 2
    assert isinstance(events(srv)[0], AuthSucceeded)

    srv = Authenticator(AuthMethod.MSCHAP1, b"lns", config=cfg)
    srv.start(0.0)
    cli = AuthPeer(AuthMethod.MSCHAP1, "alice", "typo")
    cli.start(0.0)
    cli.receive(srv.take_output()[0][1], 0.0)
    srv.receive(cli.take_output()[0][1], 0.0)
    (req,) = events(srv)
    srv.complete(req.request_id, verify_locally(req, PASSWORD), 0.5)
    assert srv.get_timer() == 60.5
    srv.handle_timer(60.5)
    (ev,) = events(srv)
    assert isinstance(ev, AuthFailed) and ev.reason == "timeout waiting for the retried response"


def test_mschap1_lm_only_response_refused_unless_allowed():
    from fastl2tp.wire.auth import MsChap1Response, encode_mschap1_response

    srv = Authenticator(AuthMethod.MSCHAP1, rng=FakeRng(b"\x01", b"A" * 8))
    srv.start(0.0)
    lm = crypto.lm_challenge_response(b"A" * 8, crypto.lm_password_hash(PASSWORD))
    srv.receive(encode_chap(ChapResponse(1, encode_mschap1_response(MsChap1Response(lm, bytes(24), 0)), b"a")), 0)
    (req,) = events(srv)
    assert verify_locally(req, PASSWORD).reason == "LM-only MS-CHAPv1 response not accepted"
    assert verify_locally(req, PASSWORD, allow_lm_response=True).accepted
    assert not verify_locally(req, "other", allow_lm_response=True).accepted


def test_chap_rechallenge():
    cfg = AuthConfig(rechallenge_interval_s=600.0)
    p = Pair(AuthMethod.CHAP, config=cfg)
    p.srv.start(0.0)
    p.cli.start(0.0)
    p.run(now=1.0)
    assert p.srv.get_timer() == 601.0
    p.srv.handle_timer(601.0)
    assert p.srv.state is AuthState.WAITING and p.srv.get_timer() == 604.0
    p.log.clear()
    assert p.run(now=601.0) == [("srv", "VerifyRequest")]  # passed quietly
    assert p.srv.state is AuthState.SUCCEEDED and p.srv.get_timer() == 1201.0
    p.secret = "changed"
    p.srv.handle_timer(1201.0)
    p.log.clear()
    assert p.run(now=1201.0) == [("srv", "VerifyRequest"), ("srv", "AuthFailed"), ("cli", "AuthFailed")]


def test_decision_reason_and_message_flow_to_the_peer():
    srv = Authenticator(AuthMethod.PAP)
    srv.start(0.0)
    cli = AuthPeer(AuthMethod.PAP, "bob", "x")
    cli.start(0.0)
    srv.receive(cli.take_output()[0][1], 0.0)
    (req,) = events(srv)
    srv.complete(req.request_id, AuthDecision(False, reason="user unknown", message="Go away"), 0.0)
    cli.receive(srv.take_output()[0][1], 0.0)
    assert events(srv)[0].reason == "user unknown"
    assert events(cli)[0].reason == "PAP Authenticate-Nak: Go away"
