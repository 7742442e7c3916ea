"""Profile and secret policies end to end: IPv6CP link-local addresses, session-timeout, idle-timeout,
caller-id, and SIGHUP reload that keeps the sessions it does not touch."""

from __future__ import annotations

import signal
import time

from tests.e2e.daemons import LAC_IP, LNS_IP, Daemon, link_addr, pair, wait_for
from tests.e2e.test_daemon import lac_config
from tests.netns import netns_only

pytestmark = netns_only


def server(extra_secret="", profile="", users=("ex",)):
    secrets = "".join(f"""
[[ppp.secret]]
name = "{u}"
password = "lkjrht"
local-address = "10.0.10{i}.1"
remote-address = "10.0.10{i}.2"
{extra_secret}
""" for i, u in enumerate(users))
    return f"""
[l2tp-server.server]
enabled = true
listen-address = "{LNS_IP}"
{profile}
{secrets}"""


def link_local(ns, ifname):
    return [a["local"] for li in ns.ip_json("-6", "addr", "show", "dev", ifname) for a in li.get("addr_info", [])
            if a["local"].startswith("fe80:")]


def test_ipv6cp_gives_both_ends_link_local_addresses(netns, tmp_path):
    lns, lac = pair(netns)
    s = Daemon(lns, server(), tmp_path, "lns")
    c = Daemon(lac, lac_config(), tmp_path, "lac")
    logs = lambda: s.text() + c.text()  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="client up", on_fail=logs)
    server_if = "l2tp-ex"
    wait_for(lambda: link_local(lac, "l2tp-out1") and link_local(lns, server_if), what="IPv6 link-local",
             on_fail=logs)
    peer = link_local(lns, server_if)[0]
    r = lac.run(["ping", "-6", "-c", "2", "-W", "2", f"{peer}%l2tp-out1"], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    c.stop()
    s.stop()


def test_session_timeout_ends_the_session(netns, tmp_path):
    lns, lac = pair(netns)
    profile = '[[ppp.profile]]\nname = "default"\nsession-timeout = "3s"\n'
    s = Daemon(lns, server(profile=profile), tmp_path, "lns")
    c = Daemon(lac, lac_config(), tmp_path, "lac")
    wait_for(lambda: link_addr(lns, "l2tp-ex"), what="up", on_fail=s.text)
    wait_for(lambda: "session timeout" in s.text(), timeout=10, what="session timeout", on_fail=s.text)
    c.stop()
    s.stop()


def test_idle_timeout_counts_ip_traffic_only(netns, tmp_path):
    lns, lac = pair(netns)
    profile = '[[ppp.profile]]\nname = "default"\nidle-timeout = "3s"\n'
    s = Daemon(lns, server(profile=profile), tmp_path, "lns")
    c = Daemon(lac, lac_config(), tmp_path, "lac")
    wait_for(lambda: link_addr(lns, "l2tp-ex"), what="up", on_fail=s.text)
    # traffic keeps it up past the timeout...
    end = time.monotonic() + 5
    while time.monotonic() < end:
        lac.run(["ping", "-c", "1", "-W", "1", "10.0.100.1"], check=False)
        time.sleep(0.5)
    assert "idle timeout" not in s.text()
    # ...silence ends it (LCP echoes do not count)
    wait_for(lambda: "idle timeout" in s.text(), timeout=10, what="idle timeout", on_fail=s.text)
    c.stop()
    s.stop()


def test_caller_id_must_match(netns, tmp_path):
    lns, lac = pair(netns)
    s = Daemon(lns, server(extra_secret='caller-id = "192.0.2.99"'), tmp_path, "lns")
    c = Daemon(lac, lac_config(), tmp_path, "lac")
    wait_for(lambda: f"caller-id {LAC_IP} does not match 192.0.2.99" in s.text(), what="caller-id refusal",
             on_fail=s.text)
    assert lac.link("l2tp-out1") is None
    c.stop()
    s.stop()


def test_sighup_reload_keeps_sessions_and_adds_users(netns, tmp_path):
    lns, lac = pair(netns)
    s = Daemon(lns, server(users=("ex",)), tmp_path, "lns")
    c1 = Daemon(lac, lac_config(name="l2tp-out1"), tmp_path, "lac1")
    wait_for(lambda: link_addr(lns, "l2tp-ex"), what="first session", on_fail=s.text)
    ifindex = lns.link("l2tp-ex")["ifindex"]
    s.path.write_text(server(users=("ex", "new")))
    s.p.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in s.text(), what="reload", on_fail=s.text)
    c2 = Daemon(lac, lac_config(user="new", name="l2tp-out2"), tmp_path, "lac2")
    wait_for(lambda: link_addr(lns, "l2tp-new"), what="the new user's session", on_fail=s.text)
    assert lns.link("l2tp-ex")["ifindex"] == ifindex  # the first session was not touched
    # a broken file is refused and the running configuration stays
    s.path.write_text("[l2tp-server.server]\nenabled = maybe\n")
    s.p.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in s.text(), what="refused reload", on_fail=s.text)
    assert link_addr(lns, "l2tp-ex") and link_addr(lns, "l2tp-new")
    c1.stop()
    c2.stop()
    assert s.stop() == 0


