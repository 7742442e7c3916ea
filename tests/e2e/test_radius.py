"""RADIUS against a real FreeRADIUS (issue 7): an LNS with use-radius=yes and a fastl2tp client.

FreeRADIUS runs in the LNS namespace on loopback; the users are not in the LNS's local secrets, so
RouterOS precedence sends them to RADIUS."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.daemons import LAC_IP, LNS_IP, Daemon, link_addr, pair, wait_for
from tests.e2e.test_metrics import sample, scrape
from tests.netns import netns_only
from tests.radius_server import RadiusUser, radclient

pytestmark = netns_only

SECRET = "radius-test-secret"
USERS = [
    RadiusUser("pap-user", "pap-pw", {"Framed-IP-Address": "10.77.0.10", "Framed-Route": "10.78.1.0/24 0.0.0.0 1",
                                      "Class": "0x636c6173732d61", "Acct-Interim-Interval": "2",
                                      "Mikrotik-Rate-Limit": "10M/20M"}),
    RadiusUser("chap-user", "chap-pw", {"Framed-IP-Address": "10.77.0.11"}),
    RadiusUser("ms1-user", "ms1-pw", {"Framed-IP-Address": "10.77.0.12"}),
    RadiusUser("ms2-user", "ms2-pw", {"Framed-IP-Address": "10.77.0.13"}),
    RadiusUser("pool-user", "pool-pw", {"Framed-Pool": "radpool"}),
    RadiusUser("group-user", "group-pw", {"Framed-IP-Address": "10.77.0.14", "Mikrotik-Group": "slow"}),
    RadiusUser("bad-user", "bad-pw", {"Reply-Message": "account closed"}, reject=True),
]


def lns_config(methods: str = "pap,chap,mschap1,mschap2") -> str:
    return f"""
[l2tp-server.server]
enabled = true
authentication = "{methods}"
listen-address = "{LNS_IP}"
default-profile = "radius"

[[ip.pool]]
name = "radpool"
ranges = "10.77.5.1-10.77.5.9"

[[ppp.profile]]
name = "radius"
local-address = "10.77.0.1"
use-encryption = "yes"

[[ppp.profile]]
name = "slow"
local-address = "10.77.0.2"
use-encryption = "required"
mppe-key-lengths = "40"

[ppp.aaa]
use-radius = true
accounting = true

[[radius]]
address = "127.0.0.1"
secret = "{SECRET}"
timeout = "500ms"
"""


def client_config(user: str, password: str, allow: str) -> str:
    return f"""
