"""The README's main job (``fastl2tp demo``) and 100 concurrent sessions between two namespaces."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.daemons import LNS_IP, Daemon, pair, wait_for
from tests.netns import netns_only

pytestmark = netns_only

N = 100


def test_demo_runs_and_cleans_up():
    r = subprocess.run([sys.executable, "-m", "fastl2tp", "demo", "--iperf-seconds", "1"], capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "status: connected" in out
    assert out.count("3/3 replies") == 3
    assert "Gbit/s TCP" in out
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "fl2demo-" not in left


def test_100_sessions_all_ping(netns, tmp_path):
    lns, lac = pair(netns)
    server = f"""
[l2tp-server.server]
enabled = true
authentication = "mschap2"
listen-address = "{LNS_IP}"

[[ip.pool]]
name = "clients"
ranges = "10.9.1.1-10.9.1.254"

[[ppp.profile]]
name = "many"
local-address = "10.9.0.1"
remote-address = "clients"

[[ppp.secret]]
name = "many"
password = "m4ny"
profile = "many"
"""
    clients = "".join(f"""
[[l2tp-client]]
name = "l2tp-out{i}"
connect-to = "{LNS_IP}"
user = "many"
password = "m4ny"
disabled = false
""" for i in range(1, N + 1))
    s = Daemon(lns, server, tmp_path, "lns")
    c = Daemon(lac, clients, tmp_path, "lac")

    def up_count(ns, prefix):
        links = ns.ip_json("-4", "addr", "show")
        return sum(1 for li in links if li["ifname"].startswith(prefix) and li.get("addr_info"))

    # each end configures its interface when IPCP is up at its end: wait for both ends of all sessions
    for ns, prefix in ((lac, "l2tp-out"), (lns, "l2tp-many")):
        wait_for(lambda: up_count(ns, prefix) == N, timeout=90, what=f"{N} {prefix} interfaces",
                 on_fail=lambda: f"{up_count(ns, prefix)} up\n" + s.text()[-3000:] + c.text()[-3000:])
    failed = []
    for i in range(1, N + 1):
        r = lac.run(["ping", "-c", "1", "-W", "2", "-I", f"l2tp-out{i}", "10.9.0.1"], check=False)
        if r.returncode != 0:
            failed.append(i)
    # every session came up once and stayed up: none was dropped and redialed on the way
    downs = [line for line in s.text().splitlines() if "link down" in line]
    assert (failed, downs[:5]) == ([], []), f"{failed} {downs[:5]}\n" + s.text()[-3000:] + c.text()[-3000:]
    addrs = {a["local"] for li in lac.ip_json("-4", "addr", "show") if li["ifname"].startswith("l2tp-out")
             for a in li["addr_info"]}
    assert len(addrs) == N  # every session got its own address from the pool
    assert c.stop() == 0
    wait_for(lambda: not any(li["ifname"].startswith("l2tp-") for li in lns.ip_json("link", "show")), timeout=30,
             what="server interfaces removed", on_fail=s.text)
    assert s.stop() == 0
