"""TUN/TAP devices in real namespaces, and the mapping of RouterOS names to Linux interface names."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import subprocess
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastl2tp.errors import LocalUsageError
from fastl2tp.runtime.tun import (
    MAX_IFNAME,
    TunError,
    is_valid_ifname,
    linux_ifname,
    open_tun,
)

pytest.register_assert_rewrite("tests.netns")

from tests.netns import enter_netns, ip_json

# --- linux_ifname (no privileges needed) ---------------------------------------------------------


@pytest.mark.parametrize("name", ["l2tp-out1", "l2tp-out2", "l2tp-in1", "lan.10", "a_b-c"])
def test_clean_names_are_kept(name):
    assert linux_ifname(name) == name


@pytest.mark.parametrize("display,linux", [("<l2tp-ex>", "l2tp-ex"), ("<l2tp-user1>", "l2tp-user1"),
                                           ("<pptp-a>", "pptp-a")])
def test_dynamic_names_lose_their_angle_brackets(display, linux):
    assert linux_ifname(display) == linux


def test_long_names_are_cut_and_hashed():
    name = linux_ifname("<l2tp-averyveryverylongusername>")
    assert len(name.encode()) == MAX_IFNAME == 15
    assert name.startswith("l2tp-aver~")
    assert name == linux_ifname("<l2tp-averyveryverylongusername>")  # deterministic
    assert name != linux_ifname("<l2tp-averyveryverylongusernamf>")


@pytest.mark.parametrize("display", ["<l2tp-user@example.com>", "<l2tp-a b>", "<l2tp-a/b>", "<l2tp-a:b>",
                                     "<l2tp-jürgen>", "<l2tp-☃>", "<l2tp-~x>", "all", "default", ".", "..",
                                     "-x", "<>", "", "<l2tp-\t>", "l2tp out1"])
def test_odd_names_become_valid_ascii_names(display):
    name = linux_ifname(display)
    assert is_valid_ifname(name) and name.isascii() and "~" in name
    assert not name.startswith("-")
    assert all(c.isalnum() or c in "._-~" for c in name)


def test_sanitized_names_do_not_collide_with_each_other_or_with_clean_names():
    # "a@b" and "a_b" sanitize alike; the hash of the whole display name keeps them apart
    assert linux_ifname("<l2tp-a@b>") != linux_ifname("<l2tp-a_b>") == "l2tp-a_b"
    names = [linux_ifname(f"<l2tp-customer-number-{i}>") for i in range(300)]
    assert len(set(names)) == len(names)


def test_taken_names_are_avoided():
    # a static interface called l2tp-ex exists; the dynamic session of user ex must not take it
    taken = {"l2tp-ex"}
    name = linux_ifname("<l2tp-ex>", taken)
    assert name != "l2tp-ex" and is_valid_ifname(name)
    # even for hashed names, and for many names sharing a prefix
    used: set[str] = set()
    for i in range(2000):
        used.add(linux_ifname(f"<l2tp-{'x' * 20}{i}>", used))
    assert len(used) == 2000 and all(is_valid_ifname(n) for n in used)


@given(st.text(max_size=40))
def test_any_display_name_maps_to_a_valid_linux_name(display):
    name = linux_ifname(display)
    assert is_valid_ifname(name) and name.isascii()
    assert len(name.encode()) <= MAX_IFNAME
    assert name == linux_ifname(display)


@pytest.mark.parametrize("bad", ["", "a" * 16, "a/b", "a:b", "a b", ".", ".."])
def test_open_tun_rejects_invalid_names_before_touching_the_kernel(bad):
    with pytest.raises(LocalUsageError):
        open_tun(bad)


# --- real devices --------------------------------------------------------------------------------


def _open_and_describe(name: str, tap: bool = False) -> dict:
    dev = open_tun(name, tap=tap)
    try:
        return {
            "name": dev.name,
            "ifindex": dev.ifindex,
            "blocking": os.get_blocking(dev.fd),
            "cloexec": bool(fcntl.fcntl(dev.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
            "link": ip_json("-d", "link", "show", "dev", dev.name)[0],
        }
    finally:
        dev.close()
        dev.close()  # idempotent


@pytest.mark.netns
@pytest.mark.parametrize("tap", [False, True], ids=["tun", "tap"])
def test_open_tun_creates_a_nonblocking_device_in_the_namespace(netns, tap):
    ns = netns.new("tun")
    d = ns.call(_open_and_describe, "l2tp-out1", tap)
    assert d["name"] == "l2tp-out1"
    assert d["blocking"] is False and d["cloexec"] is True
    link = d["link"]
    assert link["ifindex"] == d["ifindex"]
    info = link["linkinfo"]["info_data"]
    assert info["type"] == ("tap" if tap else "tun")
    assert info["pi"] is False and info["vnet_hdr"] is False and info["persist"] is False
    if tap:
        assert link["link_type"] == "ether"
    else:
        assert link["link_type"] == "none" and {"POINTOPOINT", "NOARP"} <= set(link["flags"])
    # not persistent: the device went away with the descriptor (and with the child process)
    assert ns.link("l2tp-out1") is None



def _open_twice(name: str) -> tuple[int, str]:
    first = open_tun(name)
    try:
        open_tun(name)
    except TunError as e:
        return e.code, str(e)
    finally:
        first.close()
    return 0, ""


def _open_over_foreign_device(name: str) -> tuple[int, str]:
    subprocess.run(["ip", "link", "add", name, "type", "ifb"], check=True)
    try:
        open_tun(name)
    except TunError as e:
        return e.code, str(e)
    return 0, ""


@pytest.mark.netns
def test_open_tun_errors_name_the_device(netns):
    ns = netns.new("tunerr")
    code, text = ns.call(_open_twice, "l2tp-out1")
    assert code == errno.EBUSY and text.startswith("open_tun l2tp-out1:") and "EBUSY" in text
    code, text = ns.call(_open_over_foreign_device, "lan0")
    assert code == errno.EINVAL and text.startswith("open_tun lan0:")
    assert ns.link("lan0")["linkinfo"]["info_kind"] == "ifb"  # the foreign device is untouched


def _open_from_a_thread_in_other_namespace(other_path: str, name: str) -> dict:
    """The calling thread (not the process) decides the namespace of the device."""
    out: dict = {}

    def worker() -> None:
        enter_netns(other_path)
        dev = open_tun(name)
        out["links_there"] = [l["ifname"] for l in ip_json("link", "show")]
        out["ifindex"] = dev.ifindex
        dev.close()

    t = threading.Thread(target=worker)
    t.start()
    t.join(30)
    out["links_here"] = [l["ifname"] for l in ip_json("link", "show")]
    return out


@pytest.mark.netns
def test_open_tun_uses_the_calling_threads_namespace(netns):
    a, b = netns.new("a"), netns.new("b")
    out = a.call(_open_from_a_thread_in_other_namespace, b.path, "l2tp-in1")
    assert "l2tp-in1" in out["links_there"] and "l2tp-in1" not in out["links_here"]


# --- a packet through the device, both ways ------------------------------------------------------


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _echo_reply_for(request: bytes) -> bytes:
    ihl = (request[0] & 0x0F) * 4
    ip = bytearray(request[:ihl])
    ip[12:16], ip[16:20] = request[16:20], request[12:16]  # swap addresses
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", _checksum(bytes(ip)))
    icmp = bytearray(request[ihl:])
    icmp[0] = 0  # echo reply
    icmp[2:4] = b"\0\0"
    icmp[2:4] = struct.pack("!H", _checksum(bytes(icmp)))
    return bytes(ip + icmp)


def _ping_through_tun(local: str, peer: str) -> dict:
    dev = open_tun("l2tp-out1")
    subprocess.run(["ip", "addr", "add", local, "peer", f"{peer}/32", "dev", dev.name], check=True)
    subprocess.run(["ip", "link", "set", dev.name, "up"], check=True)
    ping = subprocess.Popen(["ping", "-c", "1", "-W", "10", "-n", peer], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        request = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not select.select([dev.fd], [], [], 0.5)[0]:
                continue
            pkt = os.read(dev.fd, 65535)
            # skip what the kernel itself sends on a fresh link (IPv6 router solicitations, MLD)
            if pkt[0] >> 4 == 4 and pkt[9] == 1 and pkt[(pkt[0] & 0x0F) * 4] == 8:
                request = pkt
                break
        if request:
            os.write(dev.fd, _echo_reply_for(request))
        output = ping.communicate(timeout=15)[0]
        return {"request": request, "ping_rc": ping.returncode, "ping_output": output}
    finally:
        if ping.poll() is None:
            ping.kill()
            ping.wait()
        dev.close()


@pytest.mark.netns
def test_a_ping_goes_into_the_tun_fd_and_a_reply_written_to_it_comes_back(netns):
    ns = netns.new("ping")
    r = ns.call(_ping_through_tun, "10.0.103.2", "10.0.103.1")
    pkt = r["request"]
    assert pkt, "no ICMP echo request was read from the TUN descriptor"
    ihl = (pkt[0] & 0x0F) * 4
    assert pkt[0] >> 4 == 4 and pkt[9] == 1  # IPv4, ICMP, no packet-information prefix
    assert pkt[12:16] == bytes([10, 0, 103, 2]) and pkt[16:20] == bytes([10, 0, 103, 1])
    assert struct.unpack("!H", pkt[2:4])[0] == len(pkt)
    assert _checksum(pkt[:ihl]) == 0 and _checksum(pkt[ihl:]) == 0
    assert pkt[ihl] == 8 and pkt[ihl + 1] == 0  # echo request, code 0
    # the reply written to the descriptor reached the stack and answered ping
    assert r["ping_rc"] == 0, r["ping_output"]
    assert "1 received" in r["ping_output"]
