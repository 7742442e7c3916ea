"""BCP (RFC 3518) on the shared automaton: two machines negotiating over the in-memory link, the answers
to option sets of other implementations (RouterOS-like, the pppd BCP patch, Cisco-like source-route
bridges), Configure-Rejects of what we do not do, Naks both ways."""

from __future__ import annotations

import pytest

from fastl2tp.ppp.bcp import (
    BCP_OPTIONS,
    DISABLED,
    ENABLED,
    ZERO_MAC,
    Bcp,
    BcpConfig,
    BcpOption,
    BcpValues,
    SpanningTree,
    format_mac,
    is_unicast_mac,
)
from fastl2tp.ppp.fsm import CpTimers, LayerStarted, LayerUp, State
from fastl2tp.ppp.options import OptionTable
from fastl2tp.wire.bcp import MacType
from fastl2tp.wire.ppp import (
    Code,
    CpPacket,
    Option,
    Protocol,
    decode_cp,
    decode_options,
    encode_cp,
    encode_options,
)
from tests.ppp.ppp_harness import Pair, counting_rng, events

O = BcpOption
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
ASSIGNED = bytes.fromhex("02000000aa01")
GROUP = bytes.fromhex("0180c2000000")


def bcp(config: BcpConfig | None = None, first_identifier: int = 1) -> Bcp:
    return Bcp(config, rng=counting_rng(), first_identifier=first_identifier)


def pair(a: BcpConfig | None = None, b: BcpConfig | None = None) -> Pair:
    return Pair(bcp(a), bcp(b, first_identifier=100))


def up(m: Bcp) -> BcpValues:
    evs = events(m)
    assert [type(e) for e in evs] == [LayerStarted, LayerUp], evs
    assert m.state is State.OPENED and m.values is evs[-1].values
    return evs[-1].values


def opt(typ: int, data: bytes = b"") -> Option:
    return Option(typ, data)


def started(config: BcpConfig | None = None) -> tuple[Bcp, CpPacket]:
    """A machine that sent its first Configure-Request (returned)."""
    m = bcp(config)
    m.open(0.0)
    m.lower_up(0.0)
    out = m.take_output()
    assert len(out) == 1 and out[0][0] == Protocol.BCP
    return m, decode_cp(out[0][1])


def answer(m: Bcp, *options: Option, identifier: int = 0x42) -> CpPacket:
    """Our answer to a peer's Configure-Request with ``options``."""
    m.receive(encode_cp(CpPacket(Code.CONFIGURE_REQUEST, identifier, encode_options(options))), 0.0)
    replies = [decode_cp(p) for proto, p in m.take_output() if proto == Protocol.BCP]
    replies = [r for r in replies if r.code in (Code.CONFIGURE_ACK, Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT)]
    assert len(replies) == 1, replies
    assert replies[0].identifier == identifier
    return replies[0]


def reply_to_ours(m: Bcp, request: CpPacket, code: Code, *options: Option) -> CpPacket:
    """Answer our Configure-Request ``request`` with ``code``; returns the next request we send."""
    data = request.data if code == Code.CONFIGURE_ACK else encode_options(options)
    m.receive(encode_cp(CpPacket(code, request.identifier, data)), 0.0)
    out = [decode_cp(p) for _proto, p in m.take_output()]
    requests = [p for p in out if p.code == Code.CONFIGURE_REQUEST]
    assert len(requests) == 1, out
    return requests[0]


def requested(packet: CpPacket) -> list[Option]:
    return list(decode_options(packet.data))


# --- our Configure-Request -------------------------------------------------------------------------


def test_default_request_mac_support_tagged_management_inline() -> None:
    _m, req = started()
    assert req.code == Code.CONFIGURE_REQUEST
    assert requested(req) == [opt(O.MAC_SUPPORT, b"\x01"), opt(O.IEEE_802_TAGGED_FRAME, b"\x01"),
                              opt(O.MANAGEMENT_INLINE)]


def test_request_with_everything_configured() -> None:
    cfg = BcpConfig(tinygram=True, tagged_frames=False, mac_address=MAC_A)
    _m, req = started(cfg)
    assert requested(req) == [opt(O.MAC_SUPPORT, b"\x01"), opt(O.TINYGRAM_COMPRESSION, b"\x01"),
                              opt(O.MAC_ADDRESS, MAC_A), opt(O.IEEE_802_TAGGED_FRAME, b"\x02"),
                              opt(O.MANAGEMENT_INLINE)]
    _m, req = started(BcpConfig(mac_support=False, tagged_frames=None, management_inline=False))
    assert req.data == b""  # an empty request is fine: the peer acks it


