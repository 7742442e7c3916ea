"""The netlink adapter in real namespaces: addresses, routes, the default-route switch, leftovers.

Each scenario runs in a forked child inside a fresh namespace, on uvloop as the daemon does (one on
plain asyncio too). TUN devices live only as long as the child, so scenarios that use one read the
state with ``ip -j`` from inside before they return; state on persistent devices is read from here.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import subprocess
import sys
from ipaddress import IPv4Address, ip_network

import pytest
import uvloop

from fastl2tp.errors import FastL2tpError, LocalUsageError
from fastl2tp.runtime.netlink import (
    IFALIAS_FASTL2TP,
    RTPROT_FASTL2TP,
    Netlink,
    NetlinkOpError,
)

pytest.register_assert_rewrite("tests.netns")

from tests.netns import ROOT, ip_json

pytestmark = pytest.mark.netns

LOCAL, PEER = IPv4Address("10.0.103.2"), IPv4Address("10.0.103.1")


def on_uvloop(scenario, *args):
    """A picklable-result runner for ``NetNS.call``: ``scenario(nl, *args)`` on uvloop."""

    async def main():
        async with Netlink() as nl:
            return await scenario(nl, *args)

    return uvloop.run(main())


def proto(route: dict) -> str:
    return str(route.get("protocol", "boot"))  # ip -j leaves out the default, boot


def no_chain(e: BaseException) -> bool:
    """Nothing would print "During handling of the above exception..." for ``e``."""
    return e.__cause__ is None and (e.__context__ is None or e.__suppress_context__)


def test_use_before_open_is_a_usage_error():
    async def main():
        with pytest.raises(LocalUsageError):
            await Netlink().add_route("10.0.0.0/8", "192.0.2.1")

    asyncio.run(main())


# --- point-to-point address, MTU, up ------------------------------------------------------------


async def _ptp(nl: Netlink) -> dict:
    dev = await nl.create_tun("l2tp-out1")
    try:
        await nl.configure_ptp(dev.name, LOCAL, PEER, 1450)
        await nl.configure_ptp(dev.name, LOCAL, PEER, 1450)  # idempotent
        first = {
            "link": ip_json("-d", "link", "show", "dev", dev.name)[0],
            "addr": ip_json("-4", "addr", "show", "dev", dev.name)[0]["addr_info"],
            "routes": ip_json("-4", "route", "show", "dev", dev.name),
        }
        # IPCP came up again with other addresses: the old ones go
        await nl.configure_ptp(dev.name, IPv4Address("10.9.0.2"), IPv4Address("10.9.0.1"), 1400,
                               previous=(LOCAL, PEER))
        second = {
            "link": ip_json("link", "show", "dev", dev.name)[0],
            "addr": ip_json("-4", "addr", "show", "dev", dev.name)[0]["addr_info"],
        }
        return {"first": first, "second": second}
    finally:
        dev.close()


def test_configure_ptp_sets_address_peer_mtu_alias_and_up(netns):
    ns = netns.new("ptp")
    r = ns.call(on_uvloop, _ptp)
    link, addrs = r["first"]["link"], r["first"]["addr"]
    assert link["mtu"] == 1450 and "UP" in link["flags"]
    assert link["ifalias"] == IFALIAS_FASTL2TP
    assert [(a["local"], a["address"], a["prefixlen"]) for a in addrs] == [("10.0.103.2", "10.0.103.1", 32)]
    assert any(rt["dst"] == "10.0.103.1" and rt["protocol"] == "kernel" for rt in r["first"]["routes"])
    second = r["second"]
    assert second["link"]["mtu"] == 1400
    assert [(a["local"], a["address"]) for a in second["addr"]] == [("10.9.0.2", "10.9.0.1")]
    assert ns.link("l2tp-out1") is None  # the TUN went with the process that held it


async def _ipv6_ll(nl: Netlink) -> dict:
    dev = await nl.create_tun("l2tp-out1")
    try:
        await nl.configure_ptp(dev.name, LOCAL, PEER, 1450)
        await nl.add_ipv6_link_local(dev.name, bytes.fromhex("020000fffe000001"), 0x0200_00FF_FE00_0002)
        await nl.add_ipv6_link_local(dev.name, bytes.fromhex("020000fffe000001"), 0x0200_00FF_FE00_0002)
        return {
            "addr": ip_json("-6", "addr", "show", "dev", dev.name)[0]["addr_info"],
            "routes": ip_json("-6", "route", "show", "dev", dev.name),
        }
    finally:
        dev.close()


def test_ipv6_link_local_from_ipv6cp_identifiers(netns):
    ns = netns.new("ll6")
    r = ns.call(on_uvloop, _ipv6_ll)
    ours = [a for a in r["addr"] if a["local"] == "fe80::200:ff:fe00:1"]
    assert len(ours) == 1
    assert ours[0]["address"] == "fe80::200:ff:fe00:2" and ours[0]["prefixlen"] == 128
    assert any(rt["dst"] == "fe80::200:ff:fe00:2" for rt in r["routes"])


# --- routes ---------------------------------------------------------------------------------------


async def _add_routes(nl: Netlink) -> None:
    await nl.add_route(ip_network("10.150.1.0/24"), IPv4Address("192.0.2.1"), None, 5)
    await nl.add_route("10.150.1.0/24", "192.0.2.1", None, 5)  # idempotent
    await nl.add_route("10.150.2.0/24", None, "lan0", 7)
    await nl.add_route("10.150.3.0/24", "192.0.2.1", "lan0", 9, table=100)
    await nl.add_route("2001:db8:1::/48", None, "lan0", 0)
    await nl.add_route("2001:db8:1::/48", None, "lan0", 0)  # idempotent (the kernel stores metric 1024)


async def _del_routes(nl: Netlink) -> list[bool]:
    return [
        await nl.del_route("10.150.1.0/24", "192.0.2.1", None, 5),
        await nl.del_route("10.150.1.0/24", "192.0.2.1", None, 5),  # already gone
        await nl.del_route("10.150.2.0/24", None, "lan0", 7),
        await nl.del_route("10.150.3.0/24", "192.0.2.1", "lan0", 9, table=100),
        await nl.del_route("2001:db8:1::/48", None, "lan0", 0),
        await nl.del_route("10.150.4.0/24", None, "nosuch0", 1),  # interface gone: nothing to do
    ]


def test_routes_with_metric_are_added_marked_and_deleted(netns):
    ns = netns.new("routes")
    ns.add_dummy("lan0", "192.0.2.2/24")
    ns.call(on_uvloop, _add_routes)
    gw = ns.routes("10.150.1.0/24")
    assert [(r["gateway"], r["dev"], r["metric"], proto(r)) for r in gw] == [
        ("192.0.2.1", "lan0", 5, str(RTPROT_FASTL2TP))]
    dev = ns.routes("10.150.2.0/24")
    assert [(r.get("gateway"), r["dev"], r["metric"], r["scope"], proto(r)) for r in dev] == [
        (None, "lan0", 7, "link", "242")]
    t100 = ns.routes("10.150.3.0/24", table="100")
    assert [(r["gateway"], r["metric"], proto(r)) for r in t100] == [("192.0.2.1", 9, "242")]
    v6 = ns.routes("2001:db8:1::/48", family="-6")
    assert [(r["dev"], proto(r)) for r in v6] == [("lan0", "242")]

    assert ns.call(on_uvloop, _del_routes) == [True, False, True, True, True, False]
    for sel, fam, table in [("10.150.1.0/24", "-4", "main"), ("10.150.2.0/24", "-4", "main"),
                            ("10.150.3.0/24", "-4", "100"), ("2001:db8:1::/48", "-6", "main")]:
        assert ns.routes(sel, family=fam, table=table) == []


async def _conflict(nl: Netlink) -> dict:
    out = {}
    try:
        await nl.add_route("10.160.0.0/16", "192.0.2.1", None, 5)
    except NetlinkOpError as e:
        out["add"] = (e.code, str(e), no_chain(e))
    out["del"] = await nl.del_route("10.160.0.0/16", "192.0.2.1", None, 5)
    return out


def test_a_foreign_route_is_never_replaced_nor_deleted(netns):
    ns = netns.new("foreign")
    ns.add_dummy("lan0", "192.0.2.2/24")
    ns.ip("route", "add", "10.160.0.0/16", "via", "192.0.2.1", "metric", "5")  # proto boot, unmarked
    r = ns.call(on_uvloop, _conflict)
    code, text, clean = r["add"]
    assert code == errno.EEXIST and clean
    assert text == "add_route 10.160.0.0/16 via 192.0.2.1 metric 5: a route that is not ours is in the way (EEXIST)"
    assert r["del"] is False  # the kernel matches our protocol on delete: ESRCH
    assert [proto(x) for x in ns.routes("10.160.0.0/16")] == ["boot"]


# --- default route via the tunnel, host route to the server via the old gateway ----------------------


async def _default_switch(nl: Netlink) -> dict:
    dev = await nl.create_tun("l2tp-out1")
    try:
        await nl.configure_ptp(dev.name, LOCAL, PEER, 1450)
        out: dict = {"gw_before": await nl.get_default_gateway()}
        handle = await nl.add_default_route(dev.name, 1, server="198.51.100.7")
        out["handle"] = handle
        out["up"] = {
            "internet": ip_json("route", "get", "8.8.8.8")[0],
            "server": ip_json("route", "get", "198.51.100.7")[0],
            "host_route": ip_json("route", "show", "198.51.100.7/32"),
            "defaults": ip_json("route", "show", "default"),
            "gw_ignoring_ours": await nl.get_default_gateway(),
        }
        await nl.del_default_route(handle)
        await nl.del_default_route(handle)  # idempotent
        out["down"] = {
            "internet": ip_json("route", "get", "8.8.8.8")[0],
            "host_route": ip_json("route", "show", "198.51.100.7/32"),
            "defaults": ip_json("route", "show", "default"),
        }
        # a server on the local subnet needs no host route
        out["onlink"] = await nl.ensure_host_route_via_current_gateway("192.0.2.50")
        # two sessions to one server share the host route; it goes with the last one
        h1 = await nl.ensure_host_route_via_current_gateway("198.51.100.8")
        h2 = await nl.ensure_host_route_via_current_gateway("198.51.100.8")
        await nl.release_host_route(h1)
        out["shared_after_one"] = ip_json("route", "show", "198.51.100.8/32")
        await nl.release_host_route(h2)
        out["shared_after_two"] = ip_json("route", "show", "198.51.100.8/32")
        return out
    finally:
        dev.close()


def test_default_route_switch_keeps_the_server_via_the_old_gateway_and_restores(netns):
    ns = netns.new("defrt")
    ns.add_dummy("wan", "192.0.2.2/24")
    ns.ip("route", "add", "default", "via", "192.0.2.1", "metric", "100")
    r = ns.call(on_uvloop, _default_switch)

    before = r["gw_before"]
    assert (before.address, before.ifname, before.metric) == (IPv4Address("192.0.2.1"), "wan", 100)
    up = r["up"]
    assert up["internet"]["dev"] == "l2tp-out1" and "gateway" not in up["internet"]
    assert (up["server"]["gateway"], up["server"]["dev"]) == ("192.0.2.1", "wan")
    assert [(h["gateway"], h["dev"], proto(h)) for h in up["host_route"]] == [("192.0.2.1", "wan", "242")]
    assert sorted((d["dev"], d["metric"]) for d in up["defaults"]) == [("l2tp-out1", 1), ("wan", 100)]
    assert up["gw_ignoring_ours"] == before
    assert r["handle"].metric == 1 and r["handle"].host_route.gateway == IPv4Address("192.0.2.1")

    down = r["down"]
    assert (down["internet"]["gateway"], down["internet"]["dev"]) == ("192.0.2.1", "wan")
    assert down["host_route"] == []
    assert [(d["gateway"], d["metric"]) for d in down["defaults"]] == [("192.0.2.1", 100)]

    assert r["onlink"] is None
    assert len(r["shared_after_one"]) == 1 and r["shared_after_two"] == []
    assert [(d["gateway"], d["metric"]) for d in ns.routes("default")] == [("192.0.2.1", 100)]


# --- leftovers and links ----------------------------------------------------------------------------


async def _make_leftovers(nl: Netlink) -> None:
    await nl.mark_link("ours0")
    await nl.add_route("10.3.0.0/16", "192.0.2.1", None, 3)
    await nl.add_route("10.4.0.0/16", None, "ours0", 4)
    await nl.add_route("10.5.0.0/16", "192.0.2.1", None, 5, table=100)
    await nl.add_route("2001:db8:5::/48", None, "wan", 0)
    await nl.ensure_host_route_via_current_gateway("198.51.100.7")


async def _cleanup(nl: Netlink) -> tuple[list[str], list[str], bool]:
    first = await nl.cleanup_leftovers()
    second = await nl.cleanup_leftovers()
    return first.routes, first.links, bool(second)


def test_cleanup_leftovers_removes_only_what_is_marked(netns):
    ns = netns.new("leftovers")
    ns.add_dummy("wan", "192.0.2.2/24")
    ns.add_dummy("keep0")
    ns.add_dummy("ours0")
    ns.ip("route", "add", "default", "via", "192.0.2.1", "metric", "100")
    ns.ip("route", "add", "10.1.0.0/16", "via", "192.0.2.1")
    ns.ip("route", "add", "10.2.0.0/16", "via", "192.0.2.1", "proto", "243")
    ns.ip("route", "add", "10.6.0.0/16", "dev", "keep0", "proto", "static", "table", "100")
    ns.ip("-6", "route", "add", "2001:db8:6::/48", "dev", "wan")
    ns.call(on_uvloop, _make_leftovers)  # as if a daemon had crashed after setting these up

    routes, links, again = ns.call(on_uvloop, _cleanup)
    assert links == ["ours0"] and len(routes) == 5 and again is False
    assert ns.link("ours0") is None
    assert ns.link("keep0") is not None and ns.link("wan") is not None
    main4 = {(r["dst"], proto(r)) for r in ns.routes()}
    assert {("default", "boot"), ("10.1.0.0/16", "boot"), ("10.2.0.0/16", "243")} <= main4
    assert not any(p == "242" for _, p in main4)
    assert [r["dst"] for r in ns.routes(table="100")] == ["10.6.0.0/16"]
    v6 = {r["dst"] for r in ns.routes(family="-6")}
    assert "2001:db8:6::/48" in v6 and "2001:db8:5::/48" not in v6


async def _delete_links(nl: Netlink) -> dict:
    await nl.mark_link("ours0")
    out = {"ours": await nl.delete_link("ours0"), "again": await nl.delete_link("ours0")}
    try:
        await nl.delete_link("keep0")
    except NetlinkOpError as e:
        out["foreign"] = str(e)
    return out


def test_delete_link_deletes_ours_only(netns):
    ns = netns.new("dellink")
    ns.add_dummy("keep0")
    ns.add_dummy("ours0")
    r = ns.call(on_uvloop, _delete_links)
    assert r["ours"] is True and r["again"] is False
    assert r["foreign"] == "delete_link keep0: not created by fastl2tp; left alone"
    assert ns.link("ours0") is None and ns.link("keep0") is not None


# --- errors -------------------------------------------------------------------------------------------


async def _errors(nl: Netlink) -> list[tuple[str, int | None, str, bool]]:
    await nl.mark_link("small0")
    await nl.configure_ptp("small0", LOCAL, PEER, 576)  # IPv4 fine, but too small for IPv6
    attempts = [
        lambda: nl.configure_ptp("nosuch0", LOCAL, PEER, 1450),
        lambda: nl.add_route("10.5.0.0/16", "10.99.0.1", None, 1),  # gateway not on any link
        lambda: nl.add_ipv6_link_local("small0", 1, 2),
        lambda: nl.add_ipv6_link_local("nosuch0", 1, 2),
        lambda: nl.configure_ptp("small0", LOCAL, PEER, 10),  # refused before asking the kernel
    ]
    out = []
    for attempt in attempts:
        try:
            await attempt()
        except FastL2tpError as e:
            out.append((type(e).__name__, getattr(e, "code", None), str(e), no_chain(e)))
        else:
            out.append(("no error", None, "", False))
    return out


def test_errors_name_the_operation_and_interface_without_a_traceback(netns):
    ns = netns.new("errors")
    ns.add_dummy("small0")
    r = ns.call(on_uvloop, _errors)
    assert r[0] == ("NetlinkOpError", errno.ENODEV, "configure_ptp nosuch0: no such interface (ENODEV)", True)
    kind, code, text, clean = r[1]
    assert kind == "NetlinkOpError" and code == errno.ENETUNREACH and clean
    assert text.startswith("add_route 10.5.0.0/16 via 10.99.0.1 metric 1: ")
    assert r[2] == ("NetlinkOpError", errno.EINVAL,
                    "add_ipv6_link_local small0: no IPv6 on this link (disabled, or MTU below 1280) (EINVAL)", True)
    assert r[3][1] == errno.ENODEV and r[3][2].startswith("add_ipv6_link_local nosuch0: ")
    assert r[4] == ("LocalUsageError", None, "configure_ptp small0: MTU 10 outside 68..65535", True)


# --- many sessions at once -------------------------------------------------------------------------


async def _concurrent(nl: Netlink, n: int) -> list:
    devs = [await nl.create_tun(f"l2tp-c{i}") for i in range(n)]
    try:
        # as the daemon does when many sessions come up together: every setup is its own task, all
        # on the one netlink socket (two dumps in flight at once on one socket get EBUSY from the kernel)
        results = await asyncio.gather(*(nl.configure_ptp(d.name, IPv4Address("10.9.0.1"),
                                                          IPv4Address(f"10.9.1.{i + 1}"), 1450)
                                         for i, d in enumerate(devs)), return_exceptions=True)
        addrs = {li["ifname"]: [(a["local"], a["address"]) for a in li["addr_info"]]
                 for li in ip_json("-4", "addr", "show") if li["ifname"].startswith("l2tp-c")}
        return [[repr(r) for r in results if r is not None], addrs]
    finally:
        for d in devs:
            d.close()


def test_concurrent_operations_on_one_socket_all_succeed(netns):
    ns = netns.new("conc")
    n = 40
    errors, addrs = ns.call(on_uvloop, _concurrent, n)
    assert errors == []
    assert addrs == {f"l2tp-c{i}": [("10.9.0.1", f"10.9.1.{i + 1}")] for i in range(n)}


# --- the same adapter on plain asyncio ------------------------------------------------------------------


def _on_asyncio() -> list:
    async def main():
        async with Netlink() as nl:
            await nl.add_route("10.150.1.0/24", "192.0.2.1", None, 5)
            gw = await nl.get_default_gateway(socket.AF_INET)
            ok = await nl.del_route("10.150.1.0/24", "192.0.2.1", None, 5)
            return [gw, ok]

    return asyncio.run(main())


def test_runs_on_plain_asyncio_too(netns):
    ns = netns.new("aio")
    ns.add_dummy("lan0", "192.0.2.2/24")
    gw, ok = ns.call(_on_asyncio)
    assert gw is None and ok is True


# --- the namespace helper itself ---------------------------------------------------------------------

STALE_CHECK = """
import os, subprocess
mine, other = f"fl2t-{os.getpid()}-77-stale", f"fl2t-x{os.getpid()}-other"
for name in (mine, other):
    subprocess.run(["ip", "netns", "add", name], check=True)
from tests.netns import NetnsFactory
NetnsFactory().cleanup()
names = os.listdir("/run/netns")
print(mine in names, other in names, other)
"""


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                          timeout=60).stdout


def test_netns_helper_removes_stale_namespaces_of_its_own_pid_only(netns):
    netns.new()  # the fixture works; now a fresh process that "crashed earlier" with the same pid
    out = run_python(STALE_CHECK).split()
    try:
        assert out[:2] == ["False", "True"]  # its own stale namespace removed, a foreign one kept
    finally:
        subprocess.run(["ip", "netns", "del", out[2]], check=False, capture_output=True)
