"""``fastl2tp demo``: the RouterOS manual's Router-to-Router example, live, on this machine.

Two network namespaces stand for the manual's routers, joined by a veth pair that stands for the
Internet:

    [HomeOffice]   ToInternet 192.168.80.1/24   LocalHomeOffice 10.150.2.254/24   (L2TP server)
    [RemoteOffice] ToInternet 192.168.81.1/24   LocalRemoteOffice 10.150.1.254/24 (L2TP client)

The server has the secret ``ex``/``lkjrht`` (10.0.103.1 ↔ 10.0.103.2) with
``routes="10.150.1.0/24 10.0.103.2 1"`` and the static interface ``l2tp-in1``; the client dials
192.168.80.1 as ``l2tp-out1``, and the demo adds the client-side route 10.150.2.0/24 via 10.0.103.1 as
the manual does. Then: the tunnel comes up, ping across it and across the LANs, and an iperf3 TCP run
through the tunnel when iperf3 is installed. Everything it created is removed at the end, also on
Ctrl-C or failure. It needs root (network namespaces).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOME_WAN, REMOTE_WAN = "192.168.80.1", "192.168.81.1"
HOME_LAN, REMOTE_LAN = "10.150.2.254", "10.150.1.254"
SERVER_CONFIG = f"""\
# HomeOffice: the manual's L2TP server
[l2tp-server.server]
enabled = true
authentication = "mschap2"
listen-address = "{HOME_WAN}"

[[l2tp-server.interface]]
name = "l2tp-in1"
user = "ex"