def test_config_checks_mac_addresses() -> None:
    with pytest.raises(ValueError):
        BcpConfig(mac_address=GROUP)
    with pytest.raises(ValueError):
        BcpConfig(assign_mac_address=ZERO_MAC)
    with pytest.raises(ValueError):
        BcpConfig(mac_address=MAC_A, assign_mac_address=MAC_A)
    BcpConfig(mac_address=ZERO_MAC, assign_mac_address=MAC_A)  # asking for one is fine
    assert is_unicast_mac(MAC_A) and not is_unicast_mac(GROUP) and not is_unicast_mac(ZERO_MAC)
    assert format_mac(MAC_A) == "02:00:00:00:00:01" and format_mac(None) == ""


def test_option_table_names_every_rfc_option() -> None:
    assert isinstance(BCP_OPTIONS, OptionTable)
    assert {spec.type for spec in BCP_OPTIONS} == set(BcpOption)
    assert BCP_OPTIONS.name_of(O.MANAGEMENT_INLINE) == "Management-Inline" and BCP_OPTIONS.name_of(77) == "option-77"


# --- two machines ----------------------------------------------------------------------------------


def test_two_defaults_converge() -> None:
    p = pair()
    p.start(0.0)
    a, b = up(p.a), up(p.b)
    assert a == b
    assert a.mac_types == a.peer_mac_types == (MacType.IEEE_802_3,)
    assert a.tagged is a.peer_tagged is True and a.peer_takes_tagged
    assert a.management_inline and a.peer_management_inline
    assert not (a.tinygram or a.peer_tinygram or a.bridge_control_indicator or a.send_lan_fcs)
    assert a.peer_spanning_tree is None and a.mac_address is None and a.peer_mac_address is None
    assert a.peer_takes_ethernet
    assert a.describe() == "802.3, management inline"
    assert all(proto == Protocol.BCP for proto, _ in p.a.take_output())


def test_mac_addresses_announced_both_ways() -> None:
    p = pair(BcpConfig(mac_address=MAC_A, send_lan_fcs=True), BcpConfig(mac_address=MAC_B))
    p.start(0.0)
    a, b = up(p.a), up(p.b)
    assert (a.mac_address, a.peer_mac_address) == (MAC_A, MAC_B)
    assert (b.mac_address, b.peer_mac_address) == (MAC_B, MAC_A)
    assert a.send_lan_fcs and not b.send_lan_fcs
    assert a.describe() == "802.3, peer MAC 02:00:00:00:00:02, our MAC 02:00:00:00:00:01, management inline, LAN FCS"


def test_client_asks_server_to_assign_a_mac_address() -> None:
    p = pair(BcpConfig(assign_mac_address=ASSIGNED), BcpConfig(mac_address=ZERO_MAC))
    p.start(0.0)
    server, client = up(p.a), up(p.b)
    assert client.mac_address == ASSIGNED and server.peer_mac_address == ASSIGNED
    naks = [pkt for who, pkt in p.log if who == "a" and pkt.code == Code.CONFIGURE_NAK]
    assert [decode_options(n.data) for n in naks] == [(opt(O.MAC_ADDRESS, ASSIGNED),)]


def test_request_for_an_address_without_one_to_give_is_rejected() -> None:
    p = pair(BcpConfig(), BcpConfig(mac_address=ZERO_MAC))
    p.start(0.0)
    server, client = up(p.a), up(p.b)
    assert client.mac_address is None and server.peer_mac_address is None
    rejects = [pkt for who, pkt in p.log if who == "a" and pkt.code == Code.CONFIGURE_REJECT]
    assert [decode_options(r.data) for r in rejects] == [(opt(O.MAC_ADDRESS, ZERO_MAC),)]


def test_tinygram_both_ways() -> None:
    p = pair(BcpConfig(tinygram=True), BcpConfig())
    p.start(0.0)
    a, b = up(p.a), up(p.b)
    assert a.tinygram and not a.peer_tinygram
    assert b.peer_tinygram and not b.tinygram


