"""The loader (fastl2tp.config.load): bad configs with their exact error text (go-l2tp's TestBadConfig),
good configs (the manual's examples among them), defaults, built-in profiles, check() and dump()."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from fastl2tp.config import (
    DEFAULT_ENCRYPTION_PROFILE,
    DEFAULT_PROFILE,
    AuthMethod,
    CallerIdType,
    Config,
    L2tpClient,
    Route,
    Secret,
    UseEncryption,
    UseIpv6,
    check,
    dump,
    load,
    load_file,
    load_text,
    parse_setting,
)
from fastl2tp.config.model import L2tpServer, Profile
from fastl2tp.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CLIENT = '[[l2tp-client]]\nconnect-to = "10.0.0.1"\nuser = "u"\n'
SECRET = '[[ppp.secret]]\nname = "ex"\n'

BAD_CONFIGS = [
    # (name, TOML, exact error text)
    ("toml syntax", "enabled = = yes", "TOML: Invalid value (at line 1, column 11)"),
    ("unknown top-level table", "[l2tp]\nenabled = true",
     'top level: unknown table "l2tp" (known: l2tp-server, l2tp-client, ppp, ip, radius, radius-incoming, daemon, metrics)'),
    ("unknown server key", "[l2tp-server.server]\nkeepalive = 10",
     'l2tp-server.server: unknown key "keepalive" (known: enabled, authentication, default-profile, '
     "keepalive-timeout, max-mtu, max-mru, mrru, max-sessions, one-session-per-host, caller-id-type, "
     "listen-address, port)"),
    ("unknown menu", "[l2tp-server.servers]",
     'l2tp-server: unknown key "servers" (known: server, interface)'),
    ("server as array", "[[l2tp-server.server]]\nenabled = true",
     "l2tp-server.server: must be a table ([l2tp-server.server]), not an array of tables"),
    ("client as table", '[l2tp-client]\nuser = "u"',
     "l2tp-client: must be an array of tables ([[l2tp-client]])"),
    ("secret not a table", "ppp = { secret = [1] }", "ppp.secret[0]: must be a table, not 1"),
    ("use-ipsec", "[l2tp-server.server]\nuse-ipsec = \"required\"",
     'l2tp-server.server.use-ipsec: "required" is not supported (fastl2tp does not do IPsec; '
     "protect UDP 1701 with a kernel IPsec policy instead)"),
    ("ipsec-secret", CLIENT + 'ipsec-secret = "x"',
     'l2tp-client[0].ipsec-secret: "x" is not supported (fastl2tp does not do IPsec; '
     "protect UDP 1701 with a kernel IPsec policy instead)"),
    ("dial-on-demand", CLIENT + "dial-on-demand = true",
     "l2tp-client[0].dial-on-demand: true is not supported (a client dials whenever it is enabled)"),
    ("enabled not a boolean", "[l2tp-server.server]\nenabled = 1",
     "l2tp-server.server.enabled: 1 is not yes/no (or true/false)"),
    ("enabled bad word", '[l2tp-server.server]\nenabled = "on"',
     'l2tp-server.server.enabled: "on" is not yes/no (or true/false)'),
    ("authentication unknown", '[l2tp-server.server]\nauthentication = "mschap2,eap"',
     'l2tp-server.server.authentication: "eap" is not one of pap, chap, mschap1, mschap2'),
    ("authentication empty", "[l2tp-server.server]\nauthentication = []",
     "l2tp-server.server.authentication: must name at least one of pap, chap, mschap1, mschap2"),
    ("allow twice", CLIENT + 'allow = ["pap", "pap"]', 'l2tp-client[0].allow: "pap" is listed twice'),
    ("keepalive bad", '[l2tp-server.server]\nkeepalive-timeout = "10 s"',
     'l2tp-server.server.keepalive-timeout: "10 s" is not a time (like 30, "30s", "1m", "1h30m", '
     '"00:01:00") or "disabled"/"none"'),
    ("keepalive zero", "[l2tp-server.server]\nkeepalive-timeout = 0",
     'l2tp-server.server.keepalive-timeout: 0 is less than 1s (use "disabled" to turn it off)'),
    ("max-mtu too big", "[l2tp-server.server]\nmax-mtu = 70000",
     "l2tp-server.server.max-mtu: 70000 is out of range 512..65535"),
    ("max-mru too small", CLIENT + "max-mru = 100", "l2tp-client[0].max-mru: 100 is out of range 512..65535"),
    ("mrru word", '[l2tp-server.server]\nmrru = "off"',
     'l2tp-server.server.mrru: "off" is not an integer 512..65535 or "disabled"'),
    ("max-sessions negative", "[l2tp-server.server]\nmax-sessions = -1",
     "l2tp-server.server.max-sessions: -1 is out of range 0..4294967295"),
    ("caller-id-type", '[l2tp-server.server]\ncaller-id-type = "mac"',
     'l2tp-server.server.caller-id-type: "mac" is not one of ip-address, number'),
    ("listen-address", '[l2tp-server.server]\nlisten-address = "any"',
     'l2tp-server.server.listen-address: "any" is not an IP address'),
    ("client without connect-to", '[[l2tp-client]]\nuser = "u"',
     'l2tp-client[0]: missing required key "connect-to"'),
    ("client without user", '[[l2tp-client]]\nconnect-to = "10.0.0.1"', 'l2tp-client[0]: missing required key "user"'),
    ("client connect-to", '[[l2tp-client]]\nconnect-to = "10.0.0.256"\nuser = "u"',
     'l2tp-client[0].connect-to: "10.0.0.256" is not an IP address or a host name'),
    ("client port", CLIENT + "port = 0", "l2tp-client[0].port: 0 is out of range 1..65535"),
    ("client long name", CLIENT + 'name = "l2tp-to-head-office"',
     'l2tp-client[0].name: "l2tp-to-head-office" is longer than 15 bytes (a Linux interface name)'),
    ("client name slash", CLIENT + 'name = "a/b"',
     "l2tp-client[0].name: \"a/b\" is not a valid interface name (no '/', ':' or spaces)"),
    ("client distance", CLIENT + "default-route-distance = 256",
     "l2tp-client[0].default-route-distance: 256 is out of range 0..255"),
    ("client unknown profile", CLIENT + 'profile = "fast"',
     'l2tp-client[0].profile: no profile named "fast" (known: default, default-encryption)'),
    ("duplicate interface names", CLIENT + 'name = "x"\n' + CLIENT + 'name = "x"',
     'l2tp-client[1].name: duplicate "x" (also l2tp-client[0])'),
    ("static and client name clash", SECRET + '[[l2tp-server.interface]]\nname = "vpn"\nuser = "ex"\n'
     + CLIENT + 'name = "vpn"', 'l2tp-client[0].name: duplicate "vpn" (also l2tp-server.interface[0])'),
    ("third secret's address", SECRET + '[[ppp.secret]]\nname = "b"\n[[ppp.secret]]\nname = "c"\n'
     'local-address = "10.0.0.300"', 'ppp.secret[2].local-address: "10.0.0.300" is not an IPv4 address'),
    ("secret without name", '[[ppp.secret]]\npassword = "x"', 'ppp.secret[0]: missing required key "name"'),
    ("secret empty name", '[[ppp.secret]]\nname = ""', "ppp.secret[0].name: user name must not be empty"),
    ("secret service", SECRET + 'service = "ppp"',
     'ppp.secret[0].service: "ppp" is not one of any, async, isdn, l2tp, ovpn, pppoe, pptp, sstp'),
    ("secret pool as address", SECRET + 'remote-address = "pool1"',
     'ppp.secret[0].remote-address: "pool1" is not an IPv4 address'),
    ("secret route host bits", SECRET + 'routes = "10.150.1.1/24 10.0.103.2 1"',
     'ppp.secret[0].routes: "10.150.1.1/24" has host bits set (did you mean 10.150.1.0/24?)'),
    ("secret unknown profile", SECRET + 'profile = "gold"',
     'ppp.secret[0].profile: no profile named "gold" (known: default, default-encryption)'),
    ("duplicate secrets", SECRET + '[[ppp.secret]]\nname = "ex"\nservice = "l2tp"',
     'ppp.secret[1].name: duplicate "ex" for service l2tp (also ppp.secret[0], service any)'),
    ("static interface without secret", '[[l2tp-server.interface]]\nuser = "ghost"',
     'l2tp-server.interface[0].user: no ppp secret named "ghost" for l2tp (and ppp.aaa.use-radius is no)'),
    ("profile use-encryption", '[[ppp.profile]]\nname = "p"\nuse-encryption = "always"',
     'ppp.profile[0].use-encryption: "always" is not one of default, no, yes, required'),
    ("profile too many dns", '[[ppp.profile]]\nname = "p"\ndns-server = "1.1.1.1,8.8.8.8,9.9.9.9"',
     'ppp.profile[0].dns-server: "1.1.1.1,8.8.8.8,9.9.9.9" has more than 2 addresses'),
    ("profile unknown pool", '[[ppp.profile]]\nname = "p"\nremote-address = "pool1"',
     'ppp.profile[0].remote-address: no pool named "pool1" (known: none)'),
    ("duplicate profiles", '[[ppp.profile]]\nname = "default"\n[[ppp.profile]]\nname = "default"',
     'ppp.profile[1].name: duplicate "default" (also ppp.profile[0])'),
    ("profile change-tcp-mss", '[[ppp.profile]]\nname = "p"\nchange-tcp-mss = "sometimes"',
     'ppp.profile[0].change-tcp-mss: "sometimes" is not yes, no or default'),
    ("profile session-timeout", '[[ppp.profile]]\nname = "p"\nsession-timeout = "forever"',
     'ppp.profile[0].session-timeout: "forever" is not a time (like 30, "30s", "1m", "1h30m", "00:01:00") '
     'or "none"'),
    ("server default profile", '[l2tp-server.server]\ndefault-profile = "gold"',
     'l2tp-server.server.default-profile: no profile named "gold" (known: default, default-encryption)'),
    ("pool without ranges", '[[ip.pool]]\nname = "p"', 'ip.pool[0]: missing required key "ranges"'),
    ("pool bad range", '[[ip.pool]]\nname = "p"\nranges = "10.0.0.10-10.0.0.1"',
     'ip.pool[0].ranges: "10.0.0.10-10.0.0.1" ends before it starts'),
    ("pool unknown next", '[[ip.pool]]\nname = "p"\nranges = "10.0.0.0/24"\nnext-pool = "q"',
     'ip.pool[0].next-pool: no pool named "q" (known: p)'),
    ("pool loop", '[[ip.pool]]\nname = "a"\nranges = "10.0.0.0/24"\nnext-pool = "b"\n'
     '[[ip.pool]]\nname = "b"\nranges = "10.0.1.0/24"\nnext-pool = "a"',
     "ip.pool[0].next-pool: loops (a -> b -> a)"),
    ("pools overlap", '[[ip.pool]]\nname = "a"\nranges = "10.0.0.0/24"\n'
     '[[ip.pool]]\nname = "b"\nranges = "10.0.0.200-10.0.1.5"',
     'ip.pool[1].ranges: 10.0.0.200-10.0.1.5 overlaps 10.0.0.0/24 of ip.pool[0] ("a")'),
    ("pool named like an address", '[[ip.pool]]\nname = "10.0.0.1"\nranges = "10.0.0.0/24"',
     'ip.pool[0].name: "10.0.0.1" looks like an address; a pool name must not'),
    ("pool named with digits and dots", '[[ip.pool]]\nname = "."\nranges = "10.0.0.0/24"',
     'ip.pool[0].name: "." looks like an address; a pool name must not'),
    ("duplicate pools", '[[ip.pool]]\nname = "a"\nranges = "10.0.0.0/24"\n[[ip.pool]]\nname = "a"\n'
     'ranges = "10.0.1.0/24"', 'ip.pool[1].name: duplicate "a" (also ip.pool[0])'),
    ("l2tp-secret empty", '[[ppp.l2tp-secret]]\nsecret = ""', "ppp.l2tp-secret[0].secret: must not be empty"),
    ("l2tp-secret prefix", '[[ppp.l2tp-secret]]\naddress = "10.0.0.1/8"\nsecret = "s"',
     'ppp.l2tp-secret[0].address: "10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)'),
    ("use-radius without servers", "[ppp.aaa]\nuse-radius = true",
     "ppp.aaa.use-radius: yes, but no enabled [[radius]] entry has service ppp"),
    ("interim-update", '[ppp.aaa]\ninterim-update = "soon"',
     'ppp.aaa.interim-update: "soon" is not a time (like 30, "30s", "1m", "1h30m", "00:01:00")'),
    ("radius without secret", '[[radius]]\naddress = "10.0.0.5"', 'radius[0]: missing required key "secret"'),
    ("radius timeout", '[[radius]]\naddress = "10.0.0.5"\nsecret = "s"\ntimeout = "2m"',
     'radius[0].timeout: "2m" is out of range 1ms..1m'),
    ("radius service", '[[radius]]\naddress = "10.0.0.5"\nsecret = "s"\nservice = "ppp,pppoe"',
     'radius[0].service: "pppoe" is not one of ppp, login, hotspot, wireless, dhcp, ipsec, dot1x'),
    ("radius incoming nested", '[[radius]]\naddress = "10.0.0.5"\nsecret = "s"\n[radius.incoming]\naccept = true',
     'radius[0]: unknown key "incoming" (known: address, secret, service, authentication-port, '
     "accounting-port, timeout, src-address, require-message-auth, disabled, comment)"),
    ("incoming without servers", "[radius-incoming]\naccept = true",
     "radius-incoming.accept: yes, but there is no [[radius]] entry to accept requests from"),
    ("daemon socket", '[daemon]\nsocket = "fastl2tpd.sock"', 'daemon.socket: "fastl2tpd.sock" is not an absolute path'),
    ("mppe key length", '[[ppp.profile]]\nname = "p"\nmppe-key-lengths = "128,64"',
     'ppp.profile[0].mppe-key-lengths: "64" is not one of 40, 56, 128'),
    ("mppe key lengths empty", '[[ppp.profile]]\nname = "p"\nmppe-key-lengths = []',
     "ppp.profile[0].mppe-key-lengths: must name at least one of 40, 56, 128"),
    ("mppe stateful", '[[ppp.profile]]\nname = "p"\nmppe-stateful = "yes"',
     'ppp.profile[0].mppe-stateful: "yes" is not one of no, allow, prefer'),
    ("daemon log level", '[daemon]\nlog-level = "trace"',
     'daemon.log-level: "trace" is not one of debug, info, warning, error'),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config(name, text, message):
    with pytest.raises(ConfigError) as info:
        load_text(text)
    assert str(info.value) == message


def test_bad_config_table_is_large():
    assert len(BAD_CONFIGS) >= 40


def test_empty_config_is_valid_and_default():
    config = load_text("")
    assert config == Config()
    assert not config.l2tp_server.server.enabled
    assert [p.name for p in config.ppp.profile] == ["default", "default-encryption"]
    assert dump(config) == "# fastl2tp configuration (docs/config.md)\n"


def test_client_only_config():
    config = load_text(CLIENT)
    assert not config.l2tp_server.server.enabled
    client = config.l2tp_client[0]
    assert client.name == "l2tp-out1"
    assert client.connect_to == IPv4Address("10.0.0.1")
    assert client.disabled  # RouterOS adds clients disabled
    assert client.allow == (AuthMethod.MSCHAP2, AuthMethod.MSCHAP1, AuthMethod.CHAP, AuthMethod.PAP)
    assert client.keepalive_timeout == 60.0 and client.max_mtu == 1450 and client.mrru is None


def test_server_defaults():
    server = load_text("[l2tp-server.server]\nenabled = \"yes\"").l2tp_server.server
    assert server == L2tpServer(enabled=True)
    assert server.authentication == (AuthMethod.MSCHAP1, AuthMethod.MSCHAP2)
    assert server.keepalive_timeout == 30.0
    assert (server.max_mtu, server.max_mru, server.mrru, server.max_sessions) == (1450, 1450, None, None)
    assert server.default_profile == "default-encryption"
    assert server.caller_id_type is CallerIdType.IP_ADDRESS
    assert server.port == 1701


def test_routeros_forms():
    config = load_text("""
