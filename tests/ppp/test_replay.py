"""Replays of real peers (shared/traces): their Configure-Requests and answers fed to our machines in
the matching role; our answers must be the ones the real peer accepted next in the capture.

- linux-xl2tpd-pppd: pppd 2.4.9 as LAC (192.0.2.20) and LNS (192.0.2.10). We play each side in turn,
  and our answers (Acks, the IPCP Nak 0.0.0.0 -> 10.0.103.2, Terminate-Acks) must be byte-identical
  to what the other pppd sent, which its peer then followed.
- softether: SoftEther (10.99.0.1) as LNS and a scripted LAC (10.99.0.2). As the LAC we must send
  exactly what the scripted LAC sent (which SoftEther accepted); as the LNS, our IPCP answers must be
  SoftEther's, and our LCP Nak of an oversized MRU one the LAC then followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address as A

import pytest
from tests.pcaputil import TRACES
from tests.pcaputil import ppp_frames as read_ppp_frames
from tests.ppp.ppp_harness import fixed_rng

from fastl2tp.ppp.fsm import ControlProtocol, State
from fastl2tp.ppp.ipcp import Ipcp, IpcpConfig
from fastl2tp.ppp.ipv6cp import Ipv6cp
from fastl2tp.ppp.lcp import Lcp, LcpConfig, LcpOption
from fastl2tp.wire.auth import AuthMethod
from fastl2tp.wire.ppp import (
    Code,
    CpPacket,
    Protocol,
    decode_cp,
    decode_frame,
    decode_options,
    encode_cp,
)

M = AuthMethod


@dataclass(frozen=True)
class Ctl:
    index: int
    src: str
    protocol: int
    payload: bytes

    @property
    def packet(self) -> CpPacket:
        return decode_cp(self.payload)


def control_packets(path: str) -> list[Ctl]:
    out = []
    for cap in read_ppp_frames(TRACES / path):
        frame = decode_frame(cap.frame)
        if frame.protocol in (Protocol.LCP, Protocol.IPCP, Protocol.IPV6CP, Protocol.CCP):
            out.append(Ctl(cap.index, cap.src, frame.protocol, frame.payload))
    return out


def start(m: ControlProtocol) -> list[bytes]:
    m.open(0.0)
    m.lower_up(0.0)
    return [p for _, p in m.take_output()]


def first_option(packets: list[Ctl], src: str, protocol: int, typ: int) -> bytes:
    for c in packets:
        if c.src == src and c.protocol == protocol and c.packet.code == Code.CONFIGURE_REQUEST:
            for opt in decode_options(c.packet.data):
                if opt.type == typ:
                    return opt.data
    raise AssertionError("option not found")


def play(m: ControlProtocol, packets: list[Ctl], peer: str, protocol: int, *, stop_at_code: int | None = None,
         me: str | None = None) -> list[bytes]:
    """Feed ``peer``'s packets of ``protocol`` to ``m`` in capture order; return everything m sent."""
    sent = start(m)
    for c in packets:
        if c.protocol != protocol:
            continue
        if me is not None and c.src == me and stop_at_code is not None and c.packet.code == stop_at_code:
            break
        if c.src == peer:
            m.receive(c.payload, float(c.index))
            sent += [p for _, p in m.take_output()]
    return sent


def sent_by(packets: list[Ctl], src: str, protocol: int, codes: set[int], *, stop_at_code: int | None = None) -> list[bytes]:
    out = []
    for c in packets:
        if c.protocol != protocol:
            continue
        if c.src == src and stop_at_code is not None and c.packet.code == stop_at_code:
            break
        if c.src == src and c.packet.code in codes:
            out.append(c.payload)
    return out


ANSWERS = {Code.CONFIGURE_ACK, Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT}
NEGOTIATION = ANSWERS | {Code.CONFIGURE_REQUEST}


def only(payloads: list[bytes], codes: set[int]) -> list[bytes]:
    return [p for p in payloads if p[0] in codes]