class LegacyBcp(Bcp):
    """An RFC 1638 implementation: MAC-Support and Tinygram-Compression only; everything else rejected."""

    options = OptionTable("BCP", [spec for spec in BCP_OPTIONS
                                  if spec.type in (O.MAC_SUPPORT, O.TINYGRAM_COMPRESSION)])


def test_peer_rejecting_newer_options_still_converges() -> None:
    p = Pair(bcp(), LegacyBcp(BcpConfig(tinygram=True), rng=counting_rng(), first_identifier=50))
    p.start(0.0)
    ours, legacy = up(p.a), up(p.b)
    rejects = [decode_options(pkt.data) for who, pkt in p.log if who == "b" and pkt.code == Code.CONFIGURE_REJECT]
    assert rejects == [(opt(O.IEEE_802_TAGGED_FRAME, b"\x01"), opt(O.MANAGEMENT_INLINE))]
    assert ours.mac_types == (1,) and ours.tagged is None and not ours.management_inline
    assert ours.peer_tinygram and legacy.tinygram
    assert ours.peer_takes_tagged  # not negotiated: tags pass


def test_converges_over_a_lossy_link() -> None:
    p = pair(BcpConfig(mac_address=MAC_A), BcpConfig(mac_address=ZERO_MAC, assign_mac_address=ASSIGNED))
    dropped: list[CpPacket] = []

    def drop_first_two(who: str, pkt: CpPacket) -> bool:
        if len(dropped) < 2:
            dropped.append(pkt)
            return True
        return False

    for m in (p.a, p.b):
        m.open(0.0)
        m.lower_up(0.0)
    p.run(0.0, 60.0, drop=drop_first_two)
    assert len(dropped) == 2
    a, b = up(p.a), up(p.b)
    assert b.mac_address is None  # a has no address to give: b's request for one was rejected
    assert a.mac_address == b.peer_mac_address == MAC_A


# --- the peer's Configure-Request: other implementations' option sets ------------------------------


def test_routeros_like_request_is_acked() -> None:
    """What a RouterOS BCP peer plausibly asks for (no capture yet): MAC-Support 802.3, with or
    without Tinygram-Compression disabled."""
    m, _ = started()
    for options in ([opt(O.MAC_SUPPORT, b"\x01")],
                    [opt(O.MAC_SUPPORT, b"\x01"), opt(O.TINYGRAM_COMPRESSION, b"\x02")],
                    []):
        reply = answer(m, *options)
        assert reply.code == Code.CONFIGURE_ACK and decode_options(reply.data) == tuple(options)


def test_pppd_bcp_patch_request_is_acked() -> None:
    """The pppd BCP patch asks for Management-Inline, IEEE-802-Tagged-Frame enabled and the
    Bridge-Control-Packet-Indicator (and mishandles a Reject of the last one: so it is acked)."""
    m, req = started()
    options = (opt(O.IEEE_802_TAGGED_FRAME, b"\x01"), opt(O.MANAGEMENT_INLINE),
               opt(O.BRIDGE_CONTROL_PACKET_INDICATOR))
    assert answer(m, *options).code == Code.CONFIGURE_ACK
    m.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, req.identifier, req.data)), 0.0)
    v = up(m)
    assert v.bridge_control_indicator and v.peer_management_inline and v.peer_tagged is True
    assert v.peer_mac_types == () and v.peer_takes_ethernet  # no MAC-Support announced: it takes all


def test_cisco_like_source_route_options_are_rejected_with_their_bytes() -> None:
    m, _ = started()
    bridge_id = opt(O.BRIDGE_IDENTIFICATION, b"\x00\x11")
    line_id = opt(O.LINE_IDENTIFICATION, b"\x00\x21")
    reply = answer(m, bridge_id, opt(O.MAC_SUPPORT, b"\x01"), line_id,
                   opt(O.SPANNING_TREE_PROTOCOL, b"\x01"))
    assert reply.code == Code.CONFIGURE_REJECT
    assert decode_options(reply.data) == (bridge_id, line_id)
    # Without them, the rest is acked: spanning tree as the peer says.
    assert answer(m, opt(O.MAC_SUPPORT, b"\x01"), opt(O.SPANNING_TREE_PROTOCOL, b"\x01")).code == Code.CONFIGURE_ACK


