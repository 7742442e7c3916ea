"""MPPE end to end (issue 5): two fastl2tpd in namespaces negotiate MS-CHAP + MPPE with the profile keys
``use-encryption``, ``mppe-key-lengths`` and ``mppe-stateful``; stateful mode survives 5% loss through CCP
resets; tshark sees CCP and PPP Compressed Datagrams (0x00fd) only, never ICMP in clear."""

from __future__ import annotations

import re

import pytest

from tests.e2e.daemons import LNS_IP, Daemon, capture, link_addr, pair, wait_for
from tests.e2e.test_daemon import lac_config
from tests.netns import netns_only

pytestmark = netns_only

SERVER_IP, CLIENT_IP = "10.0.100.1", "10.0.100.2"


def encryption_profile(extra: str = "") -> str:
    """Both ends use `default-encryption` (the server's default-profile and the client's profile)."""
    return f'\n[[ppp.profile]]\nname = "default-encryption"\nuse-encryption = "required"\n{extra}\n'


def lns_config(auth: str = "mschap2", profile: str = "") -> str:
    return f"""
[l2tp-server.server]
enabled = true
listen-address = "{LNS_IP}"
authentication = "{auth}"

[[ppp.secret]]
name = "ex"
password = "lkjrht"
local-address = "{SERVER_IP}"
remote-address = "{CLIENT_IP}"
profile = "default-encryption"
{encryption_profile(profile)}"""


def start(netns, tmp_path, *, auth="mschap2", server_profile="", client_profile=""):
    lns, lac = pair(netns)
    s = Daemon(lns, lns_config(auth, server_profile), tmp_path, "lns")
    c = Daemon(lac, lac_config() + encryption_profile(client_profile), tmp_path, "lac")
    return lns, lac, s, c


def logs_of(s: Daemon, c: Daemon):
    return lambda: s.text() + "\n---- lac ----\n" + c.text()


def wait_encrypted(lac, s: Daemon, c: Daemon, encoding: str) -> None:
    logs = logs_of(s, c)
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="client up", on_fail=logs)
    wait_for(lambda: f"encryption {encoding}\n" in s.text() and f"encryption {encoding}\n" in c.text(),
             what=f"{encoding} on both ends", on_fail=logs)


@pytest.mark.parametrize(
    ("auth", "server_profile", "client_profile", "encoding"),
    [
        ("mschap2", "", "", "MPPE128 stateless"),
        ("mschap2", 'mppe-stateful = "prefer"', 'mppe-stateful = "prefer"', "MPPE128 stateful"),
        ("mschap2", 'mppe-key-lengths = "40"', 'mppe-key-lengths = "40"', "MPPE40 stateless"),
        ("mschap1", "", "", "MPPE128 stateless"),
        # the strongest common length wins; a stateful preference on one end yields to stateless
        ("mschap2", 'mppe-key-lengths = "128,40"', 'mppe-key-lengths = "40"', "MPPE40 stateless"),
        ("mschap2", 'mppe-stateful = "prefer"', "", "MPPE128 stateless"),
        ("mschap2", 'mppe-stateful = "no"', 'mppe-stateful = "prefer"', "MPPE128 stateless"),
        ("mschap1", 'mppe-key-lengths = "40"\nmppe-stateful = "prefer"',
         'mppe-key-lengths = "40"\nmppe-stateful = "prefer"', "MPPE40 stateful"),
    ],
    ids=["mschap2-128-stateless", "mschap2-128-stateful", "mschap2-40", "mschap1-128", "strongest-common-40",
         "prefer-yields-to-stateless", "stateless-only-vs-prefer", "mschap1-40-stateful"],
)
def test_mppe_modes_ping(netns, tmp_path, auth, server_profile, client_profile, encoding):
    lns, lac, s, c = start(netns, tmp_path, auth=auth, server_profile=server_profile,
                           client_profile=client_profile)
    wait_encrypted(lac, s, c, encoding)
    assert f"user ex authenticated ({auth})" in s.text()
    r = lac.run(["ping", "-c", "5", "-i", "0.2", "-W", "2", SERVER_IP], check=False)
    assert r.returncode == 0, r.stdout + logs_of(s, c)()
    assert lns.link("l2tp-ex")["mtu"] == 1446  # 1450 less the 4 octets of MPPE
    c.stop()
    s.stop()


def _outages(ping_output: str, count: int) -> tuple[int, list[int]]:
    """Replies received and the runs of consecutive unanswered pings (their lengths, in order)."""
    answered = {int(x) for x in re.findall(r"icmp_seq=(\d+) ", ping_output)}
    runs: list[int] = []
    previous_missing = False
    for seq in range(1, count + 1):
        missing = seq not in answered
        if missing and previous_missing:
            runs[-1] += 1
        elif missing:
            runs.append(1)
        previous_missing = missing
    return len(answered), runs


