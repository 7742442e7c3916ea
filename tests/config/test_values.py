"""Value parsers (fastl2tp.config.values): TOML and RouterOS forms, canonical output, exact errors."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastl2tp.config.model import AuthMethod
from fastl2tp.config.values import (
    AddressRange,
    BadValue,
    EnumSet,
    Int,
    IntSet,
    IPv4OrPool,
    Route,
    Time,
    YesNoDefault,
    check_ifname,
    format_ranges,
    format_routes,
    format_time,
    parse_bool,
    parse_range,
    parse_ranges,
    parse_routes,
    parse_time,
    show,
    toml_string,
)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (30, 30.0),
        (0, 0.0),
        (1.5, 1.5),
        ("30", 30.0),
        ("30s", 30.0),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("1w2d", 9 * 86400.0),
        ("1100ms", 1.1),
        ("1s100ms", 1.1),
        ("00:01:00", 60.0),
        ("01:00:05", 3605.0),
        ("1d 00:00:01", 86401.0),
        ("00:00:01.5", 1.5),
        (" 10S ", 10.0),
        ("1.5s", 1.5),
    ],
)
def test_times(raw, seconds):
    assert parse_time(raw) == seconds


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", '"" is not a time (like 30, "30s", "1m", "1h30m", "00:01:00")'),
        ("5x", '"5x" is not a time (like 30, "30s", "1m", "1h30m", "00:01:00")'),
        ("1m1m", '"1m1m" is not a time (like 30, "30s", "1m", "1h30m", "00:01:00")'),
        ("s", '"s" is not a time (like 30, "30s", "1m", "1h30m", "00:01:00")'),
        ("00:61:00", '"00:61:00" is not a time (like 30, "30s", "1m", "1h30m", "00:01:00")'),
        (-1, "-1 is negative"),
        (0.0001, "0.0001 is finer than a millisecond"),
        (True, 'true is not a time (like 30, "30s", "1m", "1h30m", "00:01:00")'),
        ([30], '[30] is not a time (like 30, "30s", "1m", "1h30m", "00:01:00")'),
    ],
)
def test_bad_times(raw, message):
    with pytest.raises(BadValue) as info:
        parse_time(raw)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (30, "30s"), (60, "1m"), (5400, "1h30m"), (86400, "1d"), (1.1, "1s100ms"), (0.3, "300ms"),
     (694861, "1w1d1h1m1s")],
)
def test_format_time(seconds, text):
    assert format_time(seconds) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_time_roundtrip(ms):
    assert parse_time(format_time(ms / 1000)) == ms / 1000


def test_time_kind_none_words_and_ranges():
    keepalive = Time(1, 100, ("disabled", "none"))
    with pytest.raises(BadValue, match=r'^"0s" is less than 1s \(use "disabled" to turn it off\)$'):
        Time(1, None, ("disabled",)).parse("0s")
    assert keepalive.parse("disabled") is None
    assert keepalive.parse("none") is None
    assert keepalive.dump(None) == "disabled"
    assert keepalive.parse("1m") == 60.0
    with pytest.raises(BadValue, match=r'^"0s" is out of range 1s\.\.1m40s$'):
        keepalive.parse("0s")
    limit = Time(0, None, zero_is_none=True)
    assert limit.parse("0s") is None
    assert limit.parse(0) is None
    assert limit.parse(limit.dump(None)) is None


@pytest.mark.parametrize(("raw", "value"), [(True, True), (False, False), ("yes", True), ("no", False),
                                            ("true", True), ("false", False), ("Yes", True)])
def test_booleans(raw, value):
    assert parse_bool(raw) is value


@pytest.mark.parametrize("raw", [1, 0, "on", "", "y", None, [True]])
def test_bad_booleans(raw):
    with pytest.raises(BadValue, match="is not yes/no"):
        parse_bool(raw)


def test_yes_no_default():
    kind = YesNoDefault()
    assert kind.parse("default") is None
    assert kind.parse("yes") is True
    assert kind.parse(False) is False
    assert kind.dump(None) == "default"
    with pytest.raises(BadValue, match=r'^"maybe" is not yes, no or default$'):
        kind.parse("maybe")


def test_auth_sets_keep_order():
    kind = EnumSet(AuthMethod)
    assert kind.parse("mschap2,chap") == (AuthMethod.MSCHAP2, AuthMethod.CHAP)
    assert kind.parse(["pap", "mschap1"]) == (AuthMethod.PAP, AuthMethod.MSCHAP1)
    assert kind.parse(" chap , pap ") == (AuthMethod.CHAP, AuthMethod.PAP)
    assert kind.dump((AuthMethod.MSCHAP1, AuthMethod.MSCHAP2)) == ["mschap1", "mschap2"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("eap", '"eap" is not one of pap, chap, mschap1, mschap2'),
        ("pap,pap", '"pap" is listed twice'),
        ("", "must name at least one of pap, chap, mschap1, mschap2"),
        ([], "must name at least one of pap, chap, mschap1, mschap2"),
        (["pap", 1], '["pap", 1] is not a list of pap, chap, mschap1, mschap2 (an array of strings or "a,b")'),
        (3, '3 is not a list of pap, chap, mschap1, mschap2 (an array of strings or "a,b")'),
    ],
)
def test_bad_auth_sets(raw, message):
    with pytest.raises(BadValue) as info:
        EnumSet(AuthMethod).parse(raw)
    assert str(info.value) == message


def test_ints():
    mrru = Int(512, 65535, "disabled")
    assert mrru.parse(1600) == 1600
    assert mrru.parse("1600") == 1600
    assert mrru.parse("disabled") is None
    assert mrru.dump(None) == "disabled"
    with pytest.raises(BadValue, match=r"^511 is out of range 512\.\.65535$"):
        mrru.parse(511)
    with pytest.raises(BadValue, match=r'^true is not an integer 512\.\.65535 or "disabled"$'):
        mrru.parse(True)
    with pytest.raises(BadValue, match=r'^1500\.0 is not an integer 512\.\.65535 or "disabled"$'):
        mrru.parse(1500.0)


def test_routes():
    assert parse_routes("10.150.1.0/24 10.0.103.2 1") == (
        Route(IPv4Network("10.150.1.0/24"), IPv4Address("10.0.103.2"), 1),)
    assert parse_routes("10.150.1.0/24 10.0.103.2, 10.9.0.0/16 7,10.8.8.8") == (
        Route(IPv4Network("10.150.1.0/24"), IPv4Address("10.0.103.2"), 1),
        Route(IPv4Network("10.9.0.0/16"), None, 7),
        Route(IPv4Network("10.8.8.8/32"), None, 1),
    )
    assert parse_routes(["10.1.0.0/16 10.0.0.1 20"]) == (Route(IPv4Network("10.1.0.0/16"), IPv4Address("10.0.0.1"), 20),)
    assert parse_routes("") == ()
    routes = parse_routes("10.150.1.0/24 10.0.103.2 1,10.9.0.0/16 7,10.8.8.8/32")
    assert format_routes(routes) == "10.150.1.0/24 10.0.103.2 1,10.9.0.0/16 7,10.8.8.8/32"
    assert parse_routes(format_routes(routes)) == routes


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("10.150.1.1/24 10.0.103.2", '"10.150.1.1/24" has host bits set (did you mean 10.150.1.0/24?)'),
        ("10.150.1.0/33", '"10.150.1.0/33" is not an IPv4 prefix'),
        ("fd00::/64", '"fd00::/64" is not an IPv4 prefix'),
        ("10.1.0.0/16 gw", 'route "10.1.0.0/16 gw": gateway "gw" is not an IPv4 address'),
        ("10.1.0.0/16 10.0.0.1 256", 'route "10.1.0.0/16 10.0.0.1 256": metric "256" is not an integer 0..255'),
        ("10.1.0.0/16 10.0.0.1 1 x", '"10.1.0.0/16 10.0.0.1 1 x" is not a route ("dst-address [gateway] [metric]")'),
        ("10.1.0.0/16 10.0.0.1 x", 'route "10.1.0.0/16 10.0.0.1 x": metric "x" is not an integer 0..255'),
        (7, '7 is not a list of routes (an array of strings or "a,b")'),
    ],
)
def test_bad_routes(raw, message):
    with pytest.raises(BadValue) as info:
        parse_routes(raw)
    assert str(info.value) == message


def test_ranges():
    assert parse_ranges("10.0.0.2-10.0.0.254,10.1.0.0/24") == (
        AddressRange(IPv4Address("10.0.0.2"), IPv4Address("10.0.0.254")),
        AddressRange(IPv4Address("10.1.0.0"), IPv4Address("10.1.0.255")),
    )
    assert parse_range("10.0.0.9").size == 1
    assert parse_range("10.1.0.0/24").size == 256
    # canonical text: prefix when aligned, a single address alone, else a-b
    assert format_ranges(parse_ranges(["10.1.0.0-10.1.0.255", "10.2.0.1", "10.3.0.1-10.3.0.4"])) == (
        "10.1.0.0/24,10.2.0.1,10.3.0.1-10.3.0.4")
    assert IPv4Address("10.1.0.7") in parse_range("10.1.0.0/24")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("10.0.0.9-10.0.0.1", '"10.0.0.9-10.0.0.1" ends before it starts'),
        ("10.0.0.1-x", '"10.0.0.1-x" is not an IPv4 range ("a.b.c.d-e.f.g.h" or a prefix)'),
        ("pool", '"pool" is not an IPv4 range ("a.b.c.d-e.f.g.h" or a prefix)'),
        ("10.0.0.0/24,10.0.0.128/25", "ranges 10.0.0.0/24 and 10.0.0.128/25 overlap"),
        ("", "needs at least one range"),
    ],
)
def test_bad_ranges(raw, message):
    with pytest.raises(BadValue) as info:
        parse_ranges(raw)
    assert str(info.value) == message


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**16))
def test_range_text_roundtrip(first, size):
    last = min(first + size, 2**32 - 1)
    r = AddressRange(IPv4Address(first), IPv4Address(last))
    assert parse_range(str(r)) == r


def test_address_or_pool():
    kind = IPv4OrPool()
    assert kind.parse("10.0.0.1") == IPv4Address("10.0.0.1")
    assert kind.parse("office-vpn") == "office-vpn"
    assert kind.parse("") is None
    with pytest.raises(BadValue, match=r'^"10\.0\.0\.300" is not an IPv4 address$'):
        kind.parse("10.0.0.300")


def test_ifnames():
    assert check_ifname("l2tp-out1") == "l2tp-out1"
    assert check_ifname("FromLaptop") == "FromLaptop"
    for bad in ("", "a/b", "a b", "x" * 16, ".", "a:1"):
        with pytest.raises(BadValue):
            check_ifname(bad)


def test_show_and_toml_string():
    assert show("a\"b") == '"a\\"b"'
    assert show([1, "x", True]) == '[1, "x", true]'
    assert toml_string("tab\there\x01") == '"tab\\there\\u0001"'


def test_mppe_key_lengths_set():
    kind = IntSet((40, 56, 128))
    assert kind.type_name == "multiple choice: 40, 56, 128"
    assert kind.parse("128,40") == (128, 40)
    assert kind.parse("40,128") == (128, 40)  # the order does not matter: the strongest common wins
    assert kind.parse([40, "56"]) == (56, 40)
    assert kind.parse(40) == (40,)
    assert kind.parse(" 128 ") == (128,)
    assert kind.dump((128, 40)) == [128, 40]
    assert kind.parse(kind.dump((128, 56, 40))) == (128, 56, 40)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("64", '"64" is not one of 40, 56, 128'),
        ("40,40", '"40" is listed twice'),
        ("", "must name at least one of 40, 56, 128"),
        ([], "must name at least one of 40, 56, 128"),
        ("strong", '"strong" is not one of 40, 56, 128'),
        ([True], '[true] is not a list of 40, 56, 128 (an array or "a,b")'),
        (1.5, '1.5 is not a list of 40, 56, 128 (an array of strings or "a,b")'),
    ],
)
def test_bad_mppe_key_lengths(raw, message):
    with pytest.raises(BadValue) as info:
        IntSet((40, 56, 128)).parse(raw)
    assert str(info.value) == message
