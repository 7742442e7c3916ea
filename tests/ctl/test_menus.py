"""The menu tree (ctl/menus.py) on configurations, without a daemon: changes made with the words a user
types (console.parse → menus.apply → ConfigDocument → load), print rows, monitor, passwords, and
export replayed onto an empty configuration."""

from __future__ import annotations

import json
import re

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastl2tp.config import Config, load_text
from fastl2tp.config import model as m
from fastl2tp.config.edit import ConfigDocument
from fastl2tp.console import UsageError, parse, split
from fastl2tp.ctl import menus
from fastl2tp.ctl.menus import RuntimeView, SessionInfo
from fastl2tp.ctl.protocol import CtlError, Request
from fastl2tp.ctl.render import render_print
from fastl2tp.errors import ConfigError

EMPTY = RuntimeView()


class Box:
    """A configuration file's text and what it loads to, changed as the daemon changes it: a fresh
    document from the text for every command, so that a refused command changes nothing."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.config = load_text(text)
        self.cwd = "/"

    def request(self, line: str, cwd: str | None = None) -> Request:
        p = parse(self.cwd if cwd is None else cwd, split(line))
        assert p.verb is not None, line
        return Request(p.verb, p.menu, tuple(p.items), dict(p.props), tuple(p.options))

    def do(self, line: str, rt: RuntimeView | None = None, cwd: str | None = None) -> Config:
        req = self.request(line, cwd)
        doc = ConfigDocument(self.text)
        menus.apply(self.config, doc, req, rt)
        config = doc.load()
        self.text, self.config = doc.text(), config
        return config

    def line(self, line: str) -> None:
        """One line of an export: navigation (``/ppp secret``) or a command in the current menu."""
        p = parse(self.cwd, split(line))
        if p.verb is None:
            self.cwd = p.menu
            return
        self.do(line)

    def print(self, line: str, rt: RuntimeView = EMPTY, cwd: str | None = None) -> dict:
        req = self.request(line, cwd)
        assert req.cmd == "print"
        return menus.print_menu(self.config, rt, menus.MENUS[req.menu], req.options)

    def fails(self, line: str, rt: RuntimeView | None = None) -> str:
        before = self.text
        with pytest.raises((CtlError, ConfigError, UsageError)) as info:
            self.do(line, rt)
        assert self.text == before
        msg = str(info.value)
        assert msg and "\n" not in msg and "Traceback" not in msg
        return msg


SECRET_EX = ('ppp secret add name=ex password=lkjrht local-address=10.0.103.1 remote-address=10.0.103.2 '
             'routes="10.150.1.0/24 10.0.103.2 1"')


def _user_profiles(c: Config) -> list[m.Profile]:
    return [p for p in c.ppp.profile if p.name not in m.BUILTIN_PROFILES]


# --- the menu tree -------------------------------------------------------------------------------


def test_the_issue_menus_exist_with_their_verbs():
    want = {
        "/interface/l2tp-server/server": {"print", "set"},
        "/interface/l2tp-server": {"print", "add", "set", "remove", "enable", "disable", "monitor"},
        "/interface/l2tp-client": {"print", "add", "set", "remove", "enable", "disable", "monitor"},
        "/ppp/secret": {"print", "add", "set", "remove", "enable", "disable"},
        "/ppp/profile": {"print", "add", "set", "remove"},
        "/ppp/active": {"print", "remove"},
        "/ip/pool": {"print", "add", "set", "remove"},
    }
    for path, verbs in want.items():
        assert verbs <= menus.MENUS[path].verbs, path


def test_find_menu_walks_words_absolute_paths_and_up():
    assert menus.find_menu("/", ["interface", "l2tp-server", "server", "set"]) == (
        "/interface/l2tp-server/server", ["set"])
    assert menus.find_menu("/interface/l2tp-server", ["..", "l2tp-client", "print"]) == (
        "/interface/l2tp-client", ["print"])
    assert menus.find_menu("/ppp/secret", ["/ip/pool", "print"]) == ("/ip/pool", ["print"])
    assert menus.find_menu("/ppp/secret", ["/", "ppp"]) == ("/ppp", [])
    assert menus.find_menu("/ppp", ["..", ".."]) == ("/", [])
    with pytest.raises(CtlError):
        menus.find_menu("/", ["/no/such/menu"])


# --- changes on each list menu -------------------------------------------------------------------

# (menu words, add arguments, the items in the loaded config, key of the new item, set arguments,
#  what set changes)
LIST_CASES = [
    ("ppp secret", SECRET_EX, lambda c: c.ppp.secret, "ex", "service=l2tp caller-id=192.0.2.2",
     lambda x: x.service is m.Service.L2TP and x.caller_id == "192.0.2.2"),
    ("ppp profile", "ppp profile add name=office local-address=10.0.0.1 use-encryption=required",
     _user_profiles, "office", "only-one=yes session-timeout=1h",
     lambda x: x.only_one is True and x.session_timeout == 3600.0),
    ("ppp l2tp-secret", "ppp l2tp-secret add address=192.0.2.0/24 secret=tunnelpw", lambda c: c.ppp.l2tp_secret,
     "192.0.2.0/24", "secret=other", lambda x: x.secret == "other"),
    ("ip pool", "ip pool add name=pool1 ranges=10.0.0.2-10.0.0.254", lambda c: c.ip.pool, "pool1",
     "ranges=10.1.0.0/24", lambda x: str(x.ranges[0]).startswith("10.1.0.")),
    ("radius", "radius add address=192.0.2.10 secret=radpw", lambda c: c.radius, "192.0.2.10",
     "timeout=2s authentication-port=11812", lambda x: x.timeout == 2.0 and x.authentication_port == 11812),
    ("interface l2tp-client",
     "interface l2tp-client add name=test2 connect-to=10.1.1.12 user=john password=john add-default-route=yes",
     lambda c: c.l2tp_client, "test2", "user=jane keepalive-timeout=10s",
     lambda x: x.user == "jane" and x.keepalive_timeout == 10.0),
]


@pytest.mark.parametrize("words,add,items,key,set_args,changed", LIST_CASES, ids=[c[0] for c in LIST_CASES])
def test_add_set_remove_on_each_list_menu(words, add, items, key, set_args, changed):
    box = Box()
    c = box.do(add)
    assert len(items(c)) == 1
    # set by number, then by name (or address)
    c = box.do(f"{words} set 0 {set_args}")
    assert changed(items(c)[0])
    c = box.do(f"{words} set {key} comment=hello")
    assert items(c)[0].comment == "hello"
    assert load_text(box.text) == c  # the text is what the config says
    c = box.do(f"{words} remove {key}")
    assert len(items(c)) == 0


@pytest.mark.parametrize("words,add,items", [c[:3] for c in LIST_CASES], ids=[c[0] for c in LIST_CASES])
def test_add_again_after_removing_the_last_item(words, add, items):
    box = Box()
    box.do(add)
    box.do(f"{words} remove 0")
    assert len(items(box.do(add))) == 1
    assert len(items(box.do(f"{words} remove 0"))) == 0


def test_ppp_secret_add_as_the_manual():
    c = Box().do(SECRET_EX)
    (s,) = c.ppp.secret
    assert (s.name, s.password, str(s.local_address), str(s.remote_address)) == (
        "ex", "lkjrht", "10.0.103.1", "10.0.103.2")
    assert [str(r.dst) for r in s.routes] == ["10.150.1.0/24"]
    assert s.profile == "default" and s.service is m.Service.ANY and not s.disabled


def test_secret_set_routes_by_number():
    box = Box()
    box.do("ppp secret add name=ex password=lkjrht local-address=10.0.103.1 remote-address=10.0.103.2")
    assert box.config.ppp.secret[0].routes == ()
    c = box.do('ppp secret set 0 routes="10.150.1.0/24 10.0.103.2 1"')
    (r,) = c.ppp.secret[0].routes
    assert str(r.dst) == "10.150.1.0/24" and str(r.gateway) == "10.0.103.2" and r.metric == 1
    c = box.do('ppp secret set ex routes=""')
    assert c.ppp.secret[0].routes == ()


@pytest.mark.parametrize("words,add,items,key", [
    ("ppp secret", "ppp secret add name=a password=x", lambda c: c.ppp.secret, "a"),
    ("radius", "radius add address=192.0.2.10 secret=radpw", lambda c: c.radius, "192.0.2.10"),
    ("interface l2tp-client", "interface l2tp-client add name=c1 connect-to=192.0.2.1 user=u disabled=no",
     lambda c: c.l2tp_client, "c1"),
    ("interface l2tp-server", "interface l2tp-server add name=in1 user=a", lambda c: c.l2tp_server.interface,
     "in1"),
])
def test_enable_and_disable_by_number_and_by_name(words, add, items, key):
    box = Box("[[ppp.secret]]\nname = \"a\"\npassword = \"x\"\n" if words == "interface l2tp-server" else "")
    c = box.do(add)
    assert not items(c)[0].disabled
    assert box.do(f"{words} disable 0") and items(box.config)[0].disabled
    assert not items(box.do(f"{words} enable {key}"))[0].disabled
    assert items(box.do(f"{words} disable {key}"))[0].disabled
    assert not items(box.do(f"{words} enable 0"))[0].disabled


def test_l2tp_client_is_added_disabled_as_in_routeros_and_enable_0_enables_it():
    box = Box()
    c = box.do("interface l2tp-client add name=test2 connect-to=10.1.1.12 user=john password=john "
               "add-default-route=yes")
    (cl,) = c.l2tp_client
    assert cl.disabled and cl.add_default_route and cl.password == "john" and str(cl.connect_to) == "10.1.1.12"
    assert not box.do("interface l2tp-client enable 0").l2tp_client[0].disabled


def test_default_names_for_clients_and_server_interfaces():
    box = Box("[[ppp.secret]]\nname = \"ex\"\npassword = \"x\"\n")
    c = box.do("interface l2tp-client add connect-to=192.0.2.1 user=ex")
    c = box.do("interface l2tp-client add connect-to=192.0.2.1 user=ex")
    assert [x.name for x in c.l2tp_client] == ["l2tp-out1", "l2tp-out2"]
    c = box.do("interface l2tp-server add user=ex")
    assert [x.name for x in c.l2tp_server.interface] == ["l2tp-in1"]


def test_server_interface_add_as_the_manual():
    box = Box()
    box.do(SECRET_EX)
    c = box.do("interface l2tp-server add name=FromLaptop user=ex")
    assert [(x.name, x.user, x.disabled) for x in c.l2tp_server.interface] == [("FromLaptop", "ex", False)]
    c = box.do("interface l2tp-server set FromLaptop name=l2tp-in9")
    assert c.l2tp_server.interface[0].name == "l2tp-in9"
    c = box.do("interface l2tp-server remove 0")
    assert c.l2tp_server.interface == ()


def test_remove_several_items_at_once_by_numbers():
    box = Box()
    for n in range(4):
        box.do(f"ppp secret add name=u{n} password=p{n}")
    c = box.do("ppp secret remove 0,2")
    assert [s.name for s in c.ppp.secret] == ["u1", "u3"]
    c = box.do("ppp secret remove u3 0")
    assert c.ppp.secret == ()


def test_profile_set_on_a_builtin_and_on_a_user_profile():
    box = Box()
    c = box.do("ppp profile set default only-one=yes")
    assert next(p for p in c.ppp.profile if p.name == "default").only_one is True
    c = box.do("ppp profile set default-encryption use-encryption=required")
    assert next(p for p in c.ppp.profile if p.name == "default-encryption").use_encryption is \
        m.UseEncryption.REQUIRED
    box.do("ppp profile add name=office local-address=10.0.0.1")
    c = box.do("ppp profile set office name=branch remote-address=10.0.0.2")
    (p,) = _user_profiles(c)
    assert p.name == "branch" and str(p.remote_address) == "10.0.0.2"
    c = box.do("ppp profile remove branch")
    assert _user_profiles(c) == []
    assert {p.name for p in c.ppp.profile} == set(m.BUILTIN_PROFILES)


def test_profile_numbers_do_not_change_when_a_profile_is_set():
    """``print`` numbers address items; a ``set`` must not renumber the others (RouterOS keeps them)."""
    box = Box()
    box.do("ppp profile add name=office")
    before = [p.name for p in box.config.ppp.profile]
    box.do("ppp profile set default-encryption only-one=yes")
    assert [p.name for p in box.config.ppp.profile] == before
    box.do("ppp profile set default only-one=yes")
    assert [p.name for p in box.config.ppp.profile] == before


@pytest.mark.parametrize("line,check", [
    ("interface l2tp-server server set enabled=yes authentication=mschap2 keepalive-timeout=10s max-mtu=1400",
     lambda c: c.l2tp_server.server.enabled and c.l2tp_server.server.authentication == (m.AuthMethod.MSCHAP2,)
     and c.l2tp_server.server.keepalive_timeout == 10.0 and c.l2tp_server.server.max_mtu == 1400),
    ("interface l2tp-server server set default-profile=default max-sessions=10",
     lambda c: c.l2tp_server.server.default_profile == "default" and c.l2tp_server.server.max_sessions == 10),
    ("ppp aaa set accounting=no interim-update=5m",
     lambda c: c.ppp.aaa.accounting is False and c.ppp.aaa.interim_update == 300.0),
    ("radius add address=192.0.2.10 secret=x\nradius incoming set accept=yes port=3799", lambda c: c.radius_incoming.accept and c.radius_incoming.port == 3799),
    ("fastl2tp daemon set log-level=debug", lambda c: c.daemon.log_level is m.LogLevel.DEBUG),
    ("fastl2tp metrics set listen=127.0.0.1:9117", lambda c: c.metrics.listen == "127.0.0.1:9117"),
])
def test_set_on_settings_menus(line, check):
    box = Box()
    for one in line.splitlines():
        box.do(one)
    assert check(box.config)
    assert check(load_text(box.text))


def test_settings_set_then_back_to_the_default():
    box = Box()
    box.do("interface l2tp-server server set enabled=yes")
    assert box.config.l2tp_server.server.enabled
    c = box.do("interface l2tp-server server set enabled=no")
    assert c.l2tp_server.server == m.L2tpServer()


# --- errors --------------------------------------------------------------------------------------


def test_unknown_property_lists_the_valid_ones():
    msg = Box().fails("ppp secret add name=ex pasword=x")
    assert "pasword" in msg
    for prop in ("name", "password", "service", "caller-id", "profile", "local-address", "remote-address", "routes"):
        assert prop in msg
    msg = Box().fails("interface l2tp-server server set enable=yes")
    assert "enable" in msg and "enabled" in msg and "keepalive-timeout" in msg


@pytest.mark.parametrize("line,prop,form", [
    ("ppp secret add name=ex local-address=10.0.103.300", "local-address", "IPv4 address"),
    ("interface l2tp-server server set enabled=maybe", "enabled", "yes/no"),
    ("interface l2tp-server server set keepalive-timeout=soon", "keepalive-timeout", "30s"),
    ("interface l2tp-server server set max-mtu=100", "max-mtu", "512..65535"),
    ("interface l2tp-server server set authentication=mschap3", "authentication", "mschap2"),
    ("ppp profile add name=p use-encryption=maybe", "use-encryption", "required"),
    ('ppp secret add name=ex routes="10.150.1.0/24 nowhere"', "routes", "gateway"),
    ("ip pool add name=p ranges=10.0.0.9-10.0.0.1", "ranges", "ends before it starts"),
    ("interface l2tp-client add name=c connect-to=not_a_host user=u", "connect-to", "IP address or a host name"),
])
def test_bad_value_names_the_property_and_the_expected_form(line, prop, form):
    msg = Box().fails(line)
    assert prop in msg and form in msg, msg


@pytest.mark.parametrize("line", ["ppp secret set 3 password=x", "ppp secret set nobody password=x",
                                  "ppp secret remove 1", "ppp secret disable nobody", "ip pool remove p9",
                                  "interface l2tp-client enable 0", "ppp profile set nosuch only-one=yes"])
def test_no_such_item(line):
    box = Box()
    box.do("ppp secret add name=ex password=x")
    msg = box.fails(line)
    assert "no such item" in msg


def test_builtin_profiles_cannot_be_removed_renamed_or_added():
    box = Box()
    assert "cannot be removed" in box.fails("ppp profile remove default")
    assert "cannot be removed" in box.fails("ppp profile remove default-encryption")
    assert "cannot be removed" in box.fails("ppp profile remove 0")
    assert "renamed" in box.fails("ppp profile set default name=mine")
    assert "renamed" in box.fails("ppp profile set default-encryption name=mine")
    assert "built-in" in box.fails("ppp profile add name=default")


def test_a_change_the_loader_refuses_changes_nothing():
    box = Box()
    box.do(SECRET_EX)
    box.fails("ppp secret add name=ex password=again")  # duplicate name
    box.fails("ppp secret set 0 profile=nosuch")  # no such profile
    box.fails("interface l2tp-server add name=in1 user=nobody")  # no such secret
    assert [s.name for s in box.config.ppp.secret] == ["ex"]


def test_commands_a_menu_does_not_have():
    box = Box()
    for line in ("ppp active add name=x", "ip pool enable 0", "interface l2tp-server server add enabled=yes",
                 "interface l2tp-server server remove 0"):
        assert "no such command" in box.fails(line) or "no command" in box.fails(line)
    assert "item" in box.fails("interface l2tp-server server set 0 enabled=yes")


SESSION = dict(name="FromLaptop", ifname="FromLaptop", user="ex", role="server", caller_id="192.0.2.2",
               local_address="10.0.103.1", remote_address="10.0.103.2", status="connected", uptime_s=392.0,
               idle_s=3.0, encoding="MPPE128 stateless", mtu=1450, mru=1450, tunnel_id=0x1234, session_id=0x5678,
               bytes_in=1000, bytes_out=2000, packets_in=10, packets_out=20, static="FromLaptop")


def session(**kw) -> SessionInfo:
    return SessionInfo(**{**SESSION, **kw})


SERVER_TEXT = """
[l2tp-server.server]
enabled = true