[[ppp.secret]]
name = "ex"
service = "l2tp"
password = "lkjrht"
local-address = "10.0.103.1"
remote-address = "10.0.103.2"
routes = "10.150.1.0/24 10.0.103.2 1"
"""
CLIENT_CONFIG = f"""\
# RemoteOffice: the manual's L2TP client
[[l2tp-client]]
name = "l2tp-out1"
connect-to = "{HOME_WAN}"
user = "ex"
password = "lkjrht"
disabled = false
"""


def _cli(sock: Path, *args: str) -> str:
    """``fastl2tp --socket SOCK ARGS``: what an operator would type, and what it prints."""
    r = subprocess.run([sys.executable, "-m", "fastl2tp", "--socket", str(sock), *args], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise DemoError(f"fastl2tp {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def _indent(text: str) -> str:
    return "\n".join("        " + line for line in text.rstrip("\n").splitlines())


class DemoError(Exception):
    pass


class Namespaces:
    """The demo's two routers; removed with everything in them on ``close()``."""

    def __init__(self) -> None:
        from pyroute2 import netns

        self.netns = netns
        tag = f"fl2demo-{os.getpid()}"
        self.home, self.remote = f"{tag}-home", f"{tag}-remote"
        self.created: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def create(self) -> None:
        from pyroute2 import IPRoute

        for name in (self.home, self.remote):
            self.netns.create(name)
            self.created.append(name)
        with IPRoute(netns=self.home) as ipr:
            ipr.link("add", ifname="ToInternet", kind="veth", peer={"ifname": "ToInternet", "net_ns_fd": self.remote})
        for name, wan, other, lan, lan_if in (
            (self.home, HOME_WAN, REMOTE_WAN, HOME_LAN, "LocalHomeOffice"),
            (self.remote, REMOTE_WAN, HOME_WAN, REMOTE_LAN, "LocalRemoteOfc"),  # IFNAMSIZ: 15 bytes
        ):
            with IPRoute(netns=name) as ipr:
                lo = ipr.link_lookup(ifname="lo")[0]
                ipr.link("set", index=lo, state="up")
                wan_if = ipr.link_lookup(ifname="ToInternet")[0]
                ipr.addr("add", index=wan_if, address=wan, prefixlen=24)
                ipr.link("set", index=wan_if, state="up")
                # the "Internet": the other office's network is reachable on this link
                ipr.route("add", dst=f"{other.rsplit('.', 1)[0]}.0/24", oif=wan_if, scope=253)
                lan_index = self._lan_interface(ipr, lan_if)
                ipr.addr("add", index=lan_index, address=lan, prefixlen=24)
                ipr.link("set", index=lan_index, state="up")

    @staticmethod
    def _lan_interface(ipr, name: str) -> int:
        # a dummy interface where the kernel has the module, else an empty bridge (same effect here)
        for kind in ("dummy", "bridge"):
            try:
                ipr.link("add", ifname=name, kind=kind)
                return ipr.link_lookup(ifname=name)[0]
            except Exception:  # noqa: BLE001 - try the next kind
                continue
        raise DemoError(f"cannot create the LAN interface {name}")

    def popen(self, ns: str, cmd: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(cmd, preexec_fn=lambda: self.netns.setns(ns, flags=0), **kw)
        self.procs.append(p)
        return p

    def run(self, ns: str, cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, preexec_fn=lambda: self.netns.setns(ns, flags=0), capture_output=True,
                              text=True, timeout=timeout)

    def link(self, ns: str, ifname: str) -> dict | None:
        from pyroute2 import IPRoute

        with IPRoute(netns=ns) as ipr:
            idx = ipr.link_lookup(ifname=ifname)
            if not idx:
                return None
            link = ipr.get_links(idx[0])[0]
            addrs = ipr.get_addr(index=idx[0], family=2)
            out = {"mtu": link.get("mtu"), "up": bool(link["flags"] & 1)}
            if addrs:
                out["local"] = addrs[0].get("local") or addrs[0].get("address")
                out["remote"] = addrs[0].get("address")
            return out

    def add_route(self, ns: str, dst: str, gateway: str) -> None:
        from pyroute2 import IPRoute

        with IPRoute(netns=ns) as ipr:
            ipr.route("add", dst=dst, gateway=gateway)

    def routes_via(self, ns: str, dst: str) -> bool:
        from pyroute2 import IPRoute

        with IPRoute(netns=ns) as ipr:
            return any(r.get_attr("RTA_DST") == dst.split("/")[0] for r in ipr.get_routes(family=2))

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for name in self.created:
            try:
                self.netns.remove(name)
            except OSError:
                pass
        self.created.clear()


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise DemoError(f"timed out waiting for {what}")


def _ping(ns: Namespaces, where: str, dst: str, src: str | None = None) -> str:
    cmd = ["ping", "-c", "3", "-i", "0.2", "-W", "2"] + (["-I", src] if src else []) + [dst]
    r = ns.run(where, cmd)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    if r.returncode != 0 or not m:
        raise DemoError(f"ping {dst} failed: {r.stdout.strip() or r.stderr.strip()}")
    rtt = re.search(r"= [\d.]+/([\d.]+)/", r.stdout)
    avg = f", avg {rtt.group(1)} ms" if rtt else ""
    return f"{m.group(2)}/{m.group(1)} replies{avg}"


def _iperf(ns: Namespaces, seconds: int) -> str | None:
    if shutil.which("iperf3") is None:
        return None
    server = ns.popen(ns.home, ["iperf3", "-s", "-1", "-B", "10.0.103.1"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    r = ns.run(ns.remote, ["iperf3", "-c", "10.0.103.1", "-t", str(seconds), "-J"], timeout=seconds + 30)
    server.wait(timeout=10)
    try:
        end = json.loads(r.stdout)["end"]
        bps = end["sum_received"]["bits_per_second"]
    except (ValueError, KeyError):
        raise DemoError(f"iperf3 failed: {r.stderr.strip() or r.stdout[-300:]}") from None
    return f"{bps / 1e9:.2f} Gbit/s TCP over {seconds} s"


def run_demo(iperf_seconds: int = 5, out=sys.stdout) -> int:
    if os.geteuid() != 0:
        print("fastl2tp demo needs root: it creates two network namespaces. Run it as root (e.g. sudo).",
              file=sys.stderr)
        return 1
    if shutil.which("ping") is None:
        print("fastl2tp demo needs ping (Debian: apt-get install iputils-ping).", file=sys.stderr)
        return 1

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    ns = Namespaces()
    tmp = Path(tempfile.mkdtemp(prefix="fastl2tp-demo-"))
    try:
        say("fastl2tp demo: the RouterOS manual's Router-to-Router example in two network namespaces")
        ns.create()
        say(f"  [HomeOffice]   ToInternet {HOME_WAN}/24, LocalHomeOffice {HOME_LAN}/24, L2TP server")
        say(f"  [RemoteOffice] ToInternet {REMOTE_WAN}/24, LocalRemoteOfc {REMOTE_LAN}/24, client to {HOME_WAN}")
        (tmp / "home.toml").write_text(SERVER_CONFIG)
        (tmp / "remote.toml").write_text(CLIENT_CONFIG)
        logs = {name: open(tmp / f"{name}.log", "w") for name in ("home", "remote")}
        daemon = [sys.executable, "-m", "fastl2tp.daemon", "-c"]
        ns.popen(ns.home, daemon + [str(tmp / "home.toml"), "--socket", str(tmp / "home.sock")],
                 stdout=logs["home"], stderr=logs["home"])
        time.sleep(0.3)
        ns.popen(ns.remote, daemon + [str(tmp / "remote.toml"), "--socket", str(tmp / "remote.sock")],
                 stdout=logs["remote"], stderr=logs["remote"])
        t0 = time.monotonic()
        _wait(lambda: (lambda i: i if i and i.get("local") else None)(ns.link(ns.remote, "l2tp-out1")),
              30, "the client interface")
        up_after = time.monotonic() - t0
        # the real CLI, through the client daemon's control socket
        monitor = _wait(lambda: (lambda out: out if "status: connected" in out else None)(
            _cli(tmp / "remote.sock", "interface", "l2tp-client", "monitor", "l2tp-out1", "once")), 10,
            "monitor to say connected")
        say(f"[RemoteOffice] interface l2tp-client monitor l2tp-out1   (up after {up_after:.2f} s)")
        say(_indent(monitor))
        server = _wait(lambda: (lambda i: i if i and i.get("local") else None)(ns.link(ns.home, "l2tp-in1")), 10,
                       "the server interface")
        say(f"[HomeOffice]   l2tp-in1 up: {server['local']} <-> {server['remote']} "
            f"(route 10.150.1.0/24 via 10.0.103.2 from the secret)")
        ns.add_route(ns.remote, "10.150.2.0/24", "10.0.103.1")
        say("[RemoteOffice] ip route add dst-address=10.150.2.0/24 gateway=10.0.103.1")
        say(f"[RemoteOffice] ping 10.0.103.1: {_ping(ns, ns.remote, '10.0.103.1')}")
        say(f"[RemoteOffice] ping {HOME_LAN} from {REMOTE_LAN}: {_ping(ns, ns.remote, HOME_LAN, REMOTE_LAN)}")
        say(f"[HomeOffice]   ping {REMOTE_LAN} from {HOME_LAN}: {_ping(ns, ns.home, REMOTE_LAN, HOME_LAN)}")
        result = _iperf(ns, iperf_seconds) if iperf_seconds > 0 else None
        if result is not None:
            say(f"[RemoteOffice] iperf3 to 10.0.103.1 through the tunnel: {result}")
        elif iperf_seconds > 0:
            say("iperf3 is not installed: throughput run skipped (Debian: apt-get install iperf3)")
        say("[HomeOffice]   interface l2tp-server print")
        say(_indent(_cli(tmp / "home.sock", "interface", "l2tp-server", "print")))
        say("[HomeOffice]   ppp active print stats")
        say(_indent(_cli(tmp / "home.sock", "ppp", "active", "print", "stats")))
        say("demo finished: stopping the daemons and removing the namespaces")
        return 0
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        for name in ("home", "remote"):
            log = tmp / f"{name}.log"
            if log.exists():
                print(f"--- {name} daemon log ---\n{log.read_text()[-4000:]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        ns.close()
        shutil.rmtree(tmp, ignore_errors=True)
