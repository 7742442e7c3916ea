"""RouterOS precedence (fastl2tp.config.resolve) and the IP pool allocator."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastl2tp.config import (
    IpPool,
    IpPools,
    Route,
    Service,
    UseEncryption,
    UseIpv6,
    effective_client,
    effective_session,
    find_secret,
    load_text,
    static_interface,
)
from fastl2tp.config.values import parse_ranges
from fastl2tp.errors import ConfigError

A = IPv4Address

CONFIG = load_text("""
[l2tp-server.server]
enabled = true
default-profile = "radius-users"

[[l2tp-server.interface]]
name = "l2tp-in-ex"
user = "ex"

[[ip.pool]]
name = "main"
ranges = "10.1.0.10-10.1.0.12"
next-pool = "spare"

[[ip.pool]]
name = "spare"
ranges = "10.2.0.0/31"

[[ppp.profile]]
name = "default"
dns-server = "10.0.0.53"
only-one = "yes"

[[ppp.profile]]
name = "office"
local-address = "10.1.0.1"
remote-address = "main"
dns-server = ["10.1.0.53", "10.1.0.54"]
wins-server = "10.1.0.55"
session-timeout = "8h"
idle-timeout = "30m"
rate-limit = "10M/10M"

[[ppp.profile]]
name = "radius-users"
remote-address = "spare"
use-encryption = "required"
use-ipv6 = "no"
change-tcp-mss = "no"
only-one = "no"

[[ppp.secret]]
name = "ex"
password = "lkjrht"
service = "l2tp"
local-address = "10.0.103.1"
remote-address = "10.0.103.2"
routes = "10.150.1.0/24 10.0.103.2 1"

[[ppp.secret]]
name = "laptop"
profile = "office"
remote-address = "10.1.0.99"

[[ppp.secret]]
name = "pooled"
profile = "office"

[[ppp.secret]]
name = "off"
disabled = true

[[ppp.secret]]
name = "dsl"
service = "pppoe"

