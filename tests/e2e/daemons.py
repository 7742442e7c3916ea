"""Run fastl2tpd daemons inside test namespaces and wait for what they do."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.netns import NetNS

LNS_IP, LAC_IP = "192.0.2.1", "192.0.2.2"


class Daemon:
    def __init__(self, ns: NetNS, config_text: str, tmp: Path, name: str):
        self.ns = ns
        self.path = tmp / f"{name}.toml"
        self.path.write_text(config_text)
        self.log = tmp / f"{name}.log"
        self.socket = tmp / f"{name}.sock"
        self._logf = open(self.log, "w")
        self.p = ns.popen([sys.executable, "-m", "fastl2tp.daemon", "-c", str(self.path), "--log-level", "debug",
                           "--socket", str(self.socket)], stdout=self._logf, stderr=self._logf)

    def cli(self, *args: str, check: bool = False, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """``fastl2tp --socket ... ARGS`` against this daemon (stdout and stderr as text)."""
        r = subprocess.run([sys.executable, "-m", "fastl2tp", "--socket", str(self.socket), *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"fastl2tp {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def text(self) -> str:
        if not self._logf.closed:
            self._logf.flush()
        return self.log.read_text()

    def stop(self, timeout: float = 15.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=timeout)
        self._logf.close()
        return rc


def wait_for(pred, timeout: float = 20.0, what: str = "condition", on_fail=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    detail = on_fail() if on_fail else ""
    raise AssertionError(f"timed out waiting for {what}\n{detail}")


def link_addr(ns: NetNS, ifname: str) -> tuple[str, str] | None:
    """(local, peer) IPv4 of an interface, or None while it is not there."""
    link = ns.link(ifname)
    if link is None:
        return None
    for info in ns.ip_json("-4", "addr", "show", "dev", ifname):
        for a in info.get("addr_info", []):
            if a.get("family") == "inet":
                return a["local"], a.get("address", "")
    return None


def pair(netns) -> tuple[NetNS, NetNS]:
    """Two namespaces joined by a veth: LNS 192.0.2.1/24, LAC 192.0.2.2/24."""
    lns, lac = netns.new("lns"), netns.new("lac")
    netns.veth(lns, "wan0", lac, "wan0")
    lns.ip("addr", "add", f"{LNS_IP}/24", "dev", "wan0")
    lac.ip("addr", "add", f"{LAC_IP}/24", "dev", "wan0")
    lns.up()
    lac.up()
    return lns, lac


class Capture:
    """A tshark capture of the L2TP traffic on one interface of a namespace, and queries of it."""

    def __init__(self, ns: NetNS, path: Path):
        self.ns, self.path = ns, path

    def frames(self, display_filter: str, field: str = "frame.number") -> list[str]:
        """``field`` of every frame that matches ``display_filter`` (tshark -Y)."""
        out = self.ns.run(["tshark", "-r", str(self.path), "-Y", display_filter, "-T", "fields", "-e", field])
        return out.stdout.split()


@contextmanager
def capture(ns: NetNS, path: Path, ifname: str = "wan0") -> Iterator[Capture]:
    """Capture UDP port 1701 on ``ifname`` while the block runs (tshark has started when it begins,
    and has written what it saw when it ends)."""
    cap = ns.popen(["tshark", "-i", ifname, "-f", "udp port 1701", "-w", str(path), "-q"])
    try:
        wait_for(lambda: path.exists() and path.stat().st_size > 0, what="tshark capturing")
        time.sleep(0.5)
        yield Capture(ns, path)
        time.sleep(0.5)
    finally:
        cap.terminate()
        cap.wait(timeout=10)
