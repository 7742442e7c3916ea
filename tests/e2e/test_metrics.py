"""The Prometheus endpoint of a real daemon (issue 6): scraping /metrics during a session shows its
bytes growing, the session and tunnel by state, the login by method, and one set-up in the latency
histogram; when the session ends its series go and the totals keep its traffic."""

from __future__ import annotations

import sys

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.daemons import LNS_IP, Daemon, link_addr, pair, wait_for
from tests.netns import NetNS, netns_only

pytestmark = netns_only

PORT = 9117
PINGS = 5
ICMP_ECHO_IP_BYTES = 84  # 20 (IPv4) + 8 (ICMP) + 56 (ping's default data)

LNS = f"""
[l2tp-server.server]
enabled = true
authentication = "mschap2"
listen-address = "{LNS_IP}"

[[l2tp-server.interface]]
name = "l2tp-in1"
user = "ex"

[[ppp.secret]]
name = "ex"
password = "lkjrht"
local-address = "10.0.103.1"
remote-address = "10.0.103.2"

[metrics]
listen = "127.0.0.1:{PORT}"
"""

LAC = f"""
[[l2tp-client]]
name = "l2tp-out1"
connect-to = "{LNS_IP}"
user = "ex"
password = "lkjrht"
disabled = false

[metrics]
listen = "[::1]:{PORT}"
"""

SCRAPE = ("import sys, urllib.request; "
          "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")


def scrape(ns: NetNS, url: str = f"http://127.0.0.1:{PORT}/metrics") -> dict[tuple, float]:
    """Every sample of a scrape from inside ``ns``: (name, sorted labels) -> value."""
    out = ns.run([sys.executable, "-c", SCRAPE, url]).stdout
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(out) for s in family.samples}


def sample(m: dict[tuple, float], name: str, **labels: str) -> float | None:
    return m.get((name, tuple(sorted(labels.items()))))


SESSION = {"interface": "l2tp-in1", "user": "ex"}


def session_sample(m: dict[tuple, float], name: str) -> float | None:
    """The one series of ``name`` for the session of user ex (its tunnel and session ids are random)."""
    found = [v for (n, labels), v in m.items() if n == name and SESSION.items() <= dict(labels).items()]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_scraping_during_a_session_shows_its_bytes_growing(netns, tmp_path):
    lns, lac = pair(netns)
    server = Daemon(lns, LNS, tmp_path, "lns")
    client = Daemon(lac, LAC, tmp_path, "lac")
    logs = lambda: server.text() + "\n----\n" + client.text()  # noqa: E731
    wait_for(lambda: link_addr(lac, "l2tp-out1"), what="client interface", on_fail=logs)
    wait_for(lambda: link_addr(lns, "l2tp-in1"), what="server interface", on_fail=logs)
    # the interface has its addresses a moment before the session counts as connected
    before = wait_for(lambda: (m := scrape(lns)) and sample(m, "fastl2tp_sessions", status="connected") == 1 and m,
                      what="a connected session in the metrics", on_fail=logs)
    assert f"metrics on http://127.0.0.1:{PORT}/metrics" in server.text()

    assert sample(before, "fastl2tp_tunnels", state="established") == 1
    assert sample(before, "fastl2tp_sessions", status="connecting") == 0
    assert sample(before, "fastl2tp_authentications_total", method="mschap2", role="server", result="success") == 1
    assert sample(before, "fastl2tp_authentications_total", method="mschap2", role="server", result="failure") == 0
    assert sample(before, "fastl2tp_session_setup_seconds_count") == 1
    assert sample(before, "fastl2tp_session_setup_seconds_bucket", le="+Inf") == 1
    assert sample(before, "fastl2tp_session_setup_seconds_sum") > 0
    assert sample(before, "fastl2tp_control_retransmits_total") is not None
    assert sample(before, "fastl2tp_dataplane_drops_total", reason="no_session") is not None

    r = lac.run(["ping", "-c", str(PINGS), "-i", "0.2", "-W", "2", "10.0.103.1"], check=False)
    assert r.returncode == 0, r.stdout + logs()
    after = scrape(lns)

    grown = ICMP_ECHO_IP_BYTES * PINGS  # at least: the interface may carry other packets too (IPv6)
    for way in ("receive", "transmit"):
        b0 = session_sample(before, f"fastl2tp_session_{way}_bytes_total")
        b1 = session_sample(after, f"fastl2tp_session_{way}_bytes_total")
        p0 = session_sample(before, f"fastl2tp_session_{way}_packets_total")
        p1 = session_sample(after, f"fastl2tp_session_{way}_packets_total")
        assert None not in (b0, b1, p0, p1), (way, after)
        assert b1 - b0 >= grown and p1 - p0 >= PINGS, (way, b0, b1, p0, p1)
        assert sample(after, f"fastl2tp_{way}_bytes_total") >= b1
    assert sample(after, "fastl2tp_session_setup_seconds_count") == 1

    # the client's own endpoint (IPv6 loopback): its side of the login
    mine = scrape(lac, f"http://[::1]:{PORT}/metrics")
    assert sample(mine, "fastl2tp_authentications_total", method="mschap2", role="client", result="success") == 1
    assert sample(mine, "fastl2tp_sessions", status="connected") == 1

    # the session ends: its series go, the totals keep its traffic
    received = session_sample(after, "fastl2tp_session_receive_bytes_total")
    assert client.stop() == 0
    gone = wait_for(lambda: (m := scrape(lns)) and sample(m, "fastl2tp_sessions", status="connected") == 0 and m,
                    what="the session gone from the metrics", on_fail=logs)
    assert session_sample(gone, "fastl2tp_session_receive_bytes_total") is None
    assert sample(gone, "fastl2tp_receive_bytes_total") >= received
    assert server.stop() == 0
    assert "Traceback" not in server.log.read_text() + client.log.read_text()