[[l2tp-client]]
connect-to = "10.9.9.9"
user = "u"
profile = "office"
""")


def test_secret_addresses_and_routes_over_the_profile():
    params = effective_session(CONFIG, find_secret(CONFIG, "ex"))
    assert params.profile == "default"
    assert (params.local_address, params.remote_address) == (A("10.0.103.1"), A("10.0.103.2"))
    assert params.routes == (Route(IPv4Network("10.150.1.0/24"), A("10.0.103.2"), 1),)
    # the `default` profile as changed in the file, and its built-in values where it says default
    assert params.dns_server == (A("10.0.0.53"),)
    assert params.only_one is True
    assert params.use_encryption is UseEncryption.NO
    assert params.use_ipv6 is UseIpv6.YES
    assert params.change_tcp_mss is True


def test_single_secret_address_over_profile_pool():
    params = effective_session(CONFIG, find_secret(CONFIG, "laptop"))
    assert params.profile == "office"
    assert params.local_address == A("10.1.0.1")  # from the profile: the secret has none
    assert params.remote_address == A("10.1.0.99")  # the secret's address beats the profile's pool
    assert params.dns_server == (A("10.1.0.53"), A("10.1.0.54"))
    assert params.wins_server == (A("10.1.0.55"),)
    assert (params.session_timeout, params.idle_timeout) == (8 * 3600.0, 1800.0)
    assert params.rate_limit == "10M/10M"
    assert params.only_one is True  # office says default → the `default` profile's yes


def test_profile_pool_when_the_secret_has_no_address():
    params = effective_session(CONFIG, find_secret(CONFIG, "pooled"))
    assert params.remote_address == "main"


def test_user_without_secret_gets_the_server_default_profile():
    params = effective_session(CONFIG, None)
    assert params.profile == "radius-users"
    assert params.remote_address == "spare"
    assert params.use_encryption is UseEncryption.REQUIRED
    assert params.use_ipv6 is UseIpv6.NO
    assert params.change_tcp_mss is False and params.only_one is False
    assert params.dns_server == ()  # not merged from `default`


def test_profile_override_from_radius_group():
    secret = find_secret(CONFIG, "ex")
    params = effective_session(CONFIG, secret, profile_name_override="office")
    assert params.profile == "office"
    assert params.remote_address == A("10.0.103.2")  # the secret still wins
    with pytest.raises(ConfigError, match='^ppp.profile: no profile named "gold"'):
        effective_session(CONFIG, secret, profile_name_override="gold")


def test_use_encryption_default_inherits_from_default_profile():
    config = load_text('[[ppp.profile]]\nname = "default"\nuse-encryption = "required"\nuse-ipv6 = "required"\n'
                       '[[ppp.profile]]\nname = "p"\n[[ppp.secret]]\nname = "a"\nprofile = "p"\n'
                       '[[ppp.secret]]\nname = "b"\nprofile = "default-encryption"\n')
    a = effective_session(config, find_secret(config, "a"))
    assert a.use_encryption is UseEncryption.REQUIRED and a.use_ipv6 is UseIpv6.REQUIRED
    b = effective_session(config, find_secret(config, "b"))
    assert b.use_encryption is UseEncryption.YES  # default-encryption's own yes


def test_find_secret_and_static_interface():
    assert find_secret(CONFIG, "off") is None
    assert find_secret(CONFIG, "dsl") is None
    assert find_secret(CONFIG, "dsl", Service.PPPOE) is not None
    assert find_secret(CONFIG, "nobody") is None
    assert static_interface(CONFIG, "ex").name == "l2tp-in-ex"
    assert static_interface(CONFIG, "laptop") is None


def test_effective_client():
    params = effective_client(CONFIG, CONFIG.l2tp_client[0])
    assert params.profile == "office" and params.remote_address == "main" and params.routes == ()


# --- pools ---------------------------------------------------------------------------------------


def test_pool_exhaustion_falls_through_to_next_pool():
    pools = IpPools.from_config(CONFIG)
    main = pools["main"]
    assert (main.total, main.used, main.available) == (3, 0, 3)
    got = [pools.allocate("main", f"s{i}") for i in range(5)]
    assert got == [A("10.1.0.10"), A("10.1.0.11"), A("10.1.0.12"), A("10.2.0.0"), A("10.2.0.1")]
    assert pools.allocate("main", "s5") is None
    assert (main.used, main.available, pools["spare"].used) == (3, 0, 2)
    assert main.owner_of(A("10.1.0.11")) == "s1"
    assert pools["spare"].leases() == {A("10.2.0.0"): "s3", A("10.2.0.1"): "s4"}


def test_release_and_reuse_oldest_first():
    pool = IpPool("p", parse_ranges("10.0.0.1-10.0.0.4"))
    for i in range(4):
        pool.allocate(i)
    assert pool.release(A("10.0.0.3")) and pool.release(A("10.0.0.1"))
    assert not pool.release(A("10.0.0.3"))  # not held any more
    assert not pool.release(A("192.0.2.1"))
    assert pool.allocate("x") == A("10.0.0.3")
    assert pool.allocate("y") == A("10.0.0.1")
    assert pool.allocate("z") is None


def test_fresh_addresses_before_released_ones():
    pool = IpPool("p", parse_ranges("10.0.0.1-10.0.0.3"))
    first = pool.allocate("a")
    pool.release(first)
    assert pool.allocate("b") == A("10.0.0.2")  # not the address just given up


def test_prefer_and_release_through_the_chain():
    pools = IpPools.from_config(CONFIG)
    main = pools["main"]
    assert main.allocate("a", prefer=A("10.1.0.12")) == A("10.1.0.12")
    assert main.allocate("b", prefer=A("10.1.0.12")) == A("10.1.0.10")  # taken: another one
    assert main.allocate("c") == A("10.1.0.11")
    assert main.allocate("d") == A("10.2.0.0")  # from spare
    assert main.release(A("10.2.0.0"))  # released where it was taken
    assert pools["spare"].used == 0
    assert pools.release(A("10.1.0.10")) and main.used == 2
    assert A("10.1.0.10") in main and A("10.2.0.0") not in main


@settings(max_examples=200)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=120))
def test_pools_never_hand_out_an_address_twice(ops):
    pools = IpPools.from_config(load_text(
        '[[ip.pool]]\nname = "a"\nranges = "10.0.0.1-10.0.0.5,10.0.1.0/30"\nnext-pool = "b"\n'
        '[[ip.pool]]\nname = "b"\nranges = "10.0.2.7"\n'))
    held: dict[IPv4Address, int] = {}
    for n, (allocate, pick) in enumerate(ops):
        if allocate:
            address = pools.allocate("a", n, prefer=A(f"10.0.0.{pick % 8}"))
            if address is None:
                assert len(held) == 10
            else:
                assert address not in held
                held[address] = n
        elif held:
            address = sorted(held)[pick % len(held)]
            assert pools.release(address)
            del held[address]
        assert sum(p.used for p in pools.values()) == len(held)
        assert all(p.used + p.available == p.total for p in pools.values())
    leases = {**pools["a"].leases(), **pools["b"].leases()}
    assert leases == held


def test_mppe_keys_are_the_chosen_profiles_own():
    from fastl2tp.config.model import MppeStateful

    config = load_text('[[ppp.profile]]\nname = "default"\nmppe-key-lengths = "40"\nmppe-stateful = "no"\n'
                       '[[ppp.profile]]\nname = "pppd"\nmppe-key-lengths = "128,56"\nmppe-stateful = "prefer"\n'
                       '[[ppp.secret]]\nname = "a"\nprofile = "pppd"\n'
                       '[[ppp.secret]]\nname = "b"\nprofile = "default-encryption"\n'
                       '[[ppp.secret]]\nname = "c"\n'
                       '[[l2tp-client]]\nconnect-to = "10.9.9.9"\nuser = "u"\nprofile = "pppd"\n')
    a = effective_session(config, find_secret(config, "a"))
    assert (a.mppe_key_lengths, a.mppe_stateful) == ((128, 56), MppeStateful.PREFER)
    b = effective_session(config, find_secret(config, "b"))  # not merged from `default`: no `default` value
    assert (b.mppe_key_lengths, b.mppe_stateful) == ((128, 40), MppeStateful.ALLOW)
    c = effective_session(config, find_secret(config, "c"))
    assert (c.mppe_key_lengths, c.mppe_stateful) == ((40,), MppeStateful.NO)
    server_default = effective_session(config, None)  # the server's default-profile: default-encryption
    assert (server_default.mppe_key_lengths, server_default.mppe_stateful) == ((128, 40), MppeStateful.ALLOW)
    client = effective_client(config, config.l2tp_client[0])
    assert (client.mppe_key_lengths, client.mppe_stateful) == ((128, 56), MppeStateful.PREFER)
