"""Whole real sessions replayed against one PppLink (tests/ppp/link_harness.py ``Replay``).

- pppd (linux-xl2tpd-pppd, user ex / lkjrht): the LAC's frames go to our server link (LNS 10.0.103.1,
  remote 10.0.103.2 handed over with the auth decision), and the LNS's frames to our client link.
  Randomness is injected so that our magic numbers, CHAP identifier and challenge and IPv6 interface
  identifiers are the captured ones; then the peer's captured answers are answers to us, and our
  answers must be byte for byte what the real pppd on our side sent (Acks, PAP Ack / CHAP Success,
  the IPCP Nak 10.0.103.2, Terminate-Ack). Our LCP request leaves out pppd's asyncmap: the replay
  checks that each of our requests holds only options the peer saw and accepted in the capture.
- SoftEther (softether/, LNS 10.99.0.1): its frames go to our client link, which must get through
  EAP/MS-CHAPv2/PAP offers, Magic-Number reject and IPCP Naks to NetworkUp with 192.168.30.10.
"""

from __future__ import annotations

from ipaddress import IPv4Address as A

import pytest

from fastl2tp.ppp.auth import AuthConfig
from fastl2tp.ppp.ccp import CcpConfig
from fastl2tp.ppp.events import (
    AuthRequested,
    AuthResult,
    EncryptionUp,
    Ipv6Up,
    LinkDown,
    NetworkUp,
    Role,
)
from fastl2tp.ppp.ipcp import IpcpConfig
from fastl2tp.ppp.lcp import LcpConfig
from fastl2tp.ppp.link import Encryption, LinkConfig, Phase, PppLink
from fastl2tp.wire.auth import (
    AuthMethod,
    ChapChallenge,
    decode_chap,
    decode_mschap2_response,
)
from fastl2tp.wire.ppp import Code, Protocol, decode_cp, decode_options
from tests.pcaputil import TRACES, PppCapture, ppp_frames
from tests.ppp.link_harness import Replay, ScriptedRng, reference

M = AuthMethod
LNS, LAC = "192.0.2.10", "192.0.2.20"
SE, CLIENT = "10.99.0.1", "10.99.0.2"
ANSWERS = {Code.CONFIGURE_ACK, Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT}
PPPD_LCP = LcpConfig(mru=1500, max_mtu=1500, keepalive_timeout_s=30.0)  # pppd asks for no MRU


def captures(name: str) -> list[PppCapture]:
    return ppp_frames(TRACES / name)


def option(caps: list[PppCapture], src: str, protocol: int, typ: int) -> bytes:
    for c in caps:
        if c.src == src and c.protocol == protocol and c.payload[0] == Code.CONFIGURE_REQUEST:
            for opt in decode_options(decode_cp(c.payload).data):
                if opt.type == typ:
                    return opt.data
    raise AssertionError(f"no option {typ} from {src}")


def close_where_reference_terminates(link: PppLink):
    def hook(cap: PppCapture, now: float) -> None:
        if cap.protocol == Protocol.LCP and cap.payload[0] == Code.TERMINATE_REQUEST:
            link.close(decode_cp(cap.payload).data.decode(), now)
    return hook


PPPD = [("linux-xl2tpd-pppd/pap-nomppe.pcap", M.PAP), ("linux-xl2tpd-pppd/chap-md5.pcap", M.CHAP)]