# --- pppd ----------------------------------------------------------------------------------------

LNS, LAC = "192.0.2.10", "192.0.2.20"
PPPD = [
    ("linux-xl2tpd-pppd/pap-nomppe.pcap", M.PAP),
    ("linux-xl2tpd-pppd/chap-md5.pcap", M.CHAP),
    ("linux-xl2tpd-pppd/mschapv1-mppe128.pcap", M.MSCHAP1),
    ("linux-xl2tpd-pppd/mschapv2-mppe128.pcap", M.MSCHAP2),
    ("linux-xl2tpd-pppd/mschapv2-mppe40.pcap", M.MSCHAP2),
]


@pytest.mark.parametrize("path,method", PPPD)
def test_pppd_we_are_the_lns(path: str, method: AuthMethod) -> None:
    pkts = control_packets(path)
    lcp = Lcp(LcpConfig(authenticate=(method,), keepalive_timeout_s=None), first_identifier=1)
    start(lcp)
    answers = []
    for c in pkts:
        if c.protocol == Protocol.LCP and c.src == LAC and c.packet.code == Code.CONFIGURE_REQUEST:
            lcp.receive(c.payload, 0.0)
            answers += only([p for _, p in lcp.take_output()], ANSWERS)
    assert answers == sent_by(pkts, LNS, Protocol.LCP, ANSWERS)  # pppd acked asyncmap 0 and magic too
    # pppd acks MRU, auth and magic: let our own request be acked, then the LAC's Terminate-Requests
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, lcp._req_id, lcp._req_data)), 0.0)
    assert lcp.state is State.OPENED and lcp.values.auth is method
    term_acks = []
    for c in pkts:
        if c.protocol == Protocol.LCP and c.src == LAC and c.packet.code == Code.TERMINATE_REQUEST:
            lcp.receive(c.payload, 1.0)
            term_acks += [p for _, p in lcp.take_output()]
    assert term_acks == sent_by(pkts, LNS, Protocol.LCP, {Code.TERMINATE_ACK})

    ipcp = Ipcp(IpcpConfig(local_address=A("10.0.103.1"), remote_address=A("10.0.103.2")))
    sent = play(ipcp, pkts, LAC, Protocol.IPCP)
    assert sent == sent_by(pkts, LNS, Protocol.IPCP, NEGOTIATION)  # request, Nak 0.0.0.0, Ack
    assert ipcp.state is State.OPENED and ipcp.values.peer_address == A("10.0.103.2")

    iid = first_option(pkts, LNS, Protocol.IPV6CP, 1)
    ipv6cp = Ipv6cp(rng=fixed_rng(iid))
    sent = play(ipv6cp, pkts, LAC, Protocol.IPV6CP)
    assert sent == sent_by(pkts, LNS, Protocol.IPV6CP, NEGOTIATION)
    assert ipv6cp.state is State.OPENED


@pytest.mark.parametrize("path,method", PPPD)
def test_pppd_we_are_the_lac(path: str, method: AuthMethod) -> None:
    pkts = control_packets(path)
    lcp = Lcp(LcpConfig(allow=(method,), keepalive_timeout_s=None))
    sent = only(play(lcp, pkts, LNS, Protocol.LCP), ANSWERS)
    assert sent == sent_by(pkts, LAC, Protocol.LCP, ANSWERS)  # we ack the LNS's auth exactly as pppd did

    ipcp = Ipcp(IpcpConfig())
    sent = play(ipcp, pkts, LNS, Protocol.IPCP)
    # request 0.0.0.0, ack the LNS's address, take 10.0.103.2 from its Nak, and get it acked
    assert sent == sent_by(pkts, LAC, Protocol.IPCP, NEGOTIATION)
    assert ipcp.state is State.OPENED
    assert ipcp.values.address == A("10.0.103.2") and ipcp.values.peer_address == A("10.0.103.1")

    iid = first_option(pkts, LAC, Protocol.IPV6CP, 1)
    ipv6cp = Ipv6cp(rng=fixed_rng(iid))
    sent = play(ipv6cp, pkts, LNS, Protocol.IPV6CP)
    assert sent == sent_by(pkts, LAC, Protocol.IPV6CP, NEGOTIATION)
    assert ipv6cp.state is State.OPENED and ipv6cp.values.interface_id == iid