def test_client_redials_after_the_server_comes_back(netns, tmp_path):
    lns, lac = pair(netns)
    s = Daemon(lns, server(), tmp_path, "lns1")
    c = Daemon(lac, lac_config(), tmp_path, "lac")
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="first connection", on_fail=c.text)
    assert s.stop() == 0  # StopCCN: the client's session ends and it starts redialing
    wait_for(lambda: lac.link("l2tp-out1") is None, what="client interface removed", on_fail=c.text)
    assert "redialing" in c.text()
    s2 = Daemon(lns, server(), tmp_path, "lns2")
    wait_for(lambda: link_addr(lac, "l2tp-out1"), timeout=40, what="reconnection", on_fail=c.text)
    assert c.stop() == 0
    assert s2.stop() == 0


def test_one_session_per_host_and_max_sessions(netns, tmp_path):
    lns, lac = pair(netns)
    s = Daemon(lns, server(users=("ex", "other")).replace("enabled = true", "enabled = true\none-session-per-host = true"),
               tmp_path, "lns")
    c1 = Daemon(lac, lac_config(name="l2tp-out1"), tmp_path, "lac1")
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="first session", on_fail=s.text)
    c2 = Daemon(lac, lac_config(user="other", name="l2tp-out2"), tmp_path, "lac2")
    wait_for(lambda: f"one session per host: {LAC_IP} already has one" in s.text(), what="refusal",
             on_fail=s.text)
    assert lac.link("l2tp-out2") is None
    c2.stop()
    c1.stop()
    s.stop()
    s = Daemon(lns, server(users=("ex", "other")).replace("enabled = true", "enabled = true\nmax-sessions = 1"),
               tmp_path, "lns-max")
    c1 = Daemon(lac, lac_config(name="l2tp-out1"), tmp_path, "lac3")
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="first session", on_fail=s.text)
    c2 = Daemon(lac, lac_config(user="other", name="l2tp-out2"), tmp_path, "lac4")
    wait_for(lambda: "max-sessions (1) reached" in s.text(), what="refusal", on_fail=s.text)
    c2.stop()
    c1.stop()
    s.stop()


def test_tunnel_secret_on_both_ends(netns, tmp_path):
    lns, lac = pair(netns)
    secret = '[[ppp.l2tp-secret]]\naddress = "192.0.2.0/24"\nsecret = "t-secret"\n'
    s = Daemon(lns, server() + secret, tmp_path, "lns")
    c = Daemon(lac, lac_config() + secret, tmp_path, "lac")
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="tunnel with authentication", on_fail=lambda: s.text() + c.text())
    c.stop()
    s.stop()
    s = Daemon(lns, server() + secret, tmp_path, "lns2")
    c = Daemon(lac, lac_config() + secret.replace("t-secret", "other"), tmp_path, "lac2")
    wait_for(lambda: "tunnel authentication failed" in s.text() + c.text(), what="refused tunnel",
             on_fail=lambda: s.text() + c.text())
    assert lac.link("l2tp-out1") is None
    c.stop()
    s.stop()


def test_mppe_128_required_on_both_ends_pings_and_encrypts(netns, tmp_path):
    lns, lac = pair(netns)
    required = '[[ppp.profile]]\nname = "default-encryption"\nuse-encryption = "required"\n'
    s = Daemon(lns, server(extra_secret='profile = "default-encryption"') + required, tmp_path, "lns")
    c = Daemon(lac, lac_config() + required, tmp_path, "lac")
    logs = lambda: s.text() + "\n----\n" + c.text()  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="client up", on_fail=logs)
    wait_for(lambda: "encryption MPPE128 stateless" in s.text() and "encryption MPPE128 stateless" in c.text(),
             what="MPPE up on both ends", on_fail=logs)
    # capture the tunnel's UDP on the wire while pinging: PPP protocol 0x00FD only, no plaintext ICMP
    cap = lns.popen(["tshark", "-i", "wan0", "-f", "udp port 1701", "-w", str(tmp_path / "mppe.pcap"), "-q"])
    time.sleep(1.5)
    r = lac.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-p", "cafebabe", "10.0.100.1"], check=False)
    time.sleep(0.5)
    cap.terminate()
    cap.wait(timeout=10)
    assert r.returncode == 0, r.stdout + logs()
    assert lns.link("l2tp-ex")["mtu"] == 1446  # 1450 less the 4 octets of MPPE
    data = (tmp_path / "mppe.pcap").read_bytes()
    assert bytes.fromhex("cafebabecafebabe") not in data  # the ping pattern never crosses in clear
    c.stop()
    s.stop()


def test_required_encryption_against_a_peer_without_mppe_fails_cleanly(netns, tmp_path):
    lns, lac = pair(netns)
    required = '[[ppp.profile]]\nname = "default-encryption"\nuse-encryption = "required"\n'
    no = '[[ppp.profile]]\nname = "default-encryption"\nuse-encryption = "no"\n'
    s = Daemon(lns, server(extra_secret='profile = "default-encryption"') + required, tmp_path, "lns")
    c = Daemon(lac, lac_config() + no, tmp_path, "lac")
    wait_for(lambda: "encryption required but the peer refused MPPE" in s.text(), what="clear failure reason",
             on_fail=lambda: s.text() + c.text())
    assert lns.link("l2tp-ex") is None or not link_addr(lns, "l2tp-ex")
    c.stop()
    s.stop()
