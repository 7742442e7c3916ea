"""Real network namespaces for tests (``@pytest.mark.netns``): create, populate, run code inside, clean up.

Use::

    # the ``netns`` fixture comes with the root conftest.py (pytest_plugins = ["tests.netns"])
    pytestmark = pytest.mark.netns    # the fixture skips when not root / no ip(8)

    def test_something(netns):
        a, b = netns.new("lns"), netns.new("lac")
        netns.veth(a, "v0", b, "v0")
        a.ip("addr", "add", "10.0.0.1/24", "dev", "v0")
        result = a.call(some_function, arg)       # runs in a forked child inside namespace a
        assert a.ip_json("route", "show")[0]["dst"] == "default"

Names: every namespace is ``fl2t-<pid>-<n>`` (``NetnsFactory.PREFIX``), unique per run. The first
use removes stale namespaces with *this* pid's prefix (a crashed earlier process that had our pid);
no other name is ever touched.

Cleanup is guaranteed: the ``netns`` fixture's finalizer kills the processes the test started here
(by pid), then deletes its namespaces, which takes their veth/dummy/TUN devices with them. An
``atexit`` hook does the same for anything a finalizer did not reach, and SIGTERM is turned into
KeyboardInterrupt (only if nobody installed a handler), so pytest still runs the finalizers.

Setup and assertions use ``ip`` and ``ip -j`` (iproute2): an oracle independent of the pyroute2 code
under test. The kernel here may lack the ``dummy`` module, so ``add_dummy`` falls back to ``ifb``,
which behaves the same for tests (up, carrier, NOARP, swallows what it transmits).
"""

from __future__ import annotations

import atexit
import ctypes
import itertools
import json
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000

NETNS_POSSIBLE = os.geteuid() == 0 and shutil.which("ip") is not None and os.path.exists("/dev/net/tun")
SKIP_REASON = "needs root, iproute2 and /dev/net/tun"
requires_netns = pytest.mark.skipif(not NETNS_POSSIBLE, reason=SKIP_REASON)
netns_only = [pytest.mark.netns, requires_netns]  # for a module's ``pytestmark``


def run(cmd: Sequence[str], *, check: bool = True, timeout: float = 30.0, **kwargs: Any
        ) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; a failure raises with the command's stderr."""
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {p.returncode}: {p.stderr.strip()}")
    return p


def ip_json(*args: str, ns: str | None = None) -> Any:
    """``ip -j ARGS`` (in namespace ``ns``, or in the caller's own) parsed; [] for empty output."""
    cmd = ["ip", "-j"] + (["-n", ns] if ns else []) + list(args)
    out = run(cmd).stdout.strip()
    return json.loads(out) if out else []


def enter_netns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class ChildError(AssertionError):
    """An exception in a child run with ``NetNS.call``, with the child's traceback in the text."""


class NetNS:
    """One named network namespace owned by a ``NetnsFactory``."""

    def __init__(self, factory: NetnsFactory, name: str):
        self.factory = factory
        self.name = name
        self.path = os.path.join(NETNS_DIR, name)

    def __repr__(self) -> str:
        return f"NetNS({self.name!r})"

    # --- iproute2 ------------------------------------------------------------------------------

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(["ip", "-n", self.name, *args], check=check)

    def ip_json(self, *args: str) -> Any:
        return ip_json(*args, ns=self.name)

    def link(self, ifname: str) -> dict | None:
        """``ip -j -d link show IF`` (details: alias, kind) or None if there is no such link."""
        p = run(["ip", "-j", "-d", "-n", self.name, "link", "show", "dev", ifname], check=False)
        return json.loads(p.stdout)[0] if p.returncode == 0 and p.stdout.strip() else None

    def routes(self, *selector: str, family: str = "-4", table: str = "main") -> list[dict]:
        return self.ip_json(family, "route", "show", "table", table, *selector)

    def add_dummy(self, ifname: str, *cidrs: str, up: bool = True) -> None:
        """A dummy interface (or an ``ifb``, which behaves alike, where ``dummy`` is not built)."""
        if self.ip("link", "add", ifname, "type", "dummy", check=False).returncode != 0:
            self.ip("link", "add", ifname, "type", "ifb")
        for cidr in cidrs:
            self.ip("addr", "add", cidr, "dev", ifname)
        if up:
            self.ip("link", "set", ifname, "up")

    def up(self, ifname: str = "lo") -> None:
        self.ip("link", "set", ifname, "up")

    # --- running things inside -----------------------------------------------------------------

    def exec_cmd(self, cmd: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, cmd: Sequence[str], *, check: bool = True, timeout: float = 30.0, **kwargs: Any
            ) -> subprocess.CompletedProcess:
        """Run a command inside (``ip netns exec``, which also mounts this namespace's /sys)."""
        return run(self.exec_cmd(cmd), check=check, timeout=timeout, **kwargs)

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start a process inside; it is killed (by pid) at cleanup if still running."""
        p = subprocess.Popen(self.exec_cmd(cmd), **kwargs)
        self.factory._procs.append(p)
        return p

    def python(self, code: str, *, timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Python snippet inside with this interpreter and the repository on the path."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        return self.run([sys.executable, "-c", code], timeout=timeout, check=check, env=env)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 60.0, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in a forked child that has entered this namespace and return
        its (picklable) result. An exception in the child is raised here as ``ChildError`` with the
        child's traceback. The child is killed if it exceeds ``timeout``."""
        return self.factory._fork_call(self, fn, args, kwargs, timeout)