# --- SoftEther -----------------------------------------------------------------------------------

SE, CLIENT = "10.99.0.1", "10.99.0.2"
SOFTETHER_CLIENT = [
    ("softether/ccp-mppe-offer.pcap", (M.PAP,)),
    ("softether/client-vanishes.pcap", (M.PAP,)),
    ("softether/data-header-plain.pcap", (M.PAP,)),
    ("softether/ipcp-secondary-dns.pcap", (M.PAP,)),
    ("softether/keepalive-hold-30s.pcap", (M.PAP,)),
    ("softether/pap-ipcp-ping.pcap", (M.PAP,)),
    ("softether/pap-user-at-hub-sport1701.pcap", (M.PAP,)),
    ("softether/pap-wrong-password.pcap", (M.PAP,)),
    ("softether/mschapv2-ipcp-ping.pcap", (M.MSCHAP2,)),
    ("softether/mschapv2-wrong-password.pcap", (M.MSCHAP2,)),
    ("softether/no-common-auth.pcap", (M.CHAP,)),
]


@pytest.mark.parametrize("path,allow", SOFTETHER_CLIENT)
def test_softether_we_are_the_lac(path: str, allow: tuple[AuthMethod, ...]) -> None:
    """SoftEther rejects our magic, offers EAP, then MS-CHAPv2, then PAP; we must send what the
    reference LAC sent: MRU 1400 + magic, MRU alone, Naks towards our method, the Ack."""
    pkts = control_packets(path)
    magic = first_option(pkts, CLIENT, Protocol.LCP, LcpOption.MAGIC_NUMBER)
    lcp = Lcp(LcpConfig(mru=1400, allow=allow, keepalive_timeout_s=None), rng=fixed_rng(magic))
    sent = play(lcp, pkts, SE, Protocol.LCP, me=CLIENT, stop_at_code=Code.TERMINATE_REQUEST)
    expected = sent_by(pkts, CLIENT, Protocol.LCP, NEGOTIATION | {Code.TERMINATE_ACK},
                       stop_at_code=Code.TERMINATE_REQUEST)
    assert only(sent, NEGOTIATION | {Code.TERMINATE_ACK}) == expected
    if "no-common-auth" in path:
        assert lcp.state is State.REQ_SENT  # SoftEther gave up and terminated; we acked
        return
    if "pap-wrong-password" in path:
        assert lcp.state is State.STOPPING  # SoftEther terminated after the failed PAP
        return
    assert lcp.state is State.OPENED
    assert lcp.values.peer_auth is allow[0] and lcp.values.mru == 1400 and lcp.values.magic == 0

    # SoftEther's Echo-Request (identifier 0, magic 0, "Aho Baka Manuke\0") answered with our magic
    echo = next(c for c in pkts if c.protocol == Protocol.LCP and c.packet.code == Code.ECHO_REQUEST)
    lcp.receive(echo.payload, 99.0)
    [(_, reply)] = lcp.take_output()
    real = next(c for c in pkts if c.protocol == Protocol.LCP and c.packet.code == Code.ECHO_REPLY)
    # same identifier and data; the magic is 0 because SoftEther rejected ours (RFC 1661 §6.4; the
    # reference LAC sent its rejected magic anyway)
    assert decode_cp(reply) == CpPacket(Code.ECHO_REPLY, real.packet.identifier, bytes(4) + real.packet.data[4:])