def test_stateful_survives_5_percent_loss_through_ccp_resets(netns, tmp_path):
    lns, lac, s, c = start(netns, tmp_path, server_profile='mppe-stateful = "prefer"',
                           client_profile='mppe-stateful = "prefer"')
    wait_encrypted(lac, s, c, "MPPE128 stateful")
    logs = logs_of(s, c)
    # drop 5% of what reaches the LNS over L2TP (data and control alike)
    for cmd in (["nft", "add", "table", "inet", "fl2t"],
                ["nft", "add", "chain", "inet", "fl2t", "input", "{ type filter hook input priority 0; }"],
                ["nft", "add", "rule", "inet", "fl2t", "input", "iifname", "wan0", "udp", "dport", "1701",
                 "numgen", "random", "mod", "100", "<", "5", "counter", "drop"]):
        lns.run(cmd)
    r = lac.run(["ping", "-c", "200", "-i", "0.02", "-W", "1", SERVER_IP], check=False, timeout=60)
    rules = lns.run(["nft", "list", "chain", "inet", "fl2t", "input"]).stdout
    lns.run(["nft", "delete", "table", "inet", "fl2t"])
    received, runs = _outages(r.stdout, 200)
    detail = f"{received}/200 replies, outages {runs}\n{rules}"
    assert re.search(r"counter packets [1-9]", rules), detail  # the loss really happened
    assert "ccp reset requested" in s.text(), detail + logs()  # the LNS lost sync and asked the LAC to flush
    # A loss costs the lost packet and the next one (discarded: the RC4 stream is off), then the Reset-Request
    # makes the LAC flush and the LNS resynchronises: most outages are 2 pings. When the Reset-Request, its
    # Ack or the flushed packet is lost too, the LNS asks again every 0.25 s while it still discards
    # (CCP_RESET_RETRY_S): no outage lasts much longer than that (12 pings at 0.02 s).
    assert runs and sum(1 for n in runs if n <= 3) * 2 >= len(runs), detail
    assert max(runs) <= 30, detail
    assert received >= 140, detail  # 5% loss costs each lost packet and the next: ~10% expected; 70% floor
    # the session stayed up all along, and is in sync once the loss stops
    assert not re.search(r"link down|0x[0-9a-f]+ down:|encryption down", s.text() + c.text()), logs()
    # a loss just before the rule went leaves a resync in flight: give it one retry period, then all get through
    lac.run(["ping", "-c", "5", "-i", "0.1", "-W", "1", SERVER_IP], check=False)
    r = lac.run(["ping", "-c", "50", "-i", "0.02", "-W", "1", SERVER_IP], check=False)
    assert _outages(r.stdout, 50)[0] == 50, r.stdout + logs()
    assert link_addr(lac, "l2tp-out1") and link_addr(lns, "l2tp-ex")
    c.stop()
    s.stop()


@pytest.mark.parametrize(("stateful", "encoding"), [("allow", "MPPE128 stateless"), ("prefer", "MPPE128 stateful")])
def test_tshark_sees_ccp_and_compressed_datagrams_only(netns, tmp_path, stateful, encoding):
    lns, lac = pair(netns)
    pcap = tmp_path / "mppe.pcapng"
    with capture(lns, pcap) as cap:
        profile = f'mppe-stateful = "{stateful}"'
        s = Daemon(lns, lns_config("mschap2", profile), tmp_path, "lns")
        c = Daemon(lac, lac_config() + encryption_profile(profile), tmp_path, "lac")
        wait_encrypted(lac, s, c, encoding)
        r = lac.run(["ping", "-c", "5", "-i", "0.2", "-W", "2", "-p", "cafebabe", SERVER_IP], check=False)
        assert r.returncode == 0, r.stdout + logs_of(s, c)()
    tshark = cap.frames

    assert tshark("ccp"), "no CCP negotiation in the capture"
    acks = tshark("ccp && ppp.code == 2")  # Configure-Ack: the negotiation completed, in the mode expected
    assert len(acks) >= 2, "no CCP Configure-Ack both ways"
    h = "1" if encoding.endswith("stateless") else "0"
    assert tshark(f"ccp && ppp.code == 2 && ccp.opt.supported_bits.h == {h} && ccp.opt.supported_bits.s == 1") == acks
    assert len(tshark("ppp.protocol == 0x00fd")) >= 10  # the pings, both ways, as Compressed Datagrams
    assert not tshark("ip.proto == 1 || icmp"), "ICMP decoded in clear"
    assert not tshark("ppp.protocol == 0x0021"), "PPP IPv4 in clear"
    assert bytes.fromhex("cafebabecafebabe") not in pcap.read_bytes()
    c.stop()
    s.stop()