def test_several_mac_types_are_kept() -> None:
    m, req = started()
    options = (opt(O.MAC_SUPPORT, b"\x01"), opt(O.MAC_SUPPORT, b"\x0b"), opt(O.MAC_SUPPORT, b"\x01"))
    assert answer(m, *options).code == Code.CONFIGURE_ACK
    m.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, req.identifier, req.data)), 0.0)
    v = up(m)
    assert v.peer_mac_types == (MacType.IEEE_802_3, MacType.IEEE_802_5) and v.peer_takes_ethernet


def test_peer_without_802_3_is_reported() -> None:
    m, req = started()
    assert answer(m, opt(O.MAC_SUPPORT, bytes((MacType.FDDI,)))).code == Code.CONFIGURE_ACK
    m.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, req.identifier, req.data)), 0.0)
    v = up(m)
    assert v.peer_mac_types == (MacType.FDDI,) and not v.peer_takes_ethernet
    assert v.describe().startswith("peer takes no 802.3")


@pytest.mark.parametrize("bad", [
    opt(O.MAC_SUPPORT, b"\x00"),  # reserved MAC type
    opt(O.MAC_SUPPORT, b"\x07"),
    opt(O.MAC_SUPPORT, b"\x01\x01"),  # wrong length
    opt(O.TINYGRAM_COMPRESSION, b"\x03"),
    opt(O.TINYGRAM_COMPRESSION, b""),
    opt(O.IEEE_802_TAGGED_FRAME, b"\x00"),
    opt(O.MAC_ADDRESS, MAC_A[:5]),
    opt(O.SPANNING_TREE_PROTOCOL, b"\x09"),  # undefined protocol id
    opt(O.SPANNING_TREE_PROTOCOL, b""),
    opt(O.MANAGEMENT_INLINE, b"\x00"),  # carries no data
    opt(O.LAN_IDENTIFICATION, b"\x01"),  # obsolete
    opt(11, b"\x01"),  # unknown
    opt(200),
])
def test_unsupported_or_malformed_options_are_rejected_raw(bad: Option) -> None:
    m, _ = started()
    good = opt(O.MAC_SUPPORT, b"\x01")
    reply = answer(m, good, bad)
    assert reply.code == Code.CONFIGURE_REJECT and decode_options(reply.data) == (bad,)


def test_peer_mac_address_judged() -> None:
    m, _ = started(BcpConfig(mac_address=MAC_A))
    assert answer(m, opt(O.MAC_ADDRESS, MAC_B)).code == Code.CONFIGURE_ACK
    for bad in (ZERO_MAC, GROUP, MAC_A):  # a request for one, a group address, ours
        reply = answer(m, opt(O.MAC_ADDRESS, bad))
        assert reply.code == Code.CONFIGURE_REJECT and decode_options(reply.data) == (opt(O.MAC_ADDRESS, bad),)
    m, _ = started(BcpConfig(mac_address=MAC_A, assign_mac_address=ASSIGNED))
    for bad in (ZERO_MAC, GROUP, MAC_A):
        reply = answer(m, opt(O.MAC_ADDRESS, bad))
        assert reply.code == Code.CONFIGURE_NAK and decode_options(reply.data) == (opt(O.MAC_ADDRESS, ASSIGNED),)


def test_spanning_tree_nak_to_null_when_not_accepted() -> None:
    m, _ = started(BcpConfig(accept_spanning_tree=False))
    reply = answer(m, opt(O.SPANNING_TREE_PROTOCOL, bytes((SpanningTree.IEEE_802_1D,))))
    assert reply.code == Code.CONFIGURE_NAK and decode_options(reply.data) == (opt(O.SPANNING_TREE_PROTOCOL, b"\x00"),)
    assert answer(m, opt(O.SPANNING_TREE_PROTOCOL, b"\x00")).code == Code.CONFIGURE_ACK


def test_spanning_tree_protocols_accepted_and_reported() -> None:
    m, req = started()
    assert answer(m, opt(O.SPANNING_TREE_PROTOCOL, b"\x01\x02")).code == Code.CONFIGURE_ACK
    m.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, req.identifier, req.data)), 0.0)
    v = up(m)
    assert v.peer_spanning_tree == (1, 2) and "spanning tree 1,2" in v.describe()


def test_bridge_control_indicator_rejected_when_configured_off() -> None:
    m, _ = started(BcpConfig(accept_bridge_control_indicator=False))
    reply = answer(m, opt(O.BRIDGE_CONTROL_PACKET_INDICATOR))
    assert reply.code == Code.CONFIGURE_REJECT