class NetnsFactory:
    """Creates namespaces and veth pairs for one test and removes all of them at ``cleanup()``."""

    PREFIX = f"fl2t-{os.getpid()}-"
    _counter: ClassVar[Iterator[int]] = itertools.count(1)
    _live: ClassVar[set[str]] = set()  # every namespace of this process not yet deleted (for atexit)
    _guarded: ClassVar[bool] = False

    def __init__(self) -> None:
        self._mine: list[NetNS] = []
        self._procs: list[subprocess.Popen] = []
        self._children: list[int] = []
        self._install_guards()

    @classmethod
    def _install_guards(cls) -> None:
        if cls._guarded:
            return
        cls._guarded = True
        remove_stale_namespaces()
        atexit.register(cls._remove_live)
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
        except ValueError:  # not the main thread
            pass

    @classmethod
    def _remove_live(cls) -> None:
        for name in sorted(cls._live):
            _delete_netns(name)
        cls._live.clear()

    def new(self, tag: str = "") -> NetNS:
        """A fresh namespace ``fl2t-<pid>-<n>[-tag]`` with ``lo`` up."""
        name = f"{self.PREFIX}{next(self._counter)}" + (f"-{tag}" if tag else "")
        run(["ip", "netns", "add", name])
        self._live.add(name)
        ns = NetNS(self, name)
        self._mine.append(ns)
        ns.up("lo")
        return ns

    def veth(self, a: NetNS, a_if: str, b: NetNS, b_if: str, *, up: bool = True) -> None:
        """A veth pair with ``a_if`` in ``a`` and ``b_if`` in ``b`` (created inside ``a``, so no name
        ever appears in the caller's namespace)."""
        a.ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name)
        if up:
            a.up(a_if)
            b.up(b_if)

    def _fork_call(self, ns: NetNS, fn: Callable[..., Any], args: tuple, kwargs: dict, timeout: float) -> Any:
        rfd, wfd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            status = 0
            try:
                os.close(rfd)
                try:
                    enter_netns(ns.path)
                    payload = ("ok", fn(*args, **kwargs))
                except BaseException as e:  # noqa: BLE001 - everything goes back to the parent
                    payload = ("err", f"{type(e).__name__}: {e}", traceback.format_exc())
                try:
                    data = pickle.dumps(payload)
                except Exception as e:  # noqa: BLE001
                    data = pickle.dumps(("err", f"unpicklable result: {e!r}", ""))
                with os.fdopen(wfd, "wb") as w:
                    w.write(data)
            except BaseException:  # noqa: BLE001
                status = 1
            finally:
                os._exit(status)
        os.close(wfd)
        self._children.append(pid)
        chunks = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChildError(f"{fn!r} in {ns.name} timed out after {timeout}s")
                ready, _, _ = select.select([rfd], [], [], left)
                if ready:
                    chunk = os.read(rfd, 1 << 16)
                    if not chunk:
                        break
                    chunks.append(chunk)
        finally:
            os.close(rfd)
            self._reap(pid)
        if not chunks:
            raise ChildError(f"{fn!r} in {ns.name}: the child died without an answer")
        payload = pickle.loads(b"".join(chunks))
        if payload[0] == "ok":
            return payload[1]
        raise ChildError(f"in {ns.name}: {payload[1]}\n--- child traceback ---\n{payload[2]}")

    def _reap(self, pid: int) -> None:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        if pid in self._children:
            self._children.remove(pid)

    def cleanup(self) -> None:
        """Kill what we started (by pid), then delete our namespaces. Safe to call twice."""
        for pid in list(self._children):
            self._reap(pid)
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self._procs.clear()
        for ns in reversed(self._mine):
            _delete_netns(ns.name)
            self._live.discard(ns.name)
        self._mine.clear()


def _delete_netns(name: str) -> None:
    if os.path.exists(os.path.join(NETNS_DIR, name)):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30, check=False)


def _sigterm_to_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def remove_stale_namespaces() -> list[str]:
    """Delete namespaces named with this process's prefix left by an earlier process with our pid."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    stale = [n for n in names if n.startswith(NetnsFactory.PREFIX) and n not in NetnsFactory._live]
    for name in stale:
        _delete_netns(name)
    return stale


@pytest.fixture
def netns():
    """A ``NetnsFactory`` for this test; everything it made is removed afterwards, pass or fail.
    Skips the test where namespaces cannot be made (not root, no iproute2)."""
    if not NETNS_POSSIBLE:
        pytest.skip(SKIP_REASON)
    factory = NetnsFactory()
    try:
        yield factory
    finally:
        factory.cleanup()