[[l2tp-client]]
name = "l2tp-out1"
connect-to = "{LNS_IP}"
user = "{user}"
password = "{password}"
allow = "{allow}"
disabled = false
"""


@pytest.fixture
def setup(netns, freeradius, tmp_path):
    lns, lac = pair(netns)
    radius = freeradius(USERS, clients=[("127.0.0.1", SECRET)], ns=lns)
    return lns, lac, radius, tmp_path


@pytest.mark.parametrize("user,password,allow,address", [
    ("pap-user", "pap-pw", "pap", "10.77.0.10"),
    ("chap-user", "chap-pw", "chap", "10.77.0.11"),
    ("ms1-user", "ms1-pw", "mschap1", "10.77.0.12"),
    ("ms2-user", "ms2-pw", "mschap2", "10.77.0.13"),
])
def test_each_method_logs_in_through_freeradius(setup, user, password, allow, address):
    lns, lac, radius, tmp = setup
    s = Daemon(lns, lns_config(), tmp, "lns")
    c = Daemon(lac, client_config(user, password, allow), tmp, "lac")
    logs = lambda: s.text()[-4000:] + "\n---- lac ----\n" + c.text()[-3000:]  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out1"), timeout=30, what=f"{user} up", on_fail=logs)
    assert link_addr(lac, "l2tp-out1") == (address, "10.77.0.1")
    if allow in ("mschap1", "mschap2"):  # MPPE keys from RADIUS (MS-MPPE-*-Key / MS-CHAP-MPPE-Keys)
        wait_for(lambda: "encryption MPPE128" in s.text() and "encryption MPPE128" in c.text(), timeout=10,
                 what="MPPE up", on_fail=logs)
    # after MPPE is up: the pings only come back if both ends derived the same keys
    assert lac.run(["ping", "-c", "3", "-W", "2", "10.77.0.1"], check=False).returncode == 0, logs()
    start = radius.wait_detail(lambda r: r.get("Acct-Status-Type") == "Start" and r.get("User-Name") == user)
    assert start[0]["Framed-IP-Address"] == address
    assert c.stop() == 0
    stop = radius.wait_detail(lambda r: r.get("Acct-Status-Type") == "Stop" and r.get("User-Name") == user)[0]
    assert int(stop["Acct-Input-Octets"]) > 0 and int(stop["Acct-Output-Octets"]) > 0
    assert stop["Acct-Terminate-Cause"] == "User-Request"
    assert stop["Acct-Session-Id"] == start[0]["Acct-Session-Id"]
    assert s.stop() == 0
    assert "pap-pw" not in s.text() and password not in s.text()


def test_framed_route_class_interim_and_stop_octets_match_our_counters(setup):
    lns, lac, radius, tmp = setup
    s = Daemon(lns, lns_config("pap"), tmp, "lns")
    c = Daemon(lac, client_config("pap-user", "pap-pw", "pap"), tmp, "lac")
    logs = lambda: s.text()[-4000:] + "\n---- lac ----\n" + c.text()[-3000:]  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out1"), timeout=30, what="up", on_fail=logs)
    # Framed-Route 10.78.1.0/24 via the session
    wait_for(lambda: any(r.get("dst") == "10.78.1.0/24" for r in lns.ip_json("-4", "route", "show")),
             what="Framed-Route installed", on_fail=logs)
    assert lac.run(["ping", "-c", "5", "-i", "0.2", "-W", "2", "10.77.0.1"], check=False).returncode == 0
    interim = radius.wait_detail(lambda r: r.get("Acct-Status-Type") == "Interim-Update", timeout=10)[0]
    assert interim["Class"] == "0x636c6173732d61"  # echoed from the Access-Accept
    rows = json.loads(s.cli("--json", "ppp", "active", "print", "stats", check=True).stdout)["rows"]
    assert [r["values"]["name"] for r in rows] == ["pap-user"]
    assert rows[0]["values"]["limit"] == "10M/20M"  # Mikrotik-Rate-Limit, shown in ppp active
    ours = rows[0]["data"]
    s.cli("ppp", "active", "remove", "0", check=True)  # the traffic has stopped: the Stop must say the same
    stop = radius.wait_detail(lambda r: r.get("Acct-Status-Type") == "Stop")[0]
    assert stop["Class"] == "0x636c6173732d61"
    assert stop["Acct-Terminate-Cause"] == "Admin-Reset"
    assert int(stop["Acct-Input-Packets"]) >= 5 and int(stop["Acct-Output-Packets"]) >= 5
    assert (int(stop["Acct-Input-Octets"]), int(stop["Acct-Output-Octets"])) == (ours["bytes_in"], ours["bytes_out"])
    assert (int(stop["Acct-Input-Packets"]), int(stop["Acct-Output-Packets"])) == (ours["packets_in"],
                                                                                    ours["packets_out"])
    assert c.stop() == 0
    assert s.stop() == 0
    assert radius.wait_detail(lambda r: r.get("Acct-Status-Type") in ("Accounting-On", "Accounting-Off"), count=2)


def test_pool_from_radius_and_a_rejected_user(setup):
    lns, lac, radius, tmp = setup
    s = Daemon(lns, lns_config("pap"), tmp, "lns")
    c = Daemon(lac, client_config("pool-user", "pool-pw", "pap") + """
[[l2tp-client]]
name = "l2tp-out2"
connect-to = "192.0.2.1"
user = "bad-user"
password = "bad-pw"
allow = "pap"
disabled = false
""", tmp, "lac")
    logs = lambda: s.text()[-4000:] + "\n---- lac ----\n" + c.text()[-3000:]  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out1"), timeout=30, what="pool user up", on_fail=logs)
    assert link_addr(lac, "l2tp-out1")[0] == "10.77.5.1"  # Framed-Pool: from the LNS's pool radpool
    wait_for(lambda: re.search(r"login of user bad-user refused: RADIUS reject: account closed", s.text()),
             what="clean refusal", on_fail=logs)
    assert link_addr(lac, "l2tp-out2") is None
    assert c.stop() == 0 and s.stop() == 0


def test_no_radius_answer_refuses_the_login_and_local_users_still_work(netns, tmp_path):
    lns, lac = pair(netns)  # no FreeRADIUS at all: every request times out
    config = lns_config("pap") + """
[[ppp.secret]]
name = "local"
password = "local-pw"
local-address = "10.77.9.1"
remote-address = "10.77.9.2"
"""
    s = Daemon(lns, config, tmp_path, "lns")
    c = Daemon(lac, client_config("pap-user", "pap-pw", "pap") + f"""
[[l2tp-client]]
name = "l2tp-out2"
connect-to = "{LNS_IP}"
user = "local"
password = "local-pw"
allow = "pap"
disabled = false
""", tmp_path, "lac")
    logs = lambda: s.text()[-4000:] + "\n---- lac ----\n" + c.text()[-3000:]  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out2"), timeout=30, what="local user up", on_fail=logs)
    wait_for(lambda: "login of user pap-user refused: RADIUS:" in s.text(), timeout=30,
             what="RADIUS timeout refusal", on_fail=logs)
    assert link_addr(lac, "l2tp-out1") is None
    assert LAC_IP  # the client dials from the LAC namespace
    assert c.stop() == 0 and s.stop() == 0


def test_disconnect_and_coa_from_the_radius_server(setup):
    lns, lac, radius, tmp = setup
    config = lns_config("pap") + """