@pytest.mark.parametrize("path,method", PPPD, ids=["pap", "chap-md5"])
def test_pppd_lac_against_our_server(path: str, method: AuthMethod) -> None:
    caps = captures(path)
    chunks = {4: [option(caps, LNS, Protocol.LCP, 5)], 8: [option(caps, LNS, Protocol.IPV6CP, 1)]}
    auth = AuthConfig()
    if method is M.CHAP:
        challenge = decode_chap(next(c.payload for c in caps if c.protocol == 0xC223))
        assert isinstance(challenge, ChapChallenge) and challenge.name == b"st-lns"
        chunks[1] = [bytes((challenge.identifier,))]
        chunks[len(challenge.value)] = [challenge.value]
        auth = AuthConfig(challenge_len=len(challenge.value))  # pppd's CHAP-MD5 challenge is 16..24 octets
    config = LinkConfig(lcp=PPPD_LCP, authenticate=(method,), auth_name="st-lns", auth=auth, use_ipv6=True)
    link = PppLink(Role.SERVER, config, rng=ScriptedRng(chunks))
    lns_ipcp = IpcpConfig(local_address=A("10.0.103.1"), remote_address=A("10.0.103.2"))
    r = Replay(link, caps, us=LNS, peer=LAC, secrets={"ex": "lkjrht"}, ipcp_for=lambda user: lns_ipcp)
    r.run()

    assert r.mismatches == []
    assert r.translated == 1  # only the LAC's Ack of our LCP request (pppd's carried asyncmap too)
    # every answer, auth packet and Terminate-Ack is what pppd's LNS sent, in the same order
    for proto, codes in ((Protocol.LCP, ANSWERS | {Code.TERMINATE_ACK}), (Protocol.IPCP, None),
                         (Protocol.IPV6CP, None), (method.protocol, None)):
        assert r.ours(proto, codes) == reference(caps, LNS, proto, codes), hex(proto)
    [our_req] = r.ours(Protocol.LCP, {Code.CONFIGURE_REQUEST})
    assert decode_options(decode_cp(our_req).data) == decode_options(
        decode_cp(reference(caps, LNS, Protocol.LCP, {Code.CONFIGURE_REQUEST})[0]).data)[1:]  # minus asyncmap

    assert r.kinds() == ["AuthRequested", "AuthResult", "Ipv6Up", "NetworkUp", "LinkDown"]
    [req] = r.of(AuthRequested)
    assert req.username == "ex" and req.method is method
    [up] = r.of(NetworkUp)
    assert (up.local_address, up.peer_address) == (A("10.0.103.1"), A("10.0.103.2"))
    [up6] = r.of(Ipv6Up)
    assert up6.interface_id == option(caps, LNS, Protocol.IPV6CP, 1)
    assert up6.peer_interface_id == option(caps, LAC, Protocol.IPV6CP, 1)
    # the LAC's data after the NCPs were up is only counted; its Terminate-Request ends the link
    assert link.counters["data_seen"] == sum(c.src == LAC and c.protocol in (0x21, 0x57) for c in caps)
    assert "data_dropped" not in link.counters
    [down] = r.of(LinkDown)
    assert down.reason == "peer terminated LCP: User request"
    t_term = next(t for t, f in r.sent if f[4] == Code.TERMINATE_ACK)
    assert [t for t, ev in r.events if isinstance(ev, LinkDown)] == [t_term + 3.0]  # one Restart period
    assert link.phase is Phase.DEAD


@pytest.mark.parametrize("path,method", PPPD, ids=["pap", "chap-md5"])
def test_pppd_lns_against_our_client(path: str, method: AuthMethod) -> None:
    caps = captures(path)
    chunks = {4: [option(caps, LAC, Protocol.LCP, 5)], 8: [option(caps, LAC, Protocol.IPV6CP, 1)]}
    if method is M.PAP:
        chunks[1] = [bytes((next(c.payload for c in caps if c.protocol == 0xC023)[1],))]
    config = LinkConfig(lcp=PPPD_LCP, allow=(method,), username="ex", password="lkjrht", use_ipv6=True)
    link = PppLink(Role.CLIENT, config, rng=ScriptedRng(chunks))
    r = Replay(link, caps, us=LAC, peer=LNS, on_reference=close_where_reference_terminates(link))
    r.run()

    assert r.mismatches == [] and r.translated == 1
    # the PAP request / CHAP response, our Acks, the IPCP requests (0.0.0.0, then the Nak'd 10.0.103.2),
    # IPv6CP, and the Terminate-Request are exactly the LAC's
    for proto, codes in ((Protocol.LCP, ANSWERS | {Code.TERMINATE_REQUEST}), (Protocol.IPCP, None),
                         (Protocol.IPV6CP, None), (method.protocol, None)):
        assert r.ours(proto, codes) == reference(caps, LAC, proto, codes), hex(proto)
    assert r.kinds() == ["AuthResult", "Ipv6Up", "NetworkUp", "LinkDown"]  # pppd acked IPv6CP first
    [auth] = r.of(AuthResult)
    assert auth.succeeded and auth.role is Role.CLIENT and auth.method is method
    [up] = r.of(NetworkUp)
    assert (up.local_address, up.peer_address) == (A("10.0.103.2"), A("10.0.103.1"))
    assert [ev.reason for ev in r.of(LinkDown)] == ["User request"]  # pppd's Terminate-Ack came


SOFTETHER = [
    ("softether/pap-ipcp-ping.pcap", M.PAP, "ex", "lkjrht"),
    # this capture authenticated SoftEther's second user (the README lists ex/lkjrht and ex2/ex2pass)
    ("softether/mschapv2-ipcp-ping.pcap", M.MSCHAP2, "ex2", "ex2pass"),
]