def test_naks_past_max_failure_become_rejects() -> None:
    m, _ = started(BcpConfig(accept_spanning_tree=False, timers=CpTimers(max_failure=2)))
    stp = opt(O.SPANNING_TREE_PROTOCOL, b"\x01")
    codes = [answer(m, stp, identifier=i).code for i in range(4)]
    assert codes == [Code.CONFIGURE_NAK, Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT, Code.CONFIGURE_REJECT]


# --- the peer's answers to our request -------------------------------------------------------------


def test_nak_of_tagged_frames_is_followed() -> None:
    m, req = started()
    nxt = reply_to_ours(m, req, Code.CONFIGURE_NAK, opt(O.IEEE_802_TAGGED_FRAME, bytes((DISABLED,))))
    assert opt(O.IEEE_802_TAGGED_FRAME, b"\x02") in requested(nxt)
    assert nxt.identifier != req.identifier


def test_nak_of_mac_support_or_management_inline_drops_it() -> None:
    m, req = started()
    nxt = reply_to_ours(m, req, Code.CONFIGURE_NAK, opt(O.MAC_SUPPORT, b"\x0b"), opt(O.MANAGEMENT_INLINE))
    assert requested(nxt) == [opt(O.IEEE_802_TAGGED_FRAME, b"\x01")]


def test_nak_of_tinygram_to_disabled_stops_asking() -> None:
    m, req = started(BcpConfig(tinygram=True, tagged_frames=None, management_inline=False))
    nxt = reply_to_ours(m, req, Code.CONFIGURE_NAK, opt(O.TINYGRAM_COMPRESSION, bytes((DISABLED,))))
    assert requested(nxt) == [opt(O.MAC_SUPPORT, b"\x01")]


def test_nak_of_announced_mac_address_stops_announcing() -> None:
    m, req = started(BcpConfig(mac_address=MAC_A))
    nxt = reply_to_ours(m, req, Code.CONFIGURE_NAK, opt(O.MAC_ADDRESS, ASSIGNED))
    assert all(o.type != O.MAC_ADDRESS for o in requested(nxt))


def test_nak_with_assigned_address_taken_once_asked() -> None:
    m, req = started(BcpConfig(mac_address=ZERO_MAC))
    nxt = reply_to_ours(m, req, Code.CONFIGURE_NAK, opt(O.MAC_ADDRESS, GROUP))  # a group address: not taken
    assert all(o.type != O.MAC_ADDRESS for o in requested(nxt))
    m, req = started(BcpConfig(mac_address=ZERO_MAC))
    nxt = reply_to_ours(m, req, Code.CONFIGURE_NAK, opt(O.MAC_ADDRESS, ASSIGNED))
    assert opt(O.MAC_ADDRESS, ASSIGNED) in requested(nxt)
    m.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, nxt.identifier, nxt.data)), 0.0)
    assert answer(m).code == Code.CONFIGURE_ACK
    assert up(m).mac_address == ASSIGNED


def test_unsolicited_hints_are_ignored() -> None:
    m, req = started(BcpConfig(tagged_frames=None, management_inline=False))
    nxt = reply_to_ours(m, req, Code.CONFIGURE_NAK, opt(O.MAC_ADDRESS, ASSIGNED),
                        opt(O.TINYGRAM_COMPRESSION, bytes((ENABLED,))), opt(O.IEEE_802_TAGGED_FRAME, b"\x01"),
                        opt(O.SPANNING_TREE_PROTOCOL, b"\x01"), opt(42, b"x"))
    assert requested(nxt) == [opt(O.MAC_SUPPORT, b"\x01")]


def test_reject_of_everything_leaves_an_empty_request_that_is_acked() -> None:
    m, req = started(BcpConfig(tinygram=True, mac_address=MAC_A))
    nxt = reply_to_ours(m, req, Code.CONFIGURE_REJECT, *requested(req))
    assert nxt.data == b""
    m.receive(encode_cp(CpPacket(Code.CONFIGURE_ACK, nxt.identifier, b"")), 0.0)
    assert answer(m).code == Code.CONFIGURE_ACK
    v = up(m)
    assert v.mac_types == () and v.tagged is None and not v.management_inline and v.mac_address is None