[radius-incoming]
accept = true
port = 3799

[metrics]
listen = "127.0.0.1:9118"
"""
    s = Daemon(lns, config, tmp, "lns")
    c = Daemon(lac, client_config("chap-user", "chap-pw", "pap"), tmp, "lac")
    logs = lambda: s.text()[-4000:] + "\n---- lac ----\n" + c.text()[-3000:]  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out1"), timeout=30, what="up", on_fail=logs)
    start = radius.wait_detail(lambda r: r.get("Acct-Status-Type") == "Start")[0]

    # a request for nobody: NAK with Session-Context-Not-Found, nothing ends
    r = radclient("127.0.0.1:3799", "disconnect", SECRET, {"User-Name": "nobody"}, ns=lns)
    assert r.code == "Disconnect-NAK" and r.get("Error-Cause") == "Session-Context-Not-Found", r.stdout + r.stderr
    # a wrong secret: dropped, no answer at all
    r = radclient("127.0.0.1:3799", "disconnect", "wrong", {"User-Name": "chap-user"}, ns=lns, timeout=1)
    assert r.code is None
    assert link_addr(lac, "l2tp-out1") is not None

    # CoA: Session-Timeout 2 s for the running session; it then ends as a session timeout
    r = radclient("127.0.0.1:3799", "coa", SECRET, {"Acct-Session-Id": start["Acct-Session-Id"],
                                                    "Session-Timeout": "2"}, ns=lns)
    assert r.code == "CoA-ACK", r.stdout + r.stderr
    stop = radius.wait_detail(lambda r: r.get("Acct-Status-Type") == "Stop", timeout=15)[0]
    assert stop["Acct-Terminate-Cause"] == "Session-Timeout"

    # the client redials; Disconnect-Request by User-Name ends the new session (Admin-Reset)
    wait_for(lambda: link_addr(lac, "l2tp-out1"), timeout=30, what="redialed", on_fail=logs)
    radius.wait_detail(lambda r: r.get("Acct-Status-Type") == "Start", count=2)
    r = radclient("127.0.0.1:3799", "disconnect", SECRET, {"User-Name": "chap-user"}, ns=lns)
    assert r.code == "Disconnect-ACK", r.stdout + r.stderr
    stops = radius.wait_detail(lambda r: r.get("Acct-Status-Type") == "Stop", count=2)
    assert stops[1]["Acct-Terminate-Cause"] == "Admin-Reset"
    m = scrape(lns, "http://127.0.0.1:9118/metrics")  # what was dropped is counted
    assert sample(m, "fastl2tp_radius_incoming_total", outcome="bad_request") == 1
    assert sample(m, "fastl2tp_radius_incoming_total", outcome="nak") == 1
    assert sample(m, "fastl2tp_radius_incoming_total", outcome="disconnect") == 1
    assert sample(m, "fastl2tp_radius_incoming_total", outcome="coa") == 1
    assert sample(m, "fastl2tp_radius_client_events_total", event="replies") >= 4
    assert c.stop() == 0 and s.stop() == 0


def test_primary_down_the_backup_answers(setup):
    lns, lac, radius, tmp = setup
    backup = lns_config("pap").replace("[[radius]]", """[[radius]]
address = "127.0.0.1"
secret = "primary-is-down"
authentication-port = 18120
accounting-port = 18130
timeout = "300ms"

[[radius]]""", 1)
    s = Daemon(lns, backup, tmp, "lns")
    c = Daemon(lac, client_config("pap-user", "pap-pw", "pap"), tmp, "lac")
    logs = lambda: s.text()[-4000:] + "\n---- lac ----\n" + c.text()[-3000:]  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out1"), timeout=30, what="up via the backup", on_fail=logs)
    assert link_addr(lac, "l2tp-out1")[0] == "10.77.0.10"
    radius.wait_detail(lambda r: r.get("Acct-Status-Type") == "Start")  # accounting fails over too
    assert c.stop() == 0 and s.stop() == 0


def test_mikrotik_group_selects_the_profile(setup):
    """Mikrotik-Group=slow: that profile's local address and MPPE policy (required, 40-bit only)."""
    lns, lac, radius, tmp = setup
    s = Daemon(lns, lns_config("mschap2"), tmp, "lns")
    c = Daemon(lac, client_config("group-user", "group-pw", "mschap2"), tmp, "lac")
    logs = lambda: s.text()[-4000:] + "\n---- lac ----\n" + c.text()[-3000:]  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out1"), timeout=30, what="up", on_fail=logs)
    assert link_addr(lac, "l2tp-out1") == ("10.77.0.14", "10.77.0.2")
    wait_for(lambda: "encryption MPPE40 stateless" in s.text() and "encryption MPPE40 stateless" in c.text(),
             timeout=10, what="MPPE40 (the group's profile)", on_fail=logs)
    assert lac.run(["ping", "-c", "2", "-W", "2", "10.77.0.2"], check=False).returncode == 0, logs()
    assert c.stop() == 0 and s.stop() == 0
