"""Real network namespaces and TUN devices for the data-plane tests (root only).

``NetNS`` creates a namespace with ``ip netns add`` and moves the *calling thread* into it with setns(2)
(network namespaces are per thread; Python 3.11 has no os.setns, so ctypes). Sockets and TUN devices
created afterwards by this thread live in the namespace. Leaving restores the thread's namespace and
deletes the namespace, which also deletes every device still in it."""

from __future__ import annotations

import ctypes
import os
import select
import socket
import subprocess
from collections.abc import Iterator
from itertools import count
from typing import Self

import pytest

from fastl2tp.runtime.tun import open_tun as runtime_open_tun

CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4

_libc = ctypes.CDLL(None, use_errno=True)
_names = count()


def can_run() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if subprocess.run(["ip", "-V"], capture_output=True, check=False).returncode != 0:
        return "no iproute2"
    return None


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def ifname(tag: str = "") -> str:
    """A device name unique to this process: fl2dp<pid>x<n> (at most 15 characters)."""
    return f"fl2dp{os.getpid()}x{next(_names)}{tag}"[:15]


class NetNS:
    def __init__(self, prefix: str = "fl2dpt") -> None:
        self.name = f"{prefix}{os.getpid()}"
        self._home: int | None = None

    def __enter__(self) -> Self:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            self.ip("link", "set", "lo", "up")
            # no IPv6 on new devices: no router solicitations or MLD reports on the TUN devices
            self.exec("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._home is not None:
            _setns(self._home)
            os.close(self._home)
            self._home = None
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    def exec(self, *args: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, *args], check=True, capture_output=True)


def module_ns(prefix: str) -> Iterator[NetNS]:
    """The body of a module's ``ns`` fixture (``yield from netns.module_ns("mpdp")``): the tests are skipped
    where they cannot run (``can_run``), else they get a NetNS named <prefix><pid>."""
    why = can_run()
    if why is not None:
        pytest.skip(why)
    with NetNS(prefix) as ns:
        yield ns


def open_tun(name: str) -> int:
    """Create TUN device ``name`` in the thread's namespace (fastl2tp.runtime.tun.open_tun) and return its
    non-blocking fd; the device goes away when the fd is closed."""
    return runtime_open_tun(name).fd


class Tap:
    """AF_PACKET on one device: ``inject`` transmits a packet out of the device (so the TUN fd reads
    it), ``next_in`` returns the next packet the device received (what was written to the TUN fd).
    ``raw``: SOCK_RAW on a TAP device, whole Ethernet frames both ways."""

    def __init__(self, dev: str, *, raw: bool = False) -> None:
        self.dev = dev
        self.raw = raw
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW if raw else socket.SOCK_DGRAM,
                                  socket.htons(ETH_P_ALL))
        self.sock.bind((dev, ETH_P_ALL))
        self.sock.setblocking(False)

    def inject(self, packet: bytes) -> None:
        if self.raw:
            self.sock.send(packet)
            return
        proto = ETH_P_IPV6 if packet[0] >> 4 == 6 else ETH_P_IP
        self.sock.sendto(packet, (self.dev, proto))

    def next_in(self, timeout: float = 2.0) -> bytes:
        while True:
            if not select.select([self.sock], [], [], timeout)[0]:
                raise TimeoutError(f"nothing received on {self.dev}")
            data, addr = self.sock.recvfrom(65536)
            if addr[2] != PACKET_OUTGOING:
                return data

    def pending_in(self) -> list[bytes]:
        out = []
        while True:
            try:
                data, addr = self.sock.recvfrom(65536)
            except BlockingIOError:
                return out
            if addr[2] != PACKET_OUTGOING:
                out.append(data)

    def close(self) -> None:
        self.sock.close()


def wait_readable(fd: int, timeout: float = 2.0) -> None:
    if not select.select([fd], [], [], timeout)[0]:
        raise TimeoutError(f"fd {fd} not readable")
