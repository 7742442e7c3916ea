"""Multilink PPP and BCP end to end (issue 8): two fastl2tpd in namespaces.

- ``mrru = 1614`` on both ends: a whole 1500-octet packet (``ping -s 1472 -M do``) crosses a tunnel whose
  links carry at most 1450 octets, as MP fragments (tshark sees protocol 0x003d and no IP fragments).
- Two ``[[l2tp-client]]`` sessions of the same user to the same server form one bundle and one interface;
  iperf3 runs through it while the link that runs the bundle's NCPs goes down, and keeps going.
- ``bridge = "br0"`` in both ends' profiles: a host behind each end's bridge, on one L2 segment through
  the tunnel: ARP resolves, ping passes, a broadcast reaches the far side; also over a multilink bundle
  (full-size frames) and with MPPE (nothing of the LANs in clear).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.daemons import LNS_IP, Daemon, capture, link_addr, pair, wait_for
from tests.netns import netns_only

pytestmark = netns_only

SERVER_IP, CLIENT_IP = "10.0.104.1", "10.0.104.2"


def lns_config(*, mrru: str = "1614", profile: str = "", secret: str = "") -> str:
    return f"""
[l2tp-server.server]
enabled = true
listen-address = "{LNS_IP}"
authentication = "mschap2"
mrru = "{mrru}"
keepalive-timeout = "5s"

[[ppp.secret]]
name = "ex"
password = "lkjrht"
{secret}
{profile}
"""


def lac_config(*, mrru: str = "1614", names: tuple[str, ...] = ("l2tp-out1",), profile: str = "") -> str:
    out = ""
    for name in names:
        out += f"""
