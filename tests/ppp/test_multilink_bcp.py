"""PppLink with Multilink (RFC 1990) and BCP (RFC 3518); the bundle registry (ppp/bundle.py).

Both ends are ours over the simulated wire of ``LinkPair``; the test plays the runtime's part where the
link asks for it (``MultilinkUp`` → ``start_network`` / ``join_bundle``, the hand-over of a bundle's NCPs).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastl2tp.errors import PeerProtocolError
from fastl2tp.ppp.bcp import BcpConfig
from fastl2tp.ppp.bundle import (
    BundleMismatch,
    Bundles,
    Formats,
    bundle_key,
    describe_endpoint,
)
from fastl2tp.ppp.events import (
    BridgeUp,
    EncryptionRefused,
    LinkDown,
    MultilinkUp,
    NetworkDown,
    NetworkUp,
)
from fastl2tp.ppp.lcp import LcpConfig, LcpValues
from fastl2tp.ppp.link import (
    ENCRYPTION_OVER_MULTILINK,
    Encryption,
    LinkConfig,
    Phase,
    PppLink,
    Role,
)
from fastl2tp.wire.auth import AuthMethod
from fastl2tp.wire.ppp import (
    Code,
    CpPacket,
    Protocol,
    decode_frame,
    decode_options,
    encode_cp,
)
from tests.ppp.link_harness import LinkPair, ScriptedRng, drain_events
from tests.ppp.test_link import PASSWORD, SERVER_IPCP, client_link

ED_SERVER = b"\x01" + bytes.fromhex("0a0b0c0d")
ED_CLIENT = b"\x03" + bytes.fromhex("020000000001")


def mp_server(mrru: int | None = 1600, *, rng_start: int = 0x5000, **kw) -> PppLink:
    kw.setdefault("ipcp", SERVER_IPCP)
    lcp = LcpConfig(keepalive_timeout_s=None, mrru=mrru, endpoint=ED_SERVER if mrru else None)
    return PppLink(Role.SERVER, LinkConfig(lcp=lcp, authenticate=(AuthMethod.MSCHAP2,), auth_name="lns", **kw),
                   rng=ScriptedRng(start=rng_start))


def mp_client(mrru: int | None = 1614, *, short_seq: bool = False, rng_start: int = 0x9000, **kw) -> PppLink:
    lcp = LcpConfig(keepalive_timeout_s=None, mrru=mrru, short_seq=short_seq, endpoint=ED_CLIENT if mrru else None)
    return PppLink(Role.CLIENT, LinkConfig(lcp=lcp, allow=(AuthMethod.MSCHAP2,), username="ex", password=PASSWORD,
                                           **kw), rng=ScriptedRng(start=rng_start))


def run_as_runtime(p: LinkPair, until: float, bundles: dict[str, Bundles] | None = None) -> None:
    """Run the pair, answering MultilinkUp as the runtime does: join the side's registry (a fresh one
    when none is given), start_network for the owner, join_bundle for a member."""
    bundles = bundles if bundles is not None else {"server": Bundles(), "client": Bundles()}
    t = p.now
    while t < until:
        t = min(until, t + 0.25)
        p.run(t)
        for name in ("server", "client"):
            link = p.link(name)
            for ev in p.of(name, MultilinkUp):
                if link._awaiting_bundle:
                    _, owner = bundles[name].join(link, ev.peer_name, ev.values)
                    (link.start_network if owner else link.join_bundle)(p.now)
        p._drain(p.now)


def test_single_link_multilink_negotiates_mrru_and_then_runs_the_ncps() -> None:
    p = LinkPair(mp_server(), mp_client(), secrets={"ex": PASSWORD})
    p.start(0.0)
    p.run(3.0)
    # authenticated, MP negotiated: the links wait for the runtime, no IPCP yet
    for name in ("server", "client"):
        link = p.link(name)
        assert link.multilink and link.phase is Phase.NETWORK and link.ipcp is None
        (ev,) = p.of(name, MultilinkUp)
        assert not p.of(name, NetworkUp)
    (sev,) = p.of("server", MultilinkUp)
    assert sev.peer_name == "ex" and sev.peer_endpoint == ED_CLIENT
    assert (sev.values.mrru, sev.values.peer_mrru) == (1600, 1614)  # Windows' 1614 accepted as is
    (cev,) = p.of("client", MultilinkUp)
    assert cev.peer_endpoint == ED_SERVER and (cev.values.mrru, cev.values.peer_mrru) == (1614, 1600)
    run_as_runtime(p, 8.0)
    assert p.server.ipcp.is_opened and p.client.ipcp.is_opened
    (up,) = p.of("client", NetworkUp)
    assert up.local_address == SERVER_IPCP.remote_address


def test_peer_that_rejects_mrru_falls_back_to_plain_ppp() -> None:
    p = LinkPair(mp_server(), mp_client(mrru=None), secrets={"ex": PASSWORD})
    p.start(0.0)
    p.run(6.0)
    assert not p.server.multilink and not p.client.multilink
    assert not p.of("server", MultilinkUp)
    assert p.of("server", NetworkUp) and p.of("client", NetworkUp)
    # the server asked for its MRRU and endpoint discriminator; the client rejected both
    rejects = p.sent("client", Protocol.LCP, Code.CONFIGURE_REJECT)
    assert rejects and {o.type for o in decode_options(rejects[0][1].data)} >= {17, 19}


def test_mp_frames_without_multilink_are_protocol_rejected() -> None:
    p = LinkPair(mp_server(mrru=None), mp_client(mrru=None), secrets={"ex": PASSWORD})
    p.start(0.0)
    p.run(6.0)
    p.server.receive_frame(b"\xff\x03\x00\x3d\xc0\x00\x00\x01\x00\x21\x45", p.now)
    p._drain(p.now)
    assert p.server.counters.get("protocol_rejected") == 1


@pytest.mark.parametrize("policy", [Encryption.YES, Encryption.REQUIRED])
def test_mppe_over_multilink_is_refused_clearly(policy: Encryption) -> None:
    p = LinkPair(mp_server(use_encryption=policy), mp_client(use_encryption=policy), secrets={"ex": PASSWORD})
    p.start(0.0)
    run_as_runtime(p, 8.0)
    if policy is Encryption.REQUIRED:
        (down,) = p.of("server", LinkDown)
        assert down.reason == ENCRYPTION_OVER_MULTILINK
    else:
        assert p.server.ipcp.is_opened and p.server.ccp is None
        (refused,) = p.of("server", EncryptionRefused)
        assert "multilink" in refused.reason


def test_bridged_link_runs_bcp_instead_of_ipcp() -> None:
    server = mp_server(mrru=None, ipcp=None, bcp=BcpConfig())
    client = mp_client(mrru=None, bcp=BcpConfig())
    p = LinkPair(server, client, secrets={"ex": PASSWORD})
    p.start(0.0)
    p.run(6.0)
    for name in ("server", "client"):
        (up,) = p.of(name, BridgeUp)
        assert up.values.peer_takes_ethernet and up.mtu == 1450
        assert p.link(name).ipcp is None and not p.of(name, NetworkUp)
    # an IPCP Configure-Request to a bridge port is Protocol-Rejected, the link stays
    p.server.receive_frame(b"\xff\x03\x80\x21\x01\x07\x00\x0a\x03\x06\x00\x00\x00\x00", p.now)
    p._drain(p.now)
    assert p.server.counters.get("protocol_rejected") == 1 and p.server.phase is Phase.NETWORK
    # bridged data is only counted here (the data plane carries it)
    p.server.receive_frame(b"\xff\x03\x00\x31\x00\x01" + bytes(60), p.now)
    assert p.server.counters.get("data_seen") == 1


def test_server_bridges_per_user_at_login() -> None:
    """The server learns at login (the user's profile) that the session is a bridge port."""
    server = mp_server(mrru=None, ipcp=None)
    client = mp_client(mrru=None, bcp=BcpConfig())
    p = LinkPair(server, client, secrets={"ex": PASSWORD})
    orig = server.complete_auth

    def complete(request_id, decision, now, **kw):
        return orig(request_id, decision, now, bridged=True)

    server.complete_auth = complete  # the runtime's grant for a profile with bridge=...
    p.start(0.0)
    p.run(6.0)
    assert p.of("server", BridgeUp) and p.of("client", BridgeUp)


def test_client_not_bridged_against_a_bridge_port_ends_with_no_network_protocol() -> None:
    server = mp_server(mrru=None, ipcp=None, bcp=BcpConfig())
    p = LinkPair(server, client_link(), secrets={"ex": PASSWORD})
    p.start(0.0)
    p.run(30.0)
    (down,) = p.of("client", LinkDown)
    assert "IPCP" in down.reason or "reject" in down.reason.lower()


def test_bridged_multilink_bundle() -> None:
    server = mp_server(ipcp=None, bcp=BcpConfig())
    client = mp_client(bcp=BcpConfig())
    p = LinkPair(server, client, secrets={"ex": PASSWORD})
    p.start(0.0)
    run_as_runtime(p, 8.0)
    assert p.of("server", BridgeUp) and p.of("client", BridgeUp)


def _two_link_bundle() -> tuple[LinkPair, LinkPair, dict[str, Bundles]]:
    bundles = {"server": Bundles(), "client": Bundles()}
    a = LinkPair(mp_server(), mp_client(), secrets={"ex": PASSWORD})
    b = LinkPair(mp_server(rng_start=0x6000), mp_client(rng_start=0xA000), secrets={"ex": PASSWORD})
    a.start(0.0)
    run_as_runtime(a, 6.0, bundles)
    b.start(6.0)
    run_as_runtime(b, 12.0, bundles)
    return a, b, bundles


def test_second_link_joins_the_bundle_without_ncps() -> None:
    a, b, bundles = _two_link_bundle()
    assert a.server.ipcp.is_opened and a.client.ipcp.is_opened
    for link in (b.server, b.client):
        assert link.bundle_member and link.phase is Phase.NETWORK and link.ipcp is None
    assert not b.of("server", NetworkUp) and not b.sent("client", Protocol.IPCP)
    (bundle,) = list(bundles["server"])
    assert bundle.links == [a.server, b.server] and bundle.owner is a.server
    assert bundle.formats == Formats(1600, 1614, False, False)


def test_owner_going_down_hands_the_ncps_to_the_other_link() -> None:
    a, b, bundles = _two_link_bundle()
    for name in ("server", "client"):
        a.link(name).keep_network = True
    ipcp_before = a.server.ipcp
    a.server.lower_down(a.now)  # the L2TP session of link A is gone on both ends
    a.client.lower_down(a.now)
    a._drain(a.now)
    assert a.of("server", LinkDown) and not a.of("server", NetworkDown)
    for name in ("server", "client"):
        left = bundles[name].leave(a.link(name))
        assert left.was_owner and left.new_owner is b.link(name) and not left.empty
        state = a.link(name).release_network()
        assert state is not None and a.link(name).release_network() is None
        assert b.link(name).adopt_network(state, b.now)
    assert b.server.ipcp is ipcp_before and b.server.ipcp.is_opened and not b.server.bundle_member
    # the NCPs now talk over link B: an IPCP renegotiation by the client completes there
    b.client.ipcp.open(b.now)
    b.client.ipcp.lower_down(b.now)
    b.client.ipcp.lower_up(b.now)
    b.client._settle(b.now)
    b._drain(b.now)
    b.run(b.now + 5.0)
    assert b.server.ipcp.is_opened and b.client.ipcp.is_opened
    assert b.sent("server", Protocol.IPCP, Code.CONFIGURE_ACK)
    assert b.server.phase is Phase.NETWORK and not b.of("server", LinkDown)


def test_registry_keys_and_mismatch() -> None:
    def values(peer_endpoint: bytes | None, short: bool = False) -> LcpValues:
        return LcpValues(1450, 1450, None, None, 1, 2, None, False, False, 1600, 1614, short, False, None,
                         peer_endpoint)

    reg: Bundles[str] = Bundles()
    assert reg.join("a", "ex", values(ED_CLIENT)) [1] is True
    assert reg.join("b", "ex", values(ED_CLIENT))[1] is False
    assert reg.join("c", "other", values(ED_CLIENT))[1] is True  # another user: another bundle
    assert reg.join("d", "ex", values(None))[1] is True  # no discriminator: alone
    assert reg.join("e", "ex", values(None))[1] is True
    assert reg.join("f", "ex", values(b"\x00"))[1] is True  # the Null class: alone
    with pytest.raises(BundleMismatch) as exc:
        reg.join("g", "ex", values(ED_CLIENT, short=True))
    assert isinstance(exc.value, PeerProtocolError) and "12-bit" in str(exc.value)
    assert reg.of("g") is None
    with pytest.raises(ValueError):
        reg.join("a", "ex", values(ED_CLIENT))
    left = reg.leave("b")
    assert not left.was_owner and left.new_owner is None and not left.empty
    left = reg.leave("a")
    assert left.was_owner and left.empty and left.new_owner is None
    assert reg.leave("a") is None
    assert len(reg) == 4
    assert bundle_key("ex", ED_CLIENT, "x") == bundle_key("ex", ED_CLIENT, "y")
    assert describe_endpoint(ED_CLIENT) == "mac:02:00:00:00:00:01"
    assert describe_endpoint(b"\x02\x0a\x00\x00\x01") == "ip:10.0.0.1"
    assert describe_endpoint(None) == "none"


_protocols = st.sampled_from([0xC021, 0xC223, 0x8021, 0x8031, 0x80FD, 0x0031, 0x003D, 0x0021])
_frames = st.one_of(
    st.binary(max_size=48),
    st.builds(lambda proto, body: b"\xff\x03" + proto.to_bytes(2, "big") + body, _protocols,
              st.one_of(st.builds(lambda c, i, d: encode_cp(CpPacket(c, i, d)), st.integers(0, 12),
                                  st.integers(0, 255), st.binary(max_size=40)), st.binary(max_size=40))),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.booleans(), st.sampled_from(["server", "client"]),
       st.lists(st.tuples(_frames, st.floats(0, 5)), max_size=25))
def test_fuzz_multilink_and_bridged_links_never_raise(multilink: bool, bridged: bool, side: str,
                                                      inputs: list[tuple[bytes, float]]) -> None:
    """Garbage and stray BCP/MP/NCP frames at a multilink and/or bridged link in the Network phase: no
    exception, every frame out well formed, at most one LinkDown."""
    mrru = 1600 if multilink else None
    bcp = BcpConfig() if bridged else None
    p = LinkPair(mp_server(mrru, ipcp=None if bridged else SERVER_IPCP, bcp=bcp),
                 mp_client(1614 if multilink else None, bcp=bcp), secrets={"ex": PASSWORD})
    p.start(0.0)
    run_as_runtime(p, 6.0)
    link = p.link(side)
    now = p.now
    downs = len(p.of(side, LinkDown))
    for frame, dt in inputs:
        now += dt
        link.receive_frame(frame, now)
        link.handle_timer(now)
        for out in link.take_frames():
            decode_frame(out)
        downs += sum(isinstance(e, LinkDown) for e in drain_events(link))
    assert downs <= 1
