"""``load(dump(c)) == c`` for random valid configurations, built from the model with hypothesis."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network, IPv6Address

from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp.config import (
    BUILTIN_PROFILES,
    Aaa,
    AddressRange,
    AuthMethod,
    CallerIdType,
    Config,
    Daemon,
    IpMenu,
    L2tpClient,
    L2tpSecret,
    L2tpServer,
    L2tpServerInterface,
    L2tpServerMenu,
    LogLevel,
    Pool,
    PppMenu,
    Profile,
    RadiusIncoming,
    RadiusServer,
    RadiusService,
    Route,
    Secret,
    Service,
    UseEncryption,
    UseIpv6,
    check,
    dump,
    load_text,
)
from fastl2tp.config.model import MppeStateful
from fastl2tp.config.values import looks_like_ipv4

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
name = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.sampled_from("äé€ "), min_size=1,
               max_size=10).map(str.strip).filter(lambda s: s and not s.replace(".", "").isdigit())
# a reference (next-pool, bridge): the word "none" in any case means no reference, so never a name
ref_name = name.filter(lambda s: s.lower() != "none")
ifname = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_.-]{0,14}", fullmatch=True).filter(lambda s: s not in (".", ".."))
ipv4 = st.integers(1, 2**32 - 2).map(IPv4Address)
ip_any = ipv4 | st.integers(1, 2**128 - 1).map(IPv6Address)
times_ms = st.integers(1, 10**9).map(lambda ms: ms / 1000)
keepalive = st.integers(1000, 10**9).map(lambda ms: ms / 1000)


def enum_set(cls):
    return st.lists(st.sampled_from(list(cls)), min_size=1, unique=True).map(tuple)


route = st.builds(Route, st.tuples(ipv4, st.integers(8, 32)).map(
    lambda t: IPv4Network((int(t[0]) >> (32 - t[1]) << (32 - t[1]), t[1]))),
    st.none() | ipv4, st.integers(0, 255))


@st.composite
def configs(draw):
    # pools: disjoint blocks of 10.x.0.0/16, names distinct; next-pool only to a later pool (no loops)
    pool_names = draw(st.lists(ref_name.filter(lambda n: not looks_like_ipv4(n)), max_size=4, unique=True))
    pools = []
    for i, pool_name in enumerate(pool_names):
        base = int(IPv4Address("10.0.0.0")) + (i << 16)
        starts = sorted(draw(st.sets(st.integers(0, 2**16 - 1), min_size=1, max_size=3)))
        ranges = []
        for j, start in enumerate(starts):
            end = (starts[j + 1] - 1) if j + 1 < len(starts) else 2**16 - 1
            last = draw(st.integers(start, end))
            ranges.append(AddressRange(IPv4Address(base + start), IPv4Address(base + last)))
        later = pool_names[i + 1:]
        pools.append(Pool(name=pool_name, ranges=tuple(ranges),
                          next_pool=draw(st.none() | st.sampled_from(later)) if later else None,
                          comment=draw(text)))
    address_or_pool = st.none() | ipv4 | (st.sampled_from(pool_names) if pool_names else st.nothing())
    profile_names = draw(st.lists(name, max_size=4, unique=True))
    profiles = []
    for profile_name in profile_names:
        base = BUILTIN_PROFILES.get(profile_name, Profile(name=profile_name))
        profiles.append(dataclasses.replace(
            base,
            local_address=draw(address_or_pool), remote_address=draw(address_or_pool),
            dns_server=tuple(draw(st.lists(ipv4, max_size=2))), wins_server=tuple(draw(st.lists(ipv4, max_size=2))),
            use_encryption=draw(st.sampled_from(UseEncryption)), use_ipv6=draw(st.sampled_from(UseIpv6)),
            mppe_key_lengths=tuple(sorted(draw(st.sets(st.sampled_from((40, 56, 128)), min_size=1)),
                                          reverse=True)),
            mppe_stateful=draw(st.sampled_from(MppeStateful)),
            change_tcp_mss=draw(st.none() | st.booleans()), only_one=draw(st.none() | st.booleans()),
            session_timeout=draw(st.none() | times_ms), idle_timeout=draw(st.none() | times_ms),
            bridge=draw(st.none() | ref_name), bridge_horizon=draw(st.none() | st.integers(0, 429496729)),
            rate_limit=draw(st.none() | st.sampled_from(["10M/10M", "1M 2M/3M"])), comment=draw(text)))
    # the built-ins always there, unchanged ones where load puts them (at the end) or anywhere else
    for builtin in BUILTIN_PROFILES.values():
        if builtin.name not in profile_names:
            profiles.insert(draw(st.integers(0, len(profiles))), builtin)
    all_profiles = [p.name for p in profiles]
    secrets = tuple(
        Secret(name=f"{n}-{i}", password=draw(text), service=draw(st.sampled_from(Service)),
               caller_id=draw(text), profile=draw(st.sampled_from(all_profiles)),
               local_address=draw(st.none() | ipv4), remote_address=draw(st.none() | ipv4),
               routes=tuple(draw(st.lists(route, max_size=3))), disabled=draw(st.booleans()), comment=draw(text))
        for i, n in enumerate(draw(st.lists(name, max_size=4))))
    l2tp_users = [s.name for s in secrets if s.service in (Service.ANY, Service.L2TP)]
    ifnames = draw(st.lists(ifname, max_size=6, unique=True))
    n_static = draw(st.integers(0, len(ifnames))) if l2tp_users else 0
    statics = tuple(L2tpServerInterface(name=ifn, user=draw(st.sampled_from(l2tp_users)),
                                        disabled=draw(st.booleans()), comment=draw(text))
                    for ifn in ifnames[:n_static])
    clients = tuple(
        L2tpClient(name=ifn, connect_to=draw(ip_any | st.sampled_from(["vpn.example.com", "h"])),
                   port=draw(st.integers(1, 65535)), user=draw(name), password=draw(text),
                   profile=draw(st.sampled_from(all_profiles)), allow=draw(enum_set(AuthMethod)),
                   add_default_route=draw(st.booleans()), default_route_distance=draw(st.integers(0, 255)),
                   keepalive_timeout=draw(st.none() | keepalive), max_mtu=draw(st.integers(512, 65535)),
                   max_mru=draw(st.integers(512, 65535)), mrru=draw(st.none() | st.integers(512, 65535)),
                   disabled=draw(st.booleans()), comment=draw(text))
        for ifn in ifnames[n_static:])
    server = L2tpServer(
        enabled=draw(st.booleans()), authentication=draw(enum_set(AuthMethod)),
        default_profile=draw(st.sampled_from(all_profiles)), keepalive_timeout=draw(st.none() | keepalive),
        max_mtu=draw(st.integers(512, 65535)), max_mru=draw(st.integers(512, 65535)),
        mrru=draw(st.none() | st.integers(512, 65535)), max_sessions=draw(st.none() | st.integers(0, 2**32 - 1)),
        one_session_per_host=draw(st.booleans()), caller_id_type=draw(st.sampled_from(CallerIdType)),
        listen_address=draw(ip_any), port=draw(st.integers(1, 65535)))
    radius = tuple(
        RadiusServer(address=draw(ip_any), secret=draw(text.filter(bool)), service=draw(enum_set(RadiusService)),
                     authentication_port=draw(st.integers(1, 65535)), accounting_port=draw(st.integers(1, 65535)),
                     timeout=draw(st.integers(1, 60000)) / 1000, src_address=draw(st.none() | ip_any),
                     disabled=draw(st.booleans()), comment=draw(text))
        for _ in range(draw(st.integers(0, 3))))
    has_ppp_radius = any(not r.disabled and RadiusService.PPP in r.service for r in radius)
    nets = draw(st.lists(st.tuples(ipv4, st.integers(0, 32)).map(
        lambda t: IPv4Network((int(t[0]) >> (32 - t[1]) << (32 - t[1]) if t[1] else 0, t[1]))),
        max_size=3, unique=True))
    return Config(
        l2tp_server=L2tpServerMenu(server=server, interface=statics),
        l2tp_client=clients,
        ppp=PppMenu(secret=secrets, profile=tuple(profiles),
                    l2tp_secret=tuple(L2tpSecret(address=n, secret=draw(text.filter(bool)), comment=draw(text))
                                      for n in nets),
                    aaa=Aaa(use_radius=has_ppp_radius and draw(st.booleans()), accounting=draw(st.booleans()),
                            interim_update=draw(st.none() | times_ms))),
        ip=IpMenu(pool=tuple(pools)),
        radius=radius,
        radius_incoming=RadiusIncoming(accept=bool(radius) and draw(st.booleans()), port=draw(st.integers(1, 65535))),
        daemon=Daemon(socket=draw(st.sampled_from(["/run/fastl2tp/fastl2tpd.sock", "/tmp/x y.sock"])),
                      log_level=draw(st.sampled_from(LogLevel))),
    )


@settings(max_examples=150, deadline=None)
@given(configs())
def test_load_dump_roundtrip(config):
    check(config)  # the strategy only builds valid configurations
    text = dump(config)
    assert load_text(text) == config
    assert dump(load_text(text)) == text
