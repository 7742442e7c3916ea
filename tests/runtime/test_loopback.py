"""Two real processes on loopback: an LNS and a LAC bring tunnels and sessions up and down over UDP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from fastl2tp.daemon import host_port


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A fastl2tpd subprocess whose JSON event lines are collected as they come."""

    def __init__(self, *args: str):
        self.p = subprocess.Popen([sys.executable, "-m", "fastl2tp.daemon", "--events-json", "--log-level",
                                   "warning", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: list[dict] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.events.append(json.loads(line))

    def wait_for(self, pred, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.events):
                return self.events
            time.sleep(0.02)
        raise AssertionError(f"timed out; events so far: {self.events}; stderr: {self.stderr_now()}")

    def stderr_now(self) -> str:
        return "" if self.p.poll() is None else self.p.stderr.read()

    def kinds(self) -> list[str]:
        return [e["event"] for e in self.events]

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=10)
        finally:
            self._t.join(timeout=2)

    def kill(self) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()


@pytest.fixture
def procs():
    started: list[Proc] = []

    def start(*args: str) -> Proc:
        p = Proc(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def count(kinds, name):
    return sum(1 for k in kinds if k == name)


def test_lac_and_lns_processes_bring_sessions_up_and_down(procs):
    port = free_udp_port()
    lns = procs("--listen", f"127.0.0.1:{port}")
    time.sleep(0.3)
    lac = procs("--connect", f"127.0.0.1:{port}", "--sessions", "3", "--hold", "0.3")
    assert lac.p.wait(timeout=20) == 0, lac.p.stderr.read()
    lac._t.join(timeout=2)
    assert lac.kinds() == ["TunnelUp"] + ["SessionUp"] * 3 + ["SessionDown"] * 3 + ["TunnelDown"]
    assert lac.events[0]["peer"] == ["127.0.0.1", port]  # the LNS answered from its listening port
    lns.wait_for(lambda ev: "TunnelDown" in [e["event"] for e in ev])
    k = lns.kinds()
    assert count(k, "TunnelUp") == 1 and count(k, "SessionUp") == 3 and count(k, "SessionDown") == 3
    down = lns.events[-1]
    assert down["event"] == "TunnelDown" and down["by-peer"] is True
    assert lns.stop() == 0


def test_per_tunnel_port_and_tunnel_secret(procs):
    port = free_udp_port()
    lns = procs("--listen", f"127.0.0.1:{port}", "--per-tunnel-port", "--secret", "xyzzy")
    time.sleep(0.3)
    lac = procs("--connect", f"127.0.0.1:{port}", "--secret", "xyzzy", "--hold", "0.2")
    assert lac.p.wait(timeout=20) == 0, lac.p.stderr.read()
    lac._t.join(timeout=2)
    up = lac.events[0]
    assert up["event"] == "TunnelUp" and up["peer"][1] != port  # the tunnel moved to its own port
    assert lns.stop() == 0


def test_wrong_tunnel_secret_is_refused(procs):
    port = free_udp_port()
    lns = procs("--listen", f"127.0.0.1:{port}", "--secret", "right")
    time.sleep(0.3)
    lac = procs("--connect", f"127.0.0.1:{port}", "--secret", "wrong", "--hold", "0.2")
    assert lac.p.wait(timeout=20) == 1
    lac._t.join(timeout=2)
    assert lac.kinds() == ["SessionDown", "TunnelDown"]
    assert lac.events[-1]["result"]["result"] == 4  # not authorized
    assert "TunnelUp" not in lns.kinds()
    assert lns.stop() == 0


def test_lns_shutdown_tells_the_lac_and_garbage_does_not_hurt(procs):
    port = free_udp_port()
    lns = procs("--listen", f"127.0.0.1:{port}")
    time.sleep(0.3)
    lac = procs("--connect", f"127.0.0.1:{port}", "--sessions", "2")
    lac.wait_for(lambda ev: sum(e["event"] == "SessionUp" for e in ev) == 2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for blob in (b"", b"\xc8\x02", b"\xc8\x02\x00\x0c" + os.urandom(8), os.urandom(300), b"\x00\x03abc"):
            s.sendto(blob, ("127.0.0.1", port))
    time.sleep(0.2)
    assert lns.p.poll() is None
    assert lns.stop() == 0  # SIGTERM: StopCCN to the LAC, exit 0
    assert lac.p.wait(timeout=20) == 0
    lac._t.join(timeout=2)
    down = lac.events[-1]
    assert down["event"] == "TunnelDown" and down["by-peer"] and down["result"]["result"] == 6  # shutting down


def test_bad_command_line_is_one_clear_error():
    r = subprocess.run([sys.executable, "-m", "fastl2tp.daemon", "--connect", "not-an-ip"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "expected IP or IP:PORT" in r.stderr


def test_host_port_parsing():
    assert host_port("10.0.0.1") == ("10.0.0.1", 1701)
    assert host_port("10.0.0.1:99") == ("10.0.0.1", 99)
    assert host_port("[::1]:5") == ("::1", 5)
    assert host_port("::1") == ("::1", 1701)
    for bad in ("x", "1.2.3.4:99999", "[::1"):
        with pytest.raises(ValueError):
            host_port(bad)
