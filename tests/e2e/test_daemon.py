"""Both ends fastl2tpd in real namespaces: authentication methods, ping through, interface names,
routes, add-default-route, only-one, the loss of a peer, and config errors."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.e2e.daemons import LNS_IP, Daemon, link_addr, pair, wait_for
from tests.netns import netns_only

pytestmark = netns_only


def lns_config(auth="mschap2", extra=""):
    return f"""
[l2tp-server.server]
enabled = true
authentication = "{auth}"
listen-address = "{LNS_IP}"
keepalive-timeout = "5s"

[[l2tp-server.interface]]
name = "l2tp-in1"
user = "ex"

[[ppp.secret]]
name = "ex"
password = "lkjrht"
local-address = "10.0.103.1"
remote-address = "10.0.103.2"
routes = "10.150.1.0/24 10.0.103.2 1"

[[ppp.secret]]
name = "dyn"
password = "dynpass"
local-address = "10.0.104.1"
remote-address = "10.0.104.2"
{extra}
"""


def lac_config(user="ex", password="lkjrht", allow="mschap2,mschap1,chap,pap", name="l2tp-out1", extra=""):
    return f"""
[[l2tp-client]]
name = "{name}"
connect-to = "{LNS_IP}"
user = "{user}"
password = "{password}"
allow = "{allow}"
disabled = false
keepalive-timeout = "5s"
{extra}
"""


def ping(ns, dst, count=3):
    return ns.run(["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst], check=False)


@pytest.mark.parametrize("method", ["pap", "chap", "mschap1", "mschap2"])
def test_each_auth_method_brings_the_tunnel_up_and_pings(netns, tmp_path, method):
    lns, lac = pair(netns)
    server = Daemon(lns, lns_config(auth=method), tmp_path, "lns")
    client = Daemon(lac, lac_config(), tmp_path, "lac")
    logs = lambda: server.text() + "\n----\n" + client.text()  # noqa: E731
    assert wait_for(lambda: link_addr(lac, "l2tp-out1"), what="client interface", on_fail=logs) == (
        "10.0.103.2", "10.0.103.1")
    assert wait_for(lambda: link_addr(lns, "l2tp-in1"), what="server interface", on_fail=logs) == (
        "10.0.103.1", "10.0.103.2")
    r = ping(lac, "10.0.103.1")
    assert r.returncode == 0, r.stdout + logs()
    # the client's profile allows MPPE but the server's does not: no MPPE, so no room kept for it
    wait_for(lambda: lac.link("l2tp-out1")["mtu"] == 1450, what="client MTU 1450 without MPPE", on_fail=logs)
    assert lns.link("l2tp-in1")["mtu"] == 1450
    # the secret's route is there while the session is up
    assert any(rt.get("dst") == "10.150.1.0/24" for rt in lns.routes())
    assert client.stop() == 0
    wait_for(lambda: lns.link("l2tp-in1") is None, what="server interface removed", on_fail=logs)
    assert not any(rt.get("dst") == "10.150.1.0/24" for rt in lns.routes())
    assert server.stop() == 0


def test_wrong_password_is_refused_and_logged_without_the_password(netns, tmp_path):
    lns, lac = pair(netns)
    server = Daemon(lns, lns_config(), tmp_path, "lns")
    client = Daemon(lac, lac_config(password="wrong-secret"), tmp_path, "lac")
    wait_for(lambda: "authentication failed" in server.text(), what="auth failure logged",
             on_fail=lambda: server.text() + client.text())
    assert "wrong-secret" not in server.text() and "wrong-secret" not in client.text()
    assert lac.link("l2tp-out1") is None
    client.stop()
    server.stop()


def test_dynamic_interface_name_and_add_default_route(netns, tmp_path):
    lns, lac = pair(netns)
    server = Daemon(lns, lns_config(), tmp_path, "lns")
    client = Daemon(lac, lac_config(user="dyn", password="dynpass", extra="add-default-route = true"), tmp_path,
                    "lac")
    logs = lambda: server.text() + "\n----\n" + client.text()  # noqa: E731
    # RouterOS shows <l2tp-dyn>; the Linux name drops the brackets
    wait_for(lambda: link_addr(lns, "l2tp-dyn"), what="dynamic interface", on_fail=logs)
    wait_for(lambda: any(r.get("dst") == "default" and r.get("dev") == "l2tp-out1" for r in lac.routes()),
             what="default route via the tunnel", on_fail=logs)
    assert ping(lac, "10.0.104.1").returncode == 0
    assert client.stop() == 0
    assert not any(r.get("dev") == "l2tp-out1" for r in lac.routes())
    server.stop()


def test_only_one_refuses_a_second_session_of_the_same_user(netns, tmp_path):
    lns, lac = pair(netns)
    extra = '[[ppp.profile]]\nname = "default"\nonly-one = true\n'
    server = Daemon(lns, lns_config(extra=extra), tmp_path, "lns")
    c1 = Daemon(lac, lac_config(name="l2tp-out1"), tmp_path, "lac1")
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="first session", on_fail=server.text)
    c2 = Daemon(lac, lac_config(name="l2tp-out2"), tmp_path, "lac2")
    wait_for(lambda: "only-one" in server.text(), what="second login refused", on_fail=server.text)
    assert lac.link("l2tp-out2") is None
    c2.stop()
    c1.stop()
    server.stop()


def test_killed_client_is_dropped_within_keepalive_timeout(netns, tmp_path):
    lns, lac = pair(netns)
    server = Daemon(lns, lns_config(), tmp_path, "lns")
    client = Daemon(lac, lac_config(), tmp_path, "lac")
    wait_for(lambda: link_addr(lns, "l2tp-in1"), what="server interface", on_fail=server.text)
    client.p.send_signal(signal.SIGKILL)
    client.p.wait()
    # keepalive-timeout 5 s + 5 echoes 1 s apart, + 6 s margin (issue 4)
    wait_for(lambda: lns.link("l2tp-in1") is None, timeout=5 + 5 + 6, what="session dropped",
             on_fail=server.text)
    assert "keepalive timeout" in server.text()
    server.stop()


def test_config_error_is_one_line_naming_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[ppp.secret]]\nname = "x"\nlocal-address = "10.0.0.300"\n')
    r = subprocess.run([sys.executable, "-m", "fastl2tp.daemon", "-c", str(bad)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "ppp.secret[0].local-address" in lines[0] and "Traceback" not in r.stderr