def test_softether_ipcp_we_are_the_lac() -> None:
    pkts = control_packets("softether/ipcp-secondary-dns.pcap")
    ipcp = Ipcp(IpcpConfig(request_dns=True), first_identifier=4)
    sent = play(ipcp, pkts, SE, Protocol.IPCP)
    # ask addr+DNS1+DNS2; drop the rejected DNS2; ack the server; take its Nak; get acked
    assert sent == sent_by(pkts, CLIENT, Protocol.IPCP, NEGOTIATION)
    assert ipcp.state is State.OPENED
    assert ipcp.values.address == A("192.168.30.10") and ipcp.values.dns == (A("192.168.30.1"),)
    assert ipcp.values.peer_address == A("192.168.30.1")


SOFTETHER_IPCP = [p for p, _ in SOFTETHER_CLIENT if "vanishes" not in p and "wrong" not in p and "no-common" not in p]


@pytest.mark.parametrize("path", SOFTETHER_IPCP)
def test_softether_ipcp_we_are_the_lns(path: str) -> None:
    pkts = control_packets(path)
    server = IpcpConfig(local_address=A("192.168.30.1"), remote_address=A("192.168.30.10"),
                        dns_servers=(A("192.168.30.1"),))
    ipcp = Ipcp(server, first_identifier=3)
    sent = play(ipcp, pkts, CLIENT, Protocol.IPCP)
    expected = sent_by(pkts, SE, Protocol.IPCP, NEGOTIATION)
    # the same request (SoftEther sends it only after its first answer; we send it at once) and the
    # same Naks, Rejects and Acks, which the client followed
    assert only(sent, {Code.CONFIGURE_REQUEST}) == only(expected, {Code.CONFIGURE_REQUEST})
    assert only(sent, ANSWERS) == only(expected, ANSWERS)
    assert ipcp.state is State.OPENED
    assert ipcp.values.peer_address == A("192.168.30.10") and ipcp.values.peer_dns == (A("192.168.30.1"),)


def test_softether_oversized_mru_nak_is_followed() -> None:
    pkts = control_packets("softether/lcp-extra-options.pcap")
    lcp = Lcp(LcpConfig(max_mtu=1500, mru=1500, keepalive_timeout_s=None))
    start(lcp)
    client_requests = [c for c in pkts if c.src == CLIENT and c.protocol == Protocol.LCP
                       and c.packet.code == Code.CONFIGURE_REQUEST]
    lcp.receive(client_requests[0].payload, 0.0)  # MRU 1600, magic, ACCM, PFC, ACFC
    [(_, nak)] = lcp.take_output()
    nak = decode_cp(nak)
    assert nak.code == Code.CONFIGURE_NAK and nak.data == b"\x01\x04\x05\xdc"  # only the MRU, to 1500
    # the client then asked for exactly what we (and SoftEther) suggested, and we ack it as SoftEther did
    assert decode_options(client_requests[-1].packet.data)[0].data == b"\x05\xdc"
    lcp.receive(client_requests[-1].payload, 0.0)
    [(_, ack)] = lcp.take_output()
    real_ack = next(c for c in pkts if c.src == SE and c.packet.code == Code.CONFIGURE_ACK
                    and c.packet.identifier == client_requests[-1].packet.identifier)
    assert ack == real_ack.payload


def test_softether_ccp_protocol_reject() -> None:
    pkts = control_packets("softether/ccp-mppe-offer.pcap")
    ccp = next(c for c in pkts if c.protocol == Protocol.CCP)
    real = next(c for c in pkts if c.protocol == Protocol.LCP and c.packet.code == Code.PROTOCOL_REJECT)
    lcp = Lcp(LcpConfig(keepalive_timeout_s=None), first_identifier=real.packet.identifier)
    start(lcp)
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, 1, b"")), 0.0)
    lcp.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, lcp._req_id, lcp._req_data)), 0.0)
    lcp.take_output()
    lcp._next_id = real.packet.identifier
    lcp.send_protocol_reject(Protocol.CCP, ccp.payload, 1.0)
    [(_, rej)] = lcp.take_output()
    assert rej == real.payload
