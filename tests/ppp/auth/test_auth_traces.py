"""Real peers: pppd 2.4.9 (both roles, linux-xl2tpd-pppd) and SoftEther 5.01 (LNS), user ex / lkjrht.

Server role: pppd's (the LAC's) Response goes into our Authenticator with pppd's challenge injected;
verify_locally accepts it and our Success is byte for byte what pppd's LNS sent. Client role: the LNS's
Challenge goes into our AuthPeer (MS-CHAPv2's peer challenge injected) and our Response is byte for
byte what pppd's LAC sent; the LNS's Success then authenticates the server.
"""

from __future__ import annotations

import pytest
from tests.ppp.auth.authtrace import FakeRng, auth_frames, traces_dir

from fastl2tp.ppp.auth import (
    Authenticator,
    AuthFailed,
    AuthPeer,
    AuthSucceeded,
    VerifyRequest,
    crypto,
    verify_locally,
)
from fastl2tp.wire.auth import (
    PROTO_CHAP,
    PROTO_PAP,
    AuthMethod,
    ChapChallenge,
    ChapResponse,
    ChapStatus,
    PapReply,
    PapRequest,
    decode_chap,
    decode_mschap2_response,
    decode_pap,
    parse_mschap2_success,
    parse_mschap_failure,
)

PASSWORD = "lkjrht"
PPPD = "linux-xl2tpd-pppd"


def exchange(name: str, count: int = 3):
    frames = auth_frames(traces_dir() / name)
    assert len(frames) >= count
    return frames[:count]


def events(machine):
    out = []
    while (ev := machine.next_event()) is not None:
        out.append(ev)
    return out


CHAP_TRACES = [
    (f"{PPPD}/chap-md5.pcap", AuthMethod.CHAP),
    (f"{PPPD}/mschapv1-mppe128.pcap", AuthMethod.MSCHAP1),
    (f"{PPPD}/mschapv2-mppe128.pcap", AuthMethod.MSCHAP2),
    (f"{PPPD}/mschapv2-mppe40.pcap", AuthMethod.MSCHAP2),
]


@pytest.mark.parametrize("trace, method", CHAP_TRACES)
def test_pppd_lac_response_accepted_and_our_success_matches_pppd_lns(trace, method):
    challenge_f, response_f, success_f = exchange(trace)
    challenge = decode_chap(challenge_f.payload)
    assert isinstance(challenge, ChapChallenge)
    from fastl2tp.ppp.auth.base import AuthConfig

    config = AuthConfig(challenge_len=len(challenge.value))  # pppd picks 16..24 octets for MD5
    srv = Authenticator(method, b"st-lns", rng=FakeRng(bytes([challenge.identifier]), challenge.value), config=config)
    srv.start(0.0)
    assert srv.take_output() == [(PROTO_CHAP, challenge_f.payload)]  # our Challenge is pppd's, byte for byte

    srv.receive(response_f.payload, 0.02)
    (req,) = events(srv)
    assert isinstance(req, VerifyRequest) and req.name == b"ex" and req.method is method
    decision = verify_locally(req, PASSWORD)
    assert decision.accepted
    assert not verify_locally(req, "lkjrhT").accepted
    srv.complete(req.request_id, decision, 0.03)
    assert srv.take_output() == [(PROTO_CHAP, success_f.payload)]
    (ok,) = events(srv)
    assert isinstance(ok, AuthSucceeded) and ok.username == "ex"
    if method is AuthMethod.MSCHAP2:
        status = decode_chap(success_f.payload)
        assert isinstance(status, ChapStatus)
        assert decision.authenticator_response == status.message[:42].decode()
        assert ok.decision.keys is not None and ok.decision.keys.master_key is not None
    if method is AuthMethod.MSCHAP1:
        assert ok.decision.keys is not None and ok.decision.keys.challenge == challenge.value


@pytest.mark.parametrize("trace, method", CHAP_TRACES)
def test_our_response_to_pppd_lns_challenge_is_pppds(trace, method):
    challenge_f, response_f, success_f = exchange(trace)
    response = decode_chap(response_f.payload)
    assert isinstance(response, ChapResponse)
    scripted = []
    if method is AuthMethod.MSCHAP2:
        scripted.append(decode_mschap2_response(response.value).peer_challenge)
    cli = AuthPeer(method, "ex", PASSWORD, rng=FakeRng(*scripted))
    cli.start(0.0)
    cli.receive(challenge_f.payload, 0.01)
    assert cli.take_output() == [(PROTO_CHAP, response_f.payload)]
    cli.receive(success_f.payload, 0.02)
    (ok,) = events(cli)
    assert isinstance(ok, AuthSucceeded)
    if method in (AuthMethod.MSCHAP1, AuthMethod.MSCHAP2):
        assert ok.decision.keys is not None


def test_pppd_log_second_mschapv2_session():
    """The LNS console log holds a second MS-CHAPv2 login (not in the pcap): check it too."""
    auth_ch = bytes.fromhex("9874c05f24b888bcdd5ba3d8371998d1")
    value = bytes.fromhex(
        "0dcae6467b6e06ddf4581dd2529f196600000000000000002c06a4bc5df4b588303a5d4b1477da8965234c1cde6217d100"
    )
    resp = decode_mschap2_response(value)
    pw_hash = crypto.nt_password_hash(PASSWORD)
    assert crypto.generate_nt_response(auth_ch, resp.peer_challenge, b"ex", pw_hash) == resp.nt_response
    assert (
        crypto.generate_authenticator_response(pw_hash, resp.nt_response, resp.peer_challenge, auth_ch, b"ex")
        == "S=887AF2D6F8E90EDA64A6A991314FBB1D98A225B3"
    )