@pytest.mark.parametrize("path,method,user,password", SOFTETHER, ids=["pap", "mschapv2"])
def test_softether_against_our_client(path: str, method: AuthMethod, user: str, password: str) -> None:
    caps = captures(path)
    chunks = {4: [option(caps, CLIENT, Protocol.LCP, 5)]}
    auth_frames = [c for c in caps if c.protocol in (0xC023, 0xC223)]
    if method is M.PAP:
        chunks[1] = [bytes((auth_frames[0].payload[1],))]
    else:
        response = decode_chap(auth_frames[1].payload)
        assert response.name == user.encode()
        chunks[16] = [decode_mschap2_response(response.value).peer_challenge]
    config = LinkConfig(lcp=LcpConfig(mru=1400, keepalive_timeout_s=30.0), allow=(method,), username=user,
                        password=password)
    link = PppLink(Role.CLIENT, config, rng=ScriptedRng(chunks))
    r = Replay(link, caps, us=CLIENT, peer=SE, on_reference=close_where_reference_terminates(link))
    r.run()

    assert r.mismatches == []
    # EAP and (for PAP) MS-CHAPv2 Nak'd to our method, SoftEther's auth request acked: as the reference LAC
    lcp_answers = {Code.CONFIGURE_NAK, Code.CONFIGURE_ACK}
    assert r.ours(Protocol.LCP, lcp_answers) == reference(caps, CLIENT, Protocol.LCP, lcp_answers)
    assert r.ours(method.protocol) == reference(caps, CLIENT, method.protocol)  # PAP request / MS-CHAPv2 response
    assert r.ours(Protocol.IPCP, {Code.CONFIGURE_ACK}) == reference(caps, CLIENT, Protocol.IPCP, {Code.CONFIGURE_ACK})
    assert r.kinds() == ["AuthResult", "NetworkUp", "LinkDown"]
    [auth] = r.of(AuthResult)
    assert auth.succeeded and auth.method is method
    if method is M.MSCHAP2:
        assert auth.decision.keys is not None  # SoftEther's S= (no M=) verified
    [up] = r.of(NetworkUp)
    assert up.local_address == A("192.168.30.10") and up.peer_address == A("192.168.30.1")
    assert up.mru == 1400
    assert [ev.reason for ev in r.of(LinkDown)] == ["probe done"]
    assert link.counters.get("data_seen", 0) >= 3  # SoftEther's echo replies, only counted


MSCHAP_PPPD = [("linux-xl2tpd-pppd/mschapv1-mppe128.pcap", M.MSCHAP1),
               ("linux-xl2tpd-pppd/mschapv2-mppe128.pcap", M.MSCHAP2)]


@pytest.mark.parametrize("use_encryption", [Encryption.NO, Encryption.REQUIRED], ids=["ccp-rejected", "required"])
@pytest.mark.parametrize("path,method", MSCHAP_PPPD, ids=["mschapv1", "mschapv2"])
def test_pppd_lac_requiring_mppe_against_our_server(path: str, method: AuthMethod, use_encryption: Encryption) -> None:
    """Authentication is pppd's byte for byte; then either we Protocol-Reject CCP (use-encryption=no) and
    pppd (which requires MPPE) terminates, or CCP/MPPE comes up as between the two pppds (tests/ppp/test_ccp.py
    has the details)."""
    caps = captures(path)
    challenge = decode_chap(next(c.payload for c in caps if c.protocol == 0xC223))
    chunks = {4: [option(caps, LNS, Protocol.LCP, 5)], 1: [bytes((challenge.identifier,))],
              len(challenge.value): [challenge.value]}
    chunks.setdefault(8, []).append(option(caps, LNS, Protocol.IPV6CP, 1))  # after v1's 8-octet challenge
    config = LinkConfig(lcp=PPPD_LCP, authenticate=(method,), auth_name="st-lns", use_ipv6=True,
                        use_encryption=use_encryption, ccp=CcpConfig(allow_40=False))  # pppd: require-mppe-128
    link = PppLink(Role.SERVER, config, rng=ScriptedRng(chunks))
    lns_ipcp = IpcpConfig(local_address=A("10.0.103.1"), remote_address=A("10.0.103.2"))
    r = Replay(link, caps, us=LNS, peer=LAC, secrets={"ex": "lkjrht"}, ipcp_for=lambda user: lns_ipcp)
    r.run()

    assert r.ours(0xC223) == reference(caps, LNS, 0xC223)  # Challenge and Success, as pppd's LNS
    [auth] = r.of(AuthResult)
    assert auth.succeeded and auth.decision.keys is not None  # key material for MPPE is there
    assert [ev.reason for ev in r.of(LinkDown)] == ["peer terminated LCP: MPPE disabled"]
    if use_encryption is Encryption.REQUIRED:
        assert r.mismatches == []
        assert r.ours(Protocol.CCP) == reference(caps, LNS, Protocol.CCP)
        assert r.kinds() == ["AuthRequested", "AuthResult", "EncryptionUp", "Ipv6Up", "NetworkUp", "LinkDown"]
        assert [ev.encoding for ev in r.of(EncryptionUp)] == ["MPPE128 stateless"]
        assert link.counters["mppe_seen"] == sum(c.src == LAC and c.protocol == 0xFD for c in caps)
        return
    ccp_request = next(c.payload for c in caps if c.src == LAC and c.protocol == Protocol.CCP)
    rejects = [decode_cp(p) for p in r.ours(Protocol.LCP, {Code.PROTOCOL_REJECT})]
    assert rejects[0].data == b"\x80\xfd" + ccp_request
    assert r.kinds() == ["AuthRequested", "AuthResult", "Ipv6Up", "NetworkUp", "LinkDown"]