[[l2tp-client]]
name = "{name}"
connect-to = "{LNS_IP}"
user = "ex"
password = "lkjrht"
allow = "mschap2"
disabled = false
keepalive-timeout = "5s"
mrru = "{mrru}"
{profile}
"""
    return out


ADDRESSES = f'local-address = "{SERVER_IP}"\nremote-address = "{CLIENT_IP}"'


def logs_of(s: Daemon, c: Daemon):
    return lambda: s.text() + "\n---- lac ----\n" + c.text()


def mtu_of(ns, ifname: str) -> int:
    return ns.link(ifname)["mtu"]


def test_full_size_packets_cross_a_1450_link_as_mp_fragments(netns, tmp_path):
    lns, lac = pair(netns)
    with capture(lns, tmp_path / "mp.pcapng") as cap:
        s = Daemon(lns, lns_config(secret=ADDRESSES), tmp_path, "lns")
        c = Daemon(lac, lac_config(), tmp_path, "lac")
        logs = logs_of(s, c)
        assert wait_for(lambda: link_addr(lac, "l2tp-out1"), what="client up", on_fail=logs) == (CLIENT_IP, SERVER_IP)
        wait_for(lambda: "l2tp-ex" in " ".join(l["ifname"] for l in lns.ip_json("link", "show")), what="server up",
                 on_fail=logs)
        # the interface takes the peer's MRRU, the links stay at 1450
        assert mtu_of(lac, "l2tp-out1") == 1614
        assert "multilink MRRU 1614" in c.text() and "multilink MRRU 1614" in s.text()
        r = lac.run(["ping", "-c", "4", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", SERVER_IP], check=False)
        assert r.returncode == 0, r.stdout + logs()
        assert "1480 bytes from" in r.stdout  # 1472 + ICMP header back: whole 1500-octet packets both ways
    tshark = cap.frames

    assert tshark("lcp.opt.mrru == 1614"), "no MRRU in the LCP negotiation"
    mp = tshark("ppp.protocol == 0x003d")
    assert len(mp) >= 16, "the 1500-octet pings did not travel as MP fragments"  # 4 pings x 2 ways x >= 2
    assert tshark("mp.first == 1 && mp.last == 0") and tshark("mp.first == 0 && mp.last == 1")
    # Wireshark's own MP reassembly puts our fragments back together into the ICMP echoes, both ways
    assert len(tshark("mp && icmp.type == 8 && ip.len == 1500")) >= 4
    assert len(tshark("mp && icmp.type == 0 && ip.len == 1500")) >= 4
    # every frame on the wire fits the 1450-octet link: no IP fragmentation under the tunnel
    assert not tshark("ip.flags.mf == 1 || ip.frag_offset > 0")
    assert max(int(x) for x in tshark("l2tp", "udp.length")) <= 1450 + 8 + 12 + 4
    c.stop()
    s.stop()


def test_peer_without_mrru_falls_back_to_plain_ppp(netns, tmp_path):
    lns, lac = pair(netns)
    s = Daemon(lns, lns_config(secret=ADDRESSES), tmp_path, "lns")
    c = Daemon(lac, lac_config(mrru="disabled"), tmp_path, "lac")
    logs = logs_of(s, c)
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="client up", on_fail=logs)
    assert mtu_of(lac, "l2tp-out1") == 1450 and "multilink" not in s.text()
    r = lac.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1422", "-M", "do", SERVER_IP], check=False)
    assert r.returncode == 0, r.stdout + logs()
    c.stop()
    s.stop()


def iperf_json(out: str) -> dict:
    data = json.loads(out)
    assert "error" not in data, data.get("error")
    return data


def test_bundle_of_two_sessions_carries_iperf3_and_survives_a_link_going_down(netns, tmp_path):
    lns, lac = pair(netns)
    s = Daemon(lns, lns_config(secret=ADDRESSES), tmp_path, "lns")
    c = Daemon(lac, lac_config(names=("l2tp-out1", "l2tp-out2")), tmp_path, "lac")
    logs = logs_of(s, c)
    # the client that comes up first names the bundle's interface (the two dial at the same time)
    first = wait_for(lambda: next((n for n in ("l2tp-out1", "l2tp-out2") if link_addr(lac, n)), None),
                     what="client up", on_fail=logs)
    other = "l2tp-out2" if first == "l2tp-out1" else "l2tp-out1"
    wait_for(lambda: "link 2 of the bundle" in c.text() and "link 2 of the bundle" in s.text(),
             what="the second session joins the bundle", on_fail=logs)
    # one interface per end for the bundle: the second session brings none of its own
    assert lac.link(other) is None
    assert [x["ifname"] for x in lns.ip_json("link", "show") if x["ifname"].startswith("l2tp")] == ["l2tp-ex"]
    server = lns.popen(["iperf3", "-s", "-1", "-B", SERVER_IP])
    try:
        time.sleep(0.5)
        client = lac.popen(["iperf3", "-c", SERVER_IP, "-t", "6", "-J"], stdout=-1, stderr=-1, text=True)
        time.sleep(2.0)
        # the link that runs the bundle's NCPs and owns its interface goes down on both ends
        c.cli("interface", "l2tp-client", "disable", first, check=True)
        out, err = client.communicate(timeout=40)
        data = iperf_json(out)
    finally:
        server.kill()
        server.wait()
    text = logs()
    assert "the bundle goes on over" in c.text() and "the bundle goes on over" in s.text(), text
    assert "Traceback" not in text and "internal error" not in text, text
    received = data["end"]["sum_received"]["bytes"]
    assert received > 1_000_000, (received, text)
    # it kept flowing after the link went down: every second of the run carried data
    assert all(i["sum"]["bytes"] > 0 for i in data["intervals"]), [i["sum"]["bytes"] for i in data["intervals"]]
    # the bundle's interface is still up with its addresses, now on the second session
    assert link_addr(lac, first) == (CLIENT_IP, SERVER_IP)
    r = lac.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", SERVER_IP], check=False)
    assert r.returncode == 0, r.stdout + logs()
    active = s.cli("ppp", "active", "print", check=True).stdout
    assert active.count("ex") == 1, active  # one session left on the server
    c.stop()
    s.stop()


# --- BCP -------------------------------------------------------------------------------------------------


def bridged_site(netns, router, host_tag: str, host_ip: str):
    """A bridge br0 in ``router`` and a host namespace on it (veth), addressed ``host_ip``/24."""
    host = netns.new(host_tag)
    netns.veth(host, "eth0", router, "hv0")
    router.ip("link", "add", "br0", "type", "bridge")
    router.ip("link", "set", "hv0", "master", "br0")
    router.ip("link", "set", "br0", "up")
    host.ip("addr", "add", f"{host_ip}/24", "dev", "eth0")
    host.up()
    host.run(["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_broadcasts=0"])
    return host


BRIDGE_PROFILE = '\n[[ppp.profile]]\nname = "bridged"\nbridge = "br0"\n'


@pytest.mark.parametrize("variant", ["plain", "mrru", "mppe"])
def test_bcp_joins_two_lans_into_one_segment(netns, tmp_path, variant):
    """``plain``: BCP alone; ``mrru``: over a multilink bundle, full-size frames; ``mppe``: the bridged
    frames encrypted (use-encryption=required on both ends)."""
    mrru = "1614" if variant == "mrru" else "disabled"
    profile = BRIDGE_PROFILE + ('use-encryption = "required"\n' if variant == "mppe" else "")
    lns, lac = pair(netns)
    h1 = bridged_site(netns, lns, "h1", "10.9.0.1")
    h2 = bridged_site(netns, lac, "h2", "10.9.0.2")
    with capture(lns, tmp_path / "bcp.pcapng") as cap:
        s = Daemon(lns, lns_config(mrru=mrru, secret='profile = "bridged"', profile=profile), tmp_path, "lns")
        c = Daemon(lac, lac_config(mrru=mrru, profile='profile = "bridged"') + profile, tmp_path, "lac")
        logs = logs_of(s, c)

        def port_in_bridge(ns, ifname):
            link = ns.link(ifname)
            return link is not None and link.get("master") == "br0" and "UP" in link.get("flags", [])

        wait_for(lambda: port_in_bridge(lac, "l2tp-out1"), what="client port in br0", on_fail=logs)
        wait_for(lambda: port_in_bridge(lns, "l2tp-ex"), what="server port in br0", on_fail=logs)
        assert "BCP up" in s.text() and "BCP up" in c.text()
        assert link_addr(lac, "l2tp-out1") is None  # a bridge port: no IP of its own
        r = h2.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.0.1"], check=False)
        assert r.returncode == 0, r.stdout + logs()
        # ARP resolved across the tunnel: h2 knows h1's MAC
        h1_mac = h1.link("eth0")["address"]
        neigh = h2.ip_json("neigh", "show", "10.9.0.1", "dev", "eth0")
        assert neigh and neigh[0].get("lladdr") == h1_mac, neigh
        # a broadcast from one LAN reaches the other
        r = h1.run(["ping", "-b", "-c", "2", "-i", "0.3", "-W", "2", "10.9.0.255"], check=False)
        assert "from 10.9.0.2" in r.stdout, r.stdout + logs()
        if variant == "mrru":  # full-size Ethernet frames through the 1450 link
            r = h2.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", "10.9.0.1"], check=False)
            assert r.returncode == 0, r.stdout + logs()
    tshark = cap.frames

    # Wireshark decodes our BCP: the negotiation, and Ethernet frames (ARP, ICMP) as IEEE 802.3 bridged frames
    assert tshark("bcp_ncp.opt.mac_sup") and tshark("bcp_ncp && ppp.code == 2")
    assert not tshark("ipcp"), "a bridge port ran IPCP"
    if variant == "mppe":  # every bridged frame encrypted: nothing of the LANs in clear
        assert "encryption MPPE128" in s.text() and "encryption MPPE128" in c.text()
        assert len(tshark("ppp.protocol == 0x00fd")) >= 10
        assert not tshark("bcp_bpdu || arp || icmp")
    else:
        assert tshark("bcp_bpdu.mac_type == 1 && arp") and tshark("bcp_bpdu.mac_type == 1 && icmp")
        assert tshark("bcp_bpdu.mac_type == 1 && eth.dst == ff:ff:ff:ff:ff:ff && icmp")  # the broadcast ping
    # the port leaves the bridge when the session ends
    c.cli("interface", "l2tp-client", "disable", "l2tp-out1", check=True)
    wait_for(lambda: lns.link("l2tp-ex") is None, what="server port gone", on_fail=logs)
    assert lac.link("l2tp-out1") is None
    c.stop()
    s.stop()


def test_bridge_horizon_isolates_the_port_and_missing_bridge_is_a_clear_error(netns, tmp_path):
    lns, lac = pair(netns)
    bridged_site(netns, lac, "h2", "10.9.0.2")
    profile = '\n[[ppp.profile]]\nname = "bridged"\nbridge = "br9"\nbridge-horizon = 1\n'
    s = Daemon(lns, lns_config(mrru="disabled", secret='profile = "bridged"', profile=profile), tmp_path, "lns")
    c = Daemon(lac, lac_config(mrru="disabled", profile='profile = "bridged"') + BRIDGE_PROFILE, tmp_path, "lac")
    logs = logs_of(s, c)
    wait_for(lambda: "bridge br9 does not exist" in s.text(), what="the server's error", on_fail=logs)
    assert "Traceback" not in s.text()
    # create the bridge: the client redials and the port joins it, isolated (horizon)
    lns.ip("link", "add", "br9", "type", "bridge")
    lns.ip("link", "set", "br9", "up")

    def isolated():
        if lns.link("l2tp-ex") is None:
            return False
        info = lns.ip_json("-d", "link", "show", "l2tp-ex")
        return info and info[0].get("linkinfo", {}).get("info_slave_data", {}).get("isolated") is True

    wait_for(isolated, timeout=40, what="server port isolated in br9", on_fail=logs)
    c.stop()
    s.stop()