def test_pppd_pap_both_roles():
    request_f, ack_f = exchange(f"{PPPD}/pap-nomppe.pcap", 2)
    request = decode_pap(request_f.payload)
    assert isinstance(request, PapRequest) and request.peer_id == b"ex"

    srv = Authenticator(AuthMethod.PAP, b"st-lns")
    srv.start(0.0)
    assert srv.take_output() == []  # PAP: the peer speaks first
    srv.receive(request_f.payload, 0.1)
    (req,) = events(srv)
    srv.complete(req.request_id, verify_locally(req, PASSWORD), 0.1)
    assert srv.take_output() == [(PROTO_PAP, ack_f.payload)]  # "Login ok", pppd's default text
    assert isinstance(events(srv)[0], AuthSucceeded)

    cli = AuthPeer(AuthMethod.PAP, "ex", PASSWORD, rng=FakeRng(bytes([request.identifier])))
    cli.start(0.0)
    assert cli.take_output() == [(PROTO_PAP, request_f.payload)]
    cli.receive(ack_f.payload, 0.1)
    (ok,) = events(cli)
    assert isinstance(ok, AuthSucceeded) and ok.decision.message == "Login ok"


def test_softether_pap_ack_without_msg_length():
    request_f, ack_f = exchange("softether/pap-ipcp-ping.pcap", 2)
    assert len(ack_f.payload) == 4
    ack = decode_pap(ack_f.payload)
    assert ack == PapReply(ack.code, ack.identifier, b"")
    request = decode_pap(request_f.payload)
    cli = AuthPeer(AuthMethod.PAP, "ex", PASSWORD, rng=FakeRng(bytes([request.identifier])))
    cli.start(0.0)
    assert cli.take_output() == [(PROTO_PAP, request_f.payload)]
    cli.receive(ack_f.payload, 0.01)
    assert isinstance(events(cli)[0], AuthSucceeded)


def test_softether_mschapv2_success_without_m():
    challenge_f, response_f, success_f = exchange("softether/mschapv2-ipcp-ping.pcap")
    response = decode_chap(response_f.payload)
    assert isinstance(response, ChapResponse) and response.name == b"ex2"
    peer_challenge = decode_mschap2_response(response.value).peer_challenge
    cli = AuthPeer(AuthMethod.MSCHAP2, "ex2", "ex2pass", rng=FakeRng(peer_challenge))
    cli.start(0.0)
    cli.receive(challenge_f.payload, 0.3)
    assert cli.take_output() == [(PROTO_CHAP, response_f.payload)]
    status = decode_chap(success_f.payload)
    assert isinstance(status, ChapStatus) and parse_mschap2_success(status.message).message is None
    cli.receive(success_f.payload, 0.35)
    (ok,) = events(cli)
    assert isinstance(ok, AuthSucceeded) and ok.decision.message is None

    # and as authenticator we compute the S= SoftEther sent
    challenge = decode_chap(challenge_f.payload)
    srv = Authenticator(AuthMethod.MSCHAP2, b"rigse-lns", rng=FakeRng(bytes([challenge.identifier]), challenge.value))
    srv.start(0.0)
    assert srv.take_output() == [(PROTO_CHAP, challenge_f.payload)]
    srv.receive(response_f.payload, 0.34)
    (req,) = events(srv)
    decision = verify_locally(req, "ex2pass")
    assert decision.accepted and decision.authenticator_response == status.message.decode()


def test_softether_mschapv2_wrong_password_failure():
    challenge_f, response_f, failure_f = exchange("softether/mschapv2-wrong-password.pcap")
    challenge = decode_chap(challenge_f.payload)
    failure = parse_mschap_failure(decode_chap(failure_f.payload).message)
    assert (failure.error, failure.retry, failure.version) == (691, False, 3)
    assert failure.challenge == challenge.value and failure.message is None

    # The peer's response does not verify with ex's real password.
    srv = Authenticator(AuthMethod.MSCHAP2, b"rigse-lns", rng=FakeRng(bytes([challenge.identifier]), challenge.value))
    srv.start(0.0)
    srv.take_output()
    srv.receive(response_f.payload, 0.02)
    (req,) = events(srv)
    decision = verify_locally(req, PASSWORD)
    assert not decision.accepted
    srv.complete(req.request_id, decision, 0.03)
    (out,) = srv.take_output()
    ours = parse_mschap_failure(decode_chap(out[1]).message)
    assert (ours.error, ours.retry, ours.version) == (691, False, 3) and len(ours.challenge) == 16
    (failed,) = events(srv)
    assert isinstance(failed, AuthFailed) and failed.error_code == 691

    # As a client, SoftEther's Failure ends our authentication with its reason.
    cli = AuthPeer(AuthMethod.MSCHAP2, "ex", "wrong")
    cli.start(0.0)
    cli.receive(challenge_f.payload, 0.6)
    cli.take_output()
    cli.receive(failure_f.payload, 0.63)
    (failed,) = events(cli)
    assert isinstance(failed, AuthFailed)
    assert failed.error_code == 691 and failed.reason == "E=691 authentication failure"


def test_softether_pap_wrong_password_is_not_accepted():
    (request_f,) = exchange("softether/pap-wrong-password.pcap", 1)
    srv = Authenticator(AuthMethod.PAP)
    srv.start(0.0)
    srv.receive(request_f.payload, 0.0)
    (req,) = events(srv)
    assert req.username == "ex" and not verify_locally(req, PASSWORD).accepted