[[l2tp-server.interface]]
name = "FromLaptop"
user = "ex"

[[l2tp-server.interface]]
name = "l2tp-in2"
user = "dyn"
disabled = true

[[ppp.secret]]
name = "ex"
password = "lkjrht"
local-address = "10.0.103.1"
remote-address = "10.0.103.2"

[[ppp.secret]]
name = "dyn"
password = "dynpass"
disabled = true

[[ppp.l2tp-secret]]
address = "192.0.2.0/24"
secret = "tunnelpw"

[[l2tp-client]]
name = "out1"
connect-to = "10.1.1.12"
user = "john"
password = "johnpw"
disabled = false

[[l2tp-client]]
name = "out2"
connect-to = "10.1.1.13"
user = "x"
password = "xpw"

[[ip.pool]]
name = "pool1"
ranges = "10.0.0.2-10.0.0.11"

[[radius]]
address = "192.0.2.10"
secret = "radiuspw"
"""

RT = RuntimeView(
    sessions=(session(),
              session(name="<l2tp-dyn>", ifname="l2tp-dyn", user="dyn", static=None, caller_id="192.0.2.3",
                      remote_address="10.0.104.2", encoding="", tunnel_id=1, session_id=2),
              session(name="out1", ifname="out1", user="john", role="client", static=None, client="out1",
                      local_address="10.9.0.2", remote_address="10.9.0.1")),
    client_status={"out1": "connected", "out2": "disabled"},
    pool_usage={"pool1": (10, 3)})


def test_dynamic_server_entries_cannot_be_changed():
    box = Box(SERVER_TEXT)
    rows = box.print("interface l2tp-server print", RT)["rows"]
    dyn = next(r for r in rows if r["flags"] == "DR")
    for line in (f"interface l2tp-server set {dyn['n']} user=ex", "interface l2tp-server remove <l2tp-dyn>",
                 f"interface l2tp-server disable {dyn['n']}", f"interface l2tp-server remove {dyn['n']}"):
        assert "dynamic" in box.fails(line, RT)


# --- print ---------------------------------------------------------------------------------------


def test_secret_print_table_and_detail():
    box = Box()
    box.do(SECRET_EX)
    box.do("ppp secret add name=two password=pw2 disabled=yes")
    r = box.print("ppp secret print")
    assert r["style"] == "table"
    assert r["flags"] == [["X", "disabled"]]
    assert r["columns"] == ["name", "service", "caller-id", "profile", "local-address", "remote-address"]
    assert [(x["n"], x["flags"], x["values"]["name"]) for x in r["rows"]] == [(0, "", "ex"), (1, "X", "two")]
    assert r["rows"][0]["values"]["local-address"] == "10.0.103.1"
    d = box.print("ppp secret print detail")
    assert d["style"] == "detail"
    v = d["rows"][0]["values"]
    # RouterOS: name="ex" service=... caller-id="" password="lkjrht" profile=default ... routes="..."
    assert v["name"] == '"ex"' and v["password"] == '"lkjrht"' and v["profile"] == "default"
    assert v["caller-id"] == '""' and v["routes"] == '"10.150.1.0/24 10.0.103.2 1"'
    assert v["local-address"] == "10.0.103.1" and v["remote-address"] == "10.0.103.2"


def test_server_interface_print_with_sessions_static_running_and_dynamic():
    r = Box(SERVER_TEXT).print("interface l2tp-server print", RT)
    assert r["flags"] == [["X", "disabled"], ["D", "dynamic"], ["R", "running"]]
    assert r["columns"] == ["name", "user", "mtu", "client-address", "uptime", "encoding"]
    rows = {x["values"]["name"]: x for x in r["rows"]}
    assert set(rows) == {"FromLaptop", "l2tp-in2", "<l2tp-dyn>"}
    st = rows["FromLaptop"]
    assert st["flags"] == "R" and st["values"]["mtu"] == "1450" and st["values"]["client-address"] == "192.0.2.2"
    assert st["values"]["uptime"] == "6m32s" and st["values"]["encoding"] == "MPPE128 stateless"
    assert rows["l2tp-in2"]["flags"] == "X" and rows["l2tp-in2"]["values"]["uptime"] == ""
    dyn = rows["<l2tp-dyn>"]
    assert dyn["flags"] == "DR" and dyn["values"]["user"] == "dyn" and dyn["values"]["encoding"] == "none"
    assert sorted(x["n"] for x in r["rows"]) == [0, 1, 2]
    # the client's session is not a server interface
    assert "out1" not in rows


def test_server_interface_print_without_sessions_as_the_manual():
    box = Box()
    box.do(SECRET_EX)
    box.do("interface l2tp-server add name=FromLaptop user=ex")
    r = box.print("interface l2tp-server print")
    assert [(x["n"], x["flags"], x["values"]["name"], x["values"]["user"]) for x in r["rows"]] == [
        (0, "", "FromLaptop", "ex")]
    text = render_print(r)
    assert text.splitlines()[0] == "Flags: X - disabled, D - dynamic, R - running"
    assert text.splitlines()[1].split() == ["#", "NAME", "USER", "MTU", "CLIENT-ADDRESS", "UPTIME", "ENCODING"]
    assert text.splitlines()[2].split() == ["0", "FromLaptop", "ex"]


def test_client_print_running_flag_and_status():
    r = Box(SERVER_TEXT).print("interface l2tp-client print", RT)
    assert r["flags"] == [["X", "disabled"], ["R", "running"]]
    assert [(x["n"], x["flags"]) for x in r["rows"]] == [(0, "R"), (1, "X")]
    assert r["rows"][0]["values"]["name"] == '"out1"' and r["rows"][0]["values"]["connect-to"] == "10.1.1.12"
    assert r["rows"][0]["data"]["status"] == "connected"
    # not running without a session
    r = Box(SERVER_TEXT).print("interface l2tp-client print", EMPTY)
    assert [x["flags"] for x in r["rows"]] == ["", "X"]


def test_pool_print_total_used_available():
    box = Box(SERVER_TEXT)
    r = box.print("ip pool print", RT)
    (row,) = r["rows"]
    assert r["columns"][-3:] == ["total", "used", "available"]
    assert (row["values"]["total"], row["values"]["used"], row["values"]["available"]) == ("10", "3", "7")
    assert (row["data"]["total"], row["data"]["used"], row["data"]["available"]) == (10, 3, 7)
    # without a running daemon's view: all available
    row = box.print("ip pool print", EMPTY)["rows"][0]
    assert (row["values"]["total"], row["values"]["used"], row["values"]["available"]) == ("10", "0", "10")


def test_pool_print_counts_every_range():
    box = Box()
    box.do("ip pool add name=p ranges=10.0.0.1-10.0.0.10,10.1.0.0/30")
    row = box.print("ip pool print")["rows"][0]
    assert row["values"]["total"] == "14"


def test_profile_print_flags_builtins():
    box = Box()
    box.do("ppp profile add name=office use-encryption=required")
    r = box.print("ppp profile print")
    assert r["flags"] == [["*", "default"]]
    flags = {x["values"]["name"]: x["flags"] for x in r["rows"]}
    assert flags == {"default": "*", "default-encryption": "*", "office": ""}
    assert {x["values"]["name"]: x["values"]["use-encryption"] for x in r["rows"]}["office"] == "required"


def test_ppp_active_print_and_stats():
    box = Box(SERVER_TEXT)
    r = box.print("ppp active print", RT)
    assert r["columns"] == ["name", "service", "caller-id", "address", "uptime", "encoding", "session-id"]
    assert [x["values"]["name"] for x in r["rows"]] == ["ex", "dyn"]  # server sessions only
    row = r["rows"][0]["values"]
    assert row["service"] == "l2tp" and row["caller-id"] == "192.0.2.2" and row["address"] == "10.0.103.2"
    assert row["uptime"] == "6m32s" and row["encoding"] == "MPPE128 stateless"
    assert "bytes-in" not in row
    s = box.print("ppp active print stats", RT)
    for col in ("bytes-in", "bytes-out", "packets-in", "packets-out"):
        assert col in s["columns"]
    v = s["rows"][0]["values"]
    assert (v["bytes-in"], v["bytes-out"], v["packets-in"], v["packets-out"]) == ("1000", "2000", "10", "20")


def test_settings_print():
    box = Box()
    box.do("interface l2tp-server server set enabled=yes authentication=mschap2")
    r = box.print("interface l2tp-server server print")
    assert r["style"] == "settings"
    v = r["values"]
    assert v["enabled"] == "yes" and v["authentication"] == "mschap2" and v["mrru"] == "disabled"
    for key in ("max-mtu", "max-mru", "keepalive-timeout", "default-profile"):
        assert key in v
    assert r["data"]["enabled"] is True


def test_print_unknown_option_is_an_error():
    with pytest.raises((CtlError, UsageError)):
        Box().print("ppp secret print everything")
    with pytest.raises(CtlError):
        menus.print_menu(Config(), EMPTY, menus.MENUS["/ppp/secret"], ["everything"])


def test_print_results_are_json():
    box = Box(SERVER_TEXT)
    for path, menu in menus.MENUS.items():
        for opts in ((), ("detail",)):
            json.dumps(menus.print_menu(box.config, RT, menu, opts))


# --- monitor -------------------------------------------------------------------------------------

MONITOR_KEYS = ["status", "uptime", "idle-time", "encoding", "mtu", "mru", "local-address", "remote-address"]


def test_client_monitor_by_name_and_number():
    box = Box(SERVER_TEXT)
    mon = menus.monitor(box.config, RT, menus.MENUS["/interface/l2tp-client"], "out1")
    assert mon["name"] == "out1"
    assert list(mon["values"]) == MONITOR_KEYS
    v = mon["values"]
    assert v["status"] == "connected" and v["uptime"] == "6m32s" and v["idle-time"] == "3s"
    assert v["encoding"] == "MPPE128 stateless" and v["mtu"] == 1450 and v["mru"] == 1450
    assert v["local-address"] == "10.9.0.2" and v["remote-address"] == "10.9.0.1"
    assert menus.monitor(box.config, RT, menus.MENUS["/interface/l2tp-client"], "0") == mon
    idle = menus.monitor(box.config, RT, menus.MENUS["/interface/l2tp-client"], "out2")
    assert idle["values"]["status"] in ("disabled", "terminated")
    with pytest.raises(CtlError):
        menus.monitor(box.config, RT, menus.MENUS["/interface/l2tp-client"], "nosuch")


def test_server_monitor_static_and_dynamic():
    box = Box(SERVER_TEXT)
    menu = menus.MENUS["/interface/l2tp-server"]
    st = menus.monitor(box.config, RT, menu, "FromLaptop")
    assert list(st["values"]) == MONITOR_KEYS and st["values"]["remote-address"] == "10.0.103.2"
    dyn = menus.monitor(box.config, RT, menu, "<l2tp-dyn>")
    assert dyn["values"]["status"] == "connected" and dyn["values"]["remote-address"] == "10.0.104.2"
    assert menus.monitor(box.config, RT, menu, "2") == dyn
    down = menus.monitor(box.config, RT, menu, "l2tp-in2")
    assert down["values"]["status"] != "connected" and "uptime" not in down["values"]
    with pytest.raises(CtlError):
        menus.monitor(box.config, RT, menu, "nosuch")


# --- passwords -----------------------------------------------------------------------------------

PASSWORDS = ("lkjrht", "dynpass", "johnpw", "xpw", "tunnelpw", "radiuspw")


def test_passwords_only_in_secret_print_detail():
    box = Box(SERVER_TEXT)
    shown = set()
    for path, menu in menus.MENUS.items():
        for opts in ((), ("detail",), ("stats",)):
            try:
                result = menus.print_menu(box.config, RT, menu, opts)
            except CtlError:
                continue
            text = json.dumps(result) + render_print(result)
            for pw in PASSWORDS:
                if pw in text:
                    shown.add((path, opts, pw))
    assert shown == {("/ppp/secret", ("detail",), "lkjrht"), ("/ppp/secret", ("detail",), "dynpass")}


def test_passwords_not_in_monitor():
    box = Box(SERVER_TEXT)
    for path, item in (("/interface/l2tp-client", "out1"), ("/interface/l2tp-server", "FromLaptop")):
        text = json.dumps(menus.monitor(box.config, RT, menus.MENUS[path], item))
        assert not any(pw in text for pw in PASSWORDS)


def test_export_shows_passwords_only_with_show_sensitive():
    box = Box(SERVER_TEXT)
    plain = menus.export(box.config)
    assert not any(pw in plain for pw in PASSWORDS)
    sensitive = menus.export(box.config, secrets=True)
    assert all(pw in sensitive for pw in PASSWORDS)


# --- export --------------------------------------------------------------------------------------


def replay(text: str) -> Box:
    box = Box()
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            box.line(line)
    return box


def test_export_looks_like_routeros():
    box = Box()
    box.do(SECRET_EX)
    box.do("interface l2tp-server server set enabled=yes")
    text = menus.export(box.config, secrets=True)
    lines = text.splitlines()
    assert lines[0].startswith("#")
    i = lines.index("/ppp secret")
    assert lines[i + 1].startswith("add name=ex ") and 'routes="10.150.1.0/24 10.0.103.2 1"' in lines[i + 1]
    i = lines.index("/interface l2tp-server server")
    assert lines[i + 1] == "set enabled=yes"


def test_export_of_the_empty_configuration_replays_to_it():
    assert replay(menus.export(Config(), secrets=True)).config == Config()


def test_export_replays_to_the_same_config():
    box = Box(SERVER_TEXT)
    box.do("ppp profile set default only-one=yes")
    box.do("ppp profile add name=office local-address=pool1 remote-address=pool1 dns-server=10.0.0.53 "
           "use-encryption=required session-timeout=1h")
    box.do("ip pool add name=pool0 ranges=10.2.0.0/24 next-pool=pool1")
    box.do("interface l2tp-server server set authentication=mschap2,chap keepalive-timeout=10s")
    box.do("ppp aaa set accounting=no")
    box.do('ppp secret set ex routes="10.150.1.0/24 10.0.103.2 1,10.151.0.0/16" comment="HQ router"')
    again = replay(menus.export(box.config, secrets=True))
    assert again.config == box.config
    assert menus.export(again.config, secrets=True) == menus.export(box.config, secrets=True)


@pytest.mark.parametrize("text", ["it's", "say \"hi\"", "a#b", "back\\slash", "semi;colon x", "$HOME", "{x}",
                                  "tab\there", "two\nlines", " padded "])
def test_export_quotes_any_password_and_comment(text):
    """Passwords and comments are free text: export must quote them so that they replay unchanged."""
    box = Box()
    c = box.do("ppp secret add name=u password=x")
    doc = ConfigDocument(box.text)
    doc.set(("ppp", "secret"), {"password": text, "comment": text}, 0)
    c = doc.load()
    assert replay(menus.export(c, secrets=True)).config == c


def test_export_keeps_the_order_of_pools():
    """A pool may name a next-pool that comes after it; the replay must keep the print numbers."""
    box = Box()
    box.do("ip pool add name=first ranges=10.0.0.0/24")
    box.do("ip pool add name=second ranges=10.1.0.0/24")
    box.do("ip pool set first next-pool=second")
    again = replay(menus.export(box.config, secrets=True))
    assert [p.name for p in again.config.ip.pool] == ["first", "second"]
    assert again.config == box.config


# hypothesis: a few generated configurations round-trip through export

# passwords and comments are free text: any printable character, quotes, tabs and line breaks
free_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("\t\n\r'\"\\#;é€"),
                    max_size=12)
names = st.text("abcdefgh-xyz0123", min_size=1, max_size=8).filter(lambda s: not re.fullmatch(r"[\d.]+", s))
# user names may hold any printable character (not surrounding spaces)
user_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.sampled_from(" 'é"), min_size=1,
                     max_size=8).filter(lambda s: s == s.strip())
octet = st.integers(1, 254)


@st.composite
def configs(draw) -> str:
    doc: dict = {}
    secrets = []
    for i, name in enumerate(draw(st.lists(user_names, max_size=3, unique=True))):
        s = {"name": name, "password": draw(free_text)}
        if draw(st.booleans()):
            s["local-address"] = f"10.{i}.0.1"
            s["remote-address"] = f"10.{i}.0.{draw(octet)}"
        if draw(st.booleans()):
            s["routes"] = f"10.{100 + i}.0.0/16 10.{i}.0.1 {draw(st.integers(0, 255))}"
        if draw(st.booleans()):
            s["comment"] = draw(free_text)
        s["disabled"] = draw(st.booleans())
        s["service"] = draw(st.sampled_from(["any", "l2tp"]))
        secrets.append(s)
    pools = [{"name": f"pool{i}", "ranges": f"10.20{i}.0.0/{draw(st.integers(24, 30))}"}
             for i in range(draw(st.integers(0, 2)))]
    if len(pools) == 2:  # next-pool pointing back, forward, or not at all
        back, forward = pools[1], pools[0]
        which = draw(st.sampled_from(["none", "back", "forward"]))
        if which == "back":
            back["next-pool"] = "pool0"
        elif which == "forward":
            forward["next-pool"] = "pool1"
    profiles = []
    for i in range(draw(st.integers(0, 2))):
        p = {"name": f"prof{i}", "use-encryption": draw(st.sampled_from(["default", "no", "yes", "required"])),
             "only-one": draw(st.sampled_from(["default", "yes", "no"]))}
        if pools:
            p["remote-address"] = pools[-1]["name"]
        profiles.append(p)
    if draw(st.booleans()):
        profiles.append({"name": "default", "only-one": "yes"})
    if secrets and profiles and draw(st.booleans()):
        secrets[0]["profile"] = profiles[0]["name"]
    clients = []
    for i in range(draw(st.integers(0, 2))):
        clients.append({"name": f"out{i}", "connect-to": f"192.0.2.{draw(octet)}", "user": draw(user_names),
                        "password": draw(free_text), "disabled": draw(st.booleans()),
                        "add-default-route": draw(st.booleans()),
                        "allow": draw(st.sampled_from(["mschap2", "mschap2,chap", "pap,chap,mschap1,mschap2"]))})
    server = {"enabled": draw(st.booleans()),
              "authentication": draw(st.sampled_from(["mschap2", "mschap1,mschap2", "chap,pap"])),
              "keepalive-timeout": draw(st.sampled_from(["10s", "30s", "1m30s", "disabled"]))}
    interfaces = [{"name": f"in{i}", "user": s["name"]} for i, s in enumerate(secrets) if draw(st.booleans())]
    doc["l2tp-server"] = {"server": server}
    if interfaces:
        doc["l2tp-server"]["interface"] = interfaces
    if clients:
        doc["l2tp-client"] = clients
    doc["ppp"] = {}
    if secrets:
        doc["ppp"]["secret"] = secrets
    if profiles:
        doc["ppp"]["profile"] = profiles
    if draw(st.booleans()):
        doc["ppp"]["l2tp-secret"] = [{"address": "192.0.2.0/24", "secret": draw(free_text.filter(bool))}]
    if pools:
        doc["ip"] = {"pool": pools}
    return tomlkit.dumps(doc)


@given(configs())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_export_replay_round_trip_generated(text):
    config = load_text(text)
    exported = menus.export(config, secrets=True)
    again = replay(exported)
    assert again.config == config, exported


# --- the command language and completion (console.parse / Console.complete) ----------------------


def test_parse_the_manual_lines():
    p = parse("/", split('ppp secret add name=ex password=lkjrht local-address=10.0.103.1 '
                         'remote-address=10.0.103.2 routes="10.150.1.0/24 10.0.103.2 1"'))
    assert (p.menu, p.verb, p.items) == ("/ppp/secret", "add", [])
    assert p.props["routes"] == "10.150.1.0/24 10.0.103.2 1" and p.props["password"] == "lkjrht"
    p = parse("/interface/l2tp-client", split("monitor test2 once"))
    assert (p.menu, p.verb, p.items, p.options) == ("/interface/l2tp-client", "monitor", ["test2"], ["once"])
    p = parse("/", split("ppp secret remove 0,2 ex"))
    assert p.items == ["0", "2", "ex"]
    p = parse("/ppp/secret", split("print detail"))
    assert p.options == ["detail"]
    assert parse("/", split("/interface l2tp-server server")).verb is None  # navigation


@pytest.mark.parametrize("line", ["ppp secret add name=a name=b", "ppp secret print bogus",
                                  "ppp secret remove name=x", "nosuchmenu print", "ppp secret frob",
                                  'ppp secret add name="unterminated'])
def test_parse_errors_are_one_line_usage_errors(line):
    with pytest.raises(UsageError) as info:
        parse("/", split(line))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cwd,line,text,want", [
    ("/", "/ppp sec", "sec", "secret "),
    ("/", "interface l2tp-c", "l2tp-c", "l2tp-client "),
    ("/interface/l2tp-server", "add na", "na", "name="),
    ("/ppp/secret", "set 0 pass", "pass", "password="),
    ("/ppp/secret", "pr", "pr", "print "),
    ("/ppp/secret", "print de", "de", "detail"),
    ("/interface/l2tp-client", "monitor test2 o", "o", "once"),
    ("/interface", "l2tp-server ser", "ser", "server "),
])
def test_completion_of_menus_commands_and_properties(cwd, line, text, want):
    from fastl2tp.console import Console

    c = Console(client=None)  # type: ignore[arg-type]  # completion does not talk to the daemon
    c.cwd = cwd
    assert c.complete(line, text) == [want]