[l2tp-server.server]
enabled = "yes"
authentication = "mschap2,chap"
keepalive-timeout = "disabled"
mrru = "1600"
max-sessions = "unlimited"
use-ipsec = "no"
allow-fast-path = "yes"
""")
    server = config.l2tp_server.server
    assert server.enabled and server.authentication == (AuthMethod.MSCHAP2, AuthMethod.CHAP)
    assert server.keepalive_timeout is None and server.mrru == 1600 and server.max_sessions is None


def test_default_names_skip_taken_ones():
    config = load_text(CLIENT + CLIENT + 'name = "l2tp-out1"\n' + CLIENT + SECRET
                       + '[[l2tp-server.interface]]\nuser = "ex"\n[[l2tp-server.interface]]\nuser = "ex"\n'
                       'name = "l2tp-in1"\n')
    assert [c.name for c in config.l2tp_client] == ["l2tp-out2", "l2tp-out1", "l2tp-out3"]
    assert [i.name for i in config.l2tp_server.interface] == ["l2tp-in2", "l2tp-in1"]


def test_builtin_profiles_can_be_changed():
    config = load_text('[[ppp.profile]]\nname = "default-encryption"\nuse-encryption = "required"\n'
                       '[[ppp.profile]]\nname = "office"\n')
    names = [p.name for p in config.ppp.profile]
    assert names == ["default-encryption", "office", "default"]
    changed = config.ppp.profile[0]
    assert changed == dataclasses.replace(DEFAULT_ENCRYPTION_PROFILE, use_encryption=UseEncryption.REQUIRED)
    assert changed.change_tcp_mss is True  # kept from the built-in
    assert config.ppp.profile[2] == DEFAULT_PROFILE
    assert DEFAULT_PROFILE.change_tcp_mss is True and DEFAULT_PROFILE.use_ipv6 is UseIpv6.YES
    assert DEFAULT_ENCRYPTION_PROFILE.use_encryption is UseEncryption.YES
    assert config.ppp.profile[1] == Profile(name="office")
    assert load_text(dump(config)) == config


def test_static_interface_with_radius_user():
    config = load_text('[[l2tp-server.interface]]\nuser = "radius-only"\n[ppp.aaa]\nuse-radius = true\n'
                       '[[radius]]\naddress = "10.0.0.5"\nsecret = "s"\n')
    assert config.l2tp_server.interface[0].user == "radius-only"
    assert config.radius[0].timeout == 1.1 and config.radius[0].authentication_port == 1812


def test_secret_same_name_other_service():
    config = load_text('[[ppp.secret]]\nname = "a"\nservice = "l2tp"\n[[ppp.secret]]\nname = "a"\nservice = "pppoe"')
    assert len(config.ppp.secret) == 2


def test_manual_router_to_router_lns():
    config = load(EXAMPLES / "router-to-router-lns.toml")
    server = config.l2tp_server
    assert server.server.enabled and server.server.authentication == (AuthMethod.MSCHAP2,)
    assert server.interface[0].name == "l2tp-in1" and server.interface[0].user == "ex"
    secret = config.ppp.secret[0]
    assert (secret.name, secret.password, secret.profile) == ("ex", "lkjrht", "default")
    assert (secret.local_address, secret.remote_address) == (IPv4Address("10.0.103.1"), IPv4Address("10.0.103.2"))
    assert secret.routes == (Route(IPv4Network("10.150.1.0/24"), IPv4Address("10.0.103.2"), 1),)


def test_manual_router_to_router_lac():
    config = load(EXAMPLES / "router-to-router-lac.toml")
    assert not config.l2tp_server.server.enabled
    client = config.l2tp_client[0]
    assert (client.name, str(client.connect_to), client.user, client.password) == (
        "l2tp-out1", "192.168.80.1", "ex", "lkjrht")
    assert not client.disabled and not client.add_default_route


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_examples_load_and_roundtrip(path):
    config = load_file(path)
    assert load_text(dump(config)) == config
    assert load(str(path)) == config  # a one-line string is a path


def test_load_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"^/nonexistent/x\.toml: cannot read \(No such file or directory\)$"):
        load_file("/nonexistent/x.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff")
    with pytest.raises(ConfigError, match="^TOML: not UTF-8"):
        load(bad)


def test_check_catches_code_made_mistakes():
    config = load(EXAMPLES / "router-to-router-lns.toml")
    check(config)
    broken = dataclasses.replace(config, l2tp_server=dataclasses.replace(
        config.l2tp_server, server=dataclasses.replace(config.l2tp_server.server, max_mtu=10)))
    with pytest.raises(ConfigError, match=r"^l2tp-server\.server\.max-mtu: 10 is out of range 512\.\.65535$"):
        check(broken)
    wrong_type = dataclasses.replace(config, ppp=dataclasses.replace(
        config.ppp, secret=(dataclasses.replace(config.ppp.secret[0], local_address="10.0.103.1"),)))
    with pytest.raises(ConfigError, match=r"^ppp\.secret\[0\]\.local-address: '10\.0\.103\.1' is not an IPv4 address$"):
        check(wrong_type)
    no_builtin = dataclasses.replace(config, ppp=dataclasses.replace(config.ppp, profile=(DEFAULT_PROFILE,)))
    with pytest.raises(ConfigError, match=r'^ppp\.profile: the built-in profile "default-encryption" is missing$'):
        check(no_builtin)
    added = dataclasses.replace(config, ppp=dataclasses.replace(
        config.ppp, secret=config.ppp.secret + (Secret(name="new", profile="nope"),)))
    with pytest.raises(ConfigError, match=r'^ppp\.secret\[1\]\.profile: no profile named "nope"'):
        check(added)


def test_parse_setting_for_the_cli():
    assert parse_setting(L2tpClient, "add-default-route", "yes") is True
    assert parse_setting(Secret, "routes", "10.1.0.0/16 10.0.0.1 2") == (
        Route(IPv4Network("10.1.0.0/16"), IPv4Address("10.0.0.1"), 2),)
    with pytest.raises(ConfigError, match=r'^ppp\.secret\.local-address: "x" is not an IPv4 address$'):
        parse_setting(Secret, "local-address", "x", "ppp.secret")
    with pytest.raises(ConfigError, match=r'^ppp\.secret: unknown key "pasword" \(known: name, password,'):
        parse_setting(Secret, "pasword", "x", "ppp.secret")


def test_passwords_not_in_repr():
    config = load(EXAMPLES / "router-to-router-lns.toml")
    assert "lkjrht" not in repr(config)
    assert "lkjrht" not in repr(load(EXAMPLES / "router-to-router-lac.toml"))


def test_dump_writes_only_what_differs():
    config = load_text('[l2tp-server.server]\nenabled = true\nkeepalive-timeout = 30\n'
                       '[[ppp.secret]]\nname = "a b"\npassword = "p\\"q"\n')
    assert dump(config) == (
        "# fastl2tp configuration (docs/config.md)\n\n"
        "[l2tp-server.server]\nenabled = true\n\n"
        '[[ppp.secret]]\nname = "a b"\npassword = "p\\"q"\n'
    )


def test_config_is_frozen():
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.daemon = None  # type: ignore[misc]


def test_config_package_is_pure():
    code = ("import sys, fastl2tp.config as c; c.load_text(''); "
            "print(sorted(m for m in ('asyncio', 'socket', 'pyroute2', 'uvloop') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docs_list_every_key():
    from fastl2tp.config import model
    from fastl2tp.config.load import table_keys

    docs = (EXAMPLES.parent / "docs" / "config.md").read_text()
    for cls in (model.L2tpServer, model.L2tpServerInterface, model.L2tpClient, model.Secret, model.Profile,
                model.L2tpSecret, model.Aaa, model.Pool, model.RadiusServer, model.RadiusIncoming, model.Daemon):
        for key in table_keys(cls):
            assert f"| `{key}` |" in docs, (cls.__name__, key)


def test_mppe_profile_keys():
    from fastl2tp.config.model import MppeStateful

    assert DEFAULT_PROFILE.mppe_key_lengths == (128, 40) and DEFAULT_PROFILE.mppe_stateful is MppeStateful.ALLOW
    config = load_text('[[ppp.profile]]\nname = "pppd"\nmppe-key-lengths = "40"\nmppe-stateful = "prefer"\n'
                       '[[ppp.profile]]\nname = "toml"\nmppe-key-lengths = [40, 128, 56]\nmppe-stateful = "no"\n'
                       '[[ppp.profile]]\nname = "default-encryption"\nmppe-key-lengths = "40,128"\n')
    pppd, toml, enc = config.ppp.profile[:3]
    assert (pppd.mppe_key_lengths, pppd.mppe_stateful) == ((40,), MppeStateful.PREFER)
    assert (toml.mppe_key_lengths, toml.mppe_stateful) == ((128, 56, 40), MppeStateful.NO)
    assert enc == DEFAULT_ENCRYPTION_PROFILE  # "40,128" is the default set
    text = dump(config)
    assert 'mppe-key-lengths = [40]\nmppe-stateful = "prefer"' in text
    assert "mppe-key-lengths = [128, 56, 40]" in text
    assert text.count("mppe-key-lengths") == 2  # the unchanged built-in is not written
    assert load_text(text) == config
    assert parse_setting(Profile, "mppe-key-lengths", "128") == (128,)
    broken = dataclasses.replace(config, ppp=dataclasses.replace(
        config.ppp, profile=(dataclasses.replace(pppd, mppe_key_lengths=(40, 128)),) + config.ppp.profile[1:]))
    with pytest.raises(ConfigError, match=r"^ppp\.profile\[0\]\.mppe-key-lengths: \(40, 128\) is not a list of"):
        check(broken)  # a code-made set must be in its canonical order, largest first
