"""Interfaces and routes: one adapter, ``Netlink``, around pyroute2's ``AsyncIPRoute``.

Everything fastl2tp changes in the kernel's network configuration goes through this module (no
``ip`` subprocesses), and everything it creates is **marked**, so that a daemon that starts after a
crash removes its own leftovers and nothing else (``cleanup_leftovers``):

- routes carry the rtnetlink protocol ``RTPROT_FASTL2TP = 242`` (0xF2). iproute2's
  ``/etc/iproute2/rt_protos`` and the kernel's ``RTPROT_*`` use 0-18, 42, 99 and 186-192, so 242 is
  free; ``ip route show proto 242`` lists our routes (add ``242 fastl2tp`` to
  ``/etc/iproute2/rt_protos.d/fastl2tp.conf`` to see the name). The kernel matches the protocol on
  delete, so a delete with our protocol can never remove somebody else's route;
- links (the TUN/TAP devices of sessions) carry the interface alias ``IFALIAS_FASTL2TP =
  "fastl2tp"`` (``ip link show`` prints ``alias fastl2tp``). ``create_tun`` and ``configure_ptp``
  set it. ``delete_link`` refuses to delete a link without it.

uvloop: pyroute2 0.9's ``AsyncIPRoute`` opens its netlink socket with
``loop.create_datagram_endpoint(sock=...)``, which uvloop refuses for ``AF_NETLINK`` ("cannot open a
UDP handle, invalid family 16"; pyroute2 issue #1335, uvloop issue #676, both open). ``Netlink``
therefore runs one ``AsyncIPRoute`` on a private stock asyncio loop in its own thread, and every
public coroutine hands its whole operation to that loop and awaits the result on the caller's loop
(uvloop or not). Netlink calls are rare (session up/down), so the thread hop costs nothing that
matters, and all pyroute2 state stays on one thread. The thread is started by the caller, so it
inherits the caller's network namespace.

Errors: pyroute2's ``NetlinkError.code`` is an errno. Adds are idempotent (EEXIST of the same thing
is success), deletes too (ENODEV, ESRCH, ENOENT, EADDRNOTAVAIL mean "already gone"). Anything else
becomes ``NetlinkOpError`` naming the operation and the interface or route, without a chained
traceback: these are expected conditions, logged as one line by the caller.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Any, Self, TypeVar

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import FastL2tpError, LocalUsageError
from .tun import TunDevice, open_tun

log = logging.getLogger(__name__)
# pyroute2 sets its logger to level 0 on import and then logs every netlink message at debug level:
# thousands of lines per session in a daemon's debug log, which says what we changed in its own words
logging.getLogger("pyroute2").setLevel(logging.INFO)

__all__ = [
    "IFALIAS_FASTL2TP",
    "RTPROT_FASTL2TP",
    "DefaultRoute",
    "Gateway",
    "HostRoute",
    "Leftovers",
    "Netlink",
    "NetlinkOpError",
]

RTPROT_FASTL2TP = 242  # rtnetlink protocol of every route we add (see the module docstring)
IFALIAS_FASTL2TP = "fastl2tp"  # alias of every link we create
MAIN_TABLE = 254  # RT_TABLE_MAIN
RT_SCOPE_LINK = 253
RT_SCOPE_NOWHERE = 255  # in a delete request: match a route of any scope (as iproute2 sends it)
RTN_UNICAST = 1
IFA_F_NODAD = 0x02
IP6_RT_PRIO_USER = 1024  # the kernel's metric for an IPv6 route added with metric 0

GONE = frozenset({errno.ENODEV, errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL})
# pyroute2 reports most kernel errors as NetlinkError(code) but a few (ENOBUFS, which the kernel also
# returns for "no IPv4 on a link with MTU < 68") as a bare OSError
NL_ERRORS = (NetlinkError, OSError)
MIN_MTU, MAX_MTU = 68, 65535  # RFC 791 minimum; the TUN maximum

T = TypeVar("T")
IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


class NetlinkOpError(FastL2tpError):
    """A netlink operation failed. ``op`` is our operation, ``target`` the interface or route,
    ``code`` the errno (None when we refused on our own, e.g. to delete a link that is not ours)."""

    def __init__(self, op: str, target: str, code: int | None, detail: str = ""):
        self.op = op
        self.target = target
        self.code = code
        if code is not None:
            text = f"{detail or os.strerror(code)} ({errno.errorcode.get(code, code)})"
        else:
            text = detail
        super().__init__(f"{op} {target}: {text}")


@dataclass(frozen=True, slots=True)
class Gateway:
    """The current default route: ``address`` is None for a device route (point-to-point)."""

    address: IPAddress | None
    ifname: str
    ifindex: int
    metric: int


@dataclass(frozen=True, slots=True)
class HostRoute:
    """A /32 (/128) route to the L2TP server via the gateway that was in use before."""

    dst: IPAddress
    gateway: IPAddress
    ifindex: int


@dataclass(frozen=True, slots=True)
class DefaultRoute:
    """What ``add_default_route`` installed; hand it back to ``del_default_route``."""

    ifname: str
    metric: int
    host_route: HostRoute | None


@dataclass(slots=True)
class Leftovers:
    """What ``cleanup_leftovers`` removed, for one log line."""

    routes: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.routes or self.links)


def _family(addr: IPAddress | IPNetwork) -> int:
    return socket.AF_INET if addr.version == 4 else socket.AF_INET6


def _code(e: BaseException) -> int:
    code = getattr(e, "code", None)
    if code is None:
        code = getattr(e, "errno", None)
    return code if isinstance(code, int) else errno.EIO


def _route_text(dst: IPNetwork, gateway: IPAddress | None, ifname: str | None, metric: int) -> str:
    parts = [str(dst)]
    if gateway is not None:
        parts.append(f"via {gateway}")
    if ifname is not None:
        parts.append(f"dev {ifname}")
    parts.append(f"metric {metric}")
    return " ".join(parts)


def _link_local(iid: bytes | int) -> IPv6Address:
    if isinstance(iid, (bytes, bytearray)):
        if len(iid) != 8:
            raise LocalUsageError(f"an IPv6CP interface identifier has 8 bytes, not {len(iid)}")
        iid = int.from_bytes(iid, "big")
    if not 0 < iid < 1 << 64:
        raise LocalUsageError(f"interface identifier {iid:#x} out of range")
    return IPv6Address((0xFE80 << 112) | iid)


class Netlink:
    """The one adapter that changes interfaces, addresses and routes. Use as ``async with
    Netlink() as nl:`` or call ``open()``/``close()``; every other method is a coroutine."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ipr: AsyncIPRoute | None = None
        self._lock: asyncio.Lock | None = None
        # host routes to L2TP servers we added, with how many default routes rely on each
        self._host_routes: dict[HostRoute, int] = {}

    # --- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> Self:
        if self._loop is not None:
            return self
        loop = asyncio.SelectorEventLoop()  # stock asyncio, whatever the policy says (see above)
        thread = threading.Thread(target=self._serve, args=(loop,), name="fastl2tp-netlink", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

        async def make() -> AsyncIPRoute:
            # groups=0: we only send requests; no multicast events pile up in pyroute2's queues
            return AsyncIPRoute(groups=0)

        try:
            self._ipr = await self._run(make())
        except BaseException:
            self._loop = self._thread = None
            loop.call_soon_threadsafe(loop.stop)
            raise
        return self

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def close(self) -> None:
        loop, thread, ipr = self._loop, self._thread, self._ipr
        if loop is None or thread is None:
            return
        if ipr is not None:

            async def shut() -> None:
                ipr.close()

            try:
                await self._run(shut())
            except Exception:  # closing must finish; a failure here is only logged
                log.exception("closing the netlink socket failed")
        self._ipr = None
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 5.0)

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the netlink thread's loop and wait for it on ours."""
        if self._loop is None:
            coro.close()
            raise LocalUsageError("Netlink used before open() or after close()")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _op(self, fn: Callable[[AsyncIPRoute], Awaitable[T]]) -> Awaitable[T]:
        """Run one whole operation on the netlink thread, one at a time: sessions come up together,
        each with its own task, and they share one socket, on which the kernel answers a second dump
        while one is in flight with EBUSY (and pyroute2 does not queue requests)."""

        async def body() -> T:
            if self._ipr is None:
                raise LocalUsageError("Netlink used before open() or after close()")
            if self._lock is None:
                self._lock = asyncio.Lock()  # created, and only ever used, on the netlink thread's loop
            async with self._lock:
                return await fn(self._ipr)

        return self._run(body())

    # --- links ---------------------------------------------------------------------------------

    async def create_tun(self, ifname: str, *, tap: bool = False) -> TunDevice:
        """Open a TUN/TAP device (in the calling thread's namespace) and mark it as ours."""
        dev = open_tun(ifname, tap=tap)
        try:
            await self.mark_link(dev.name)
        except BaseException:
            dev.close()
            raise
        return dev

    async def mark_link(self, ifname: str) -> None:
        """Set the ``fastl2tp`` alias on a link so that ``cleanup_leftovers`` knows it is ours."""

        async def fn(ipr: AsyncIPRoute) -> None:
            index = _index_of("mark_link", ifname)
            await _call("mark_link", ifname, ipr.link("set", index=index, ifalias=IFALIAS_FASTL2TP))

        await self._op(fn)

    async def delete_link(self, ifname: str) -> bool:
        """Delete one of our links. False if it does not exist; refuses links without our mark."""

        async def fn(ipr: AsyncIPRoute) -> bool:
            try:
                link = (await ipr.link("get", ifname=ifname))[0]
            except NL_ERRORS as e:
                if _code(e) in GONE:
                    return False
                raise NetlinkOpError("delete_link", ifname, _code(e)) from None
            if link.get("ifalias") != IFALIAS_FASTL2TP:
                raise NetlinkOpError("delete_link", ifname, None, "not created by fastl2tp; left alone")
            try:
                await ipr.link("del", index=link["index"])
            except NL_ERRORS as e:
                if _code(e) in GONE:
                    return False
                raise NetlinkOpError("delete_link", ifname, _code(e)) from None
            return True

        return await self._op(fn)

    async def add_bridge_port(self, ifname: str, bridge: str, mtu: int, *, isolated: bool = False) -> None:
        """``ip link set IF mtu MTU alias fastl2tp master BRIDGE up`` (+ ``bridge link set dev IF
        isolated on``): a BCP session's TAP device becomes a port of the profile's bridge. RouterOS's
        ``bridge-horizon`` maps onto the port's ``isolated`` flag: isolated ports do not forward to
        each other, only to the bridge's other ports. A missing bridge, or a link that is not a
        bridge, is a ``NetlinkOpError`` that says so."""
        if not MIN_MTU <= mtu <= MAX_MTU:
            raise LocalUsageError(f"add_bridge_port {ifname}: MTU {mtu} outside {MIN_MTU}..{MAX_MTU}")

        async def fn(ipr: AsyncIPRoute) -> None:
            op = "add_bridge_port"
            try:
                master = (await ipr.link("get", ifname=bridge))[0]
            except NL_ERRORS as e:
                if _code(e) in GONE:
                    raise NetlinkOpError(op, ifname, None, f"bridge {bridge} does not exist") from None
                raise NetlinkOpError(op, ifname, _code(e)) from None
            if master.get(("linkinfo", "kind")) != "bridge":
                raise NetlinkOpError(op, ifname, None, f"{bridge} is not a bridge")
            index = _index_of(op, ifname)
            await _call(op, ifname, ipr.link("set", index=index, mtu=int(mtu), ifalias=IFALIAS_FASTL2TP,
                                             master=master["index"], state="up"))
            if isolated:
                await _call(op, ifname, ipr.link("set", index=index, kind="bridge_slave", isolated=1))

        await self._op(fn)

    # --- addresses -----------------------------------------------------------------------------

    async def configure_ptp(self, ifname: str, local: IPv4Address, peer: IPv4Address, mtu: int, *,
                            previous: tuple[IPv4Address, IPv4Address] | None = None) -> None:
        """``ip link set IF mtu MTU alias fastl2tp up; ip addr add LOCAL peer PEER/32 dev IF``.

        ``previous`` is the (local, peer) pair an earlier IPCP round put on the link: it is removed
        when it differs. The kernel adds the route to PEER/32 itself (proto kernel). Two requests
        and no dump, whatever the number of sessions: this runs once per session that comes up.
        """
        local, peer = IPv4Address(local), IPv4Address(peer)
        if not MIN_MTU <= mtu <= MAX_MTU:
            raise LocalUsageError(f"configure_ptp {ifname}: MTU {mtu} outside {MIN_MTU}..{MAX_MTU}")
        old = None if previous is None else (IPv4Address(previous[0]), IPv4Address(previous[1]))

        async def fn(ipr: AsyncIPRoute) -> None:
            op = "configure_ptp"
            index = _index_of(op, ifname)
            await _call(op, ifname, ipr.link("set", index=index, mtu=int(mtu), ifalias=IFALIAS_FASTL2TP,
                                             state="up"))
            if old is not None and old != (local, peer):
                await _call(op, ifname, ipr.addr("del", index=index, family=socket.AF_INET, local=str(old[0]),
                                                 address=str(old[1]), prefixlen=32), ok=GONE)
            await _call(
                op,
                ifname,
                ipr.addr("add", index=index, family=socket.AF_INET, local=str(local), address=str(peer),
                         prefixlen=32),
                ok={errno.EEXIST},
            )

        await self._op(fn)

    async def add_ipv6_link_local(self, ifname: str, local_iid: bytes | int, peer_iid: bytes | int) -> None:
        """Add fe80::LOCAL_IID peer fe80::PEER_IID/128 (as pppd does after IPv6CP), without DAD.

        The kernel may also have generated a link-local address of its own when the link came up;
        it is harmless and left alone.
        """
        local, peer = _link_local(local_iid), _link_local(peer_iid)

        async def fn(ipr: AsyncIPRoute) -> None:
            op = "add_ipv6_link_local"
            index = _index_of(op, ifname)
            try:
                await ipr.addr("add", index=index, family=socket.AF_INET6, local=str(local), address=str(peer),
                               prefixlen=128, flags=IFA_F_NODAD)
            except NL_ERRORS as e:
                code = _code(e)
                if code == errno.EEXIST:
                    return
                hint = "no IPv6 on this link (disabled, or MTU below 1280)" if code == errno.EINVAL else ""
                raise NetlinkOpError(op, ifname, code, hint) from None

        await self._op(fn)

    # --- routes --------------------------------------------------------------------------------

    async def add_route(
        self,
        dst: IPNetwork | str,
        gateway: IPAddress | str | None = None,
        ifname: str | None = None,
        metric: int = 0,
        *,
        table: int = MAIN_TABLE,
    ) -> None:
        """``ip route add DST [via GW] [dev IF] metric M proto 242``.

        Adding the same route again is success. A route with the same destination and metric that
        is not ours raises ``NetlinkOpError`` (code EEXIST): we never replace other people's routes.
        """
        dst, gw = ip_network(dst), None if gateway is None else ip_address(gateway)
        text = _route_text(dst, gw, ifname, metric)
        await self._op(lambda ipr: _add_route(ipr, "add_route", text, dst, gw, ifname, metric, table))

    async def del_route(
        self,
        dst: IPNetwork | str,
        gateway: IPAddress | str | None = None,
        ifname: str | None = None,
        metric: int = 0,
        *,
        table: int = MAIN_TABLE,
    ) -> bool:
        """Delete one of our routes (proto 242 only). False if it was already gone."""
        dst, gw = ip_network(dst), None if gateway is None else ip_address(gateway)
        text = _route_text(dst, gw, ifname, metric)
        return await self._op(lambda ipr: _del_route(ipr, "del_route", text, dst, gw, ifname, metric, table))

    async def get_default_gateway(self, family: int = socket.AF_INET) -> Gateway | None:
        """The default route in use in the main table, ignoring our own (lowest metric wins)."""

        async def fn(ipr: AsyncIPRoute) -> Gateway | None:
            best = None
            for r in await _dump("get_default_gateway", "default", ipr.route("dump", family=family)):
                if (r["dst_len"] != 0 or r.get("table") != MAIN_TABLE or r["type"] != RTN_UNICAST
                        or r["proto"] == RTPROT_FASTL2TP or r.get("oif") is None):
                    continue
                metric = r.get("priority") or 0
                if best is None or metric < best[0]:
                    best = (metric, r)
            if best is None:
                return None
            metric, r = best
            gw = r.get("gateway")
            index = r.get("oif")
            link = (await _call("get_default_gateway", f"link {index}", ipr.link("get", index=index)))[0]
            return Gateway(None if gw is None else ip_address(gw), link.get("ifname"), index, metric)

        return await self._op(fn)

    async def ensure_host_route_via_current_gateway(self, server: IPAddress | str) -> HostRoute | None:
        """Pin the route to the L2TP server before a default route through the tunnel replaces it.

        Asks the kernel how ``server`` is reached now. Via a gateway: add ``SERVER/32 via GW dev OIF
        proto 242`` and return it (reference-counted: several sessions to one server share it).
        On-link, local, or already pinned by a host route that is not ours: nothing to do, None.
        """
        server = ip_address(server)

        async def fn(ipr: AsyncIPRoute) -> HostRoute | None:
            op = "ensure_host_route_via_current_gateway"
            try:
                r = (await ipr.route("get", dst=str(server)))[0]
            except NL_ERRORS as e:
                raise NetlinkOpError(op, str(server), _code(e), "no route to the L2TP server") from None
            gw, oif = r.get("gateway"), r.get("oif")
            if gw is None or oif is None:
                return None
            host = HostRoute(server, ip_address(gw), oif)
            if host in self._host_routes:
                self._host_routes[host] += 1
                return host
            dst = ip_network(server)
            text = _route_text(dst, host.gateway, None, 0)
            try:
                await _add_route(ipr, op, text, dst, host.gateway, None, 0, MAIN_TABLE, oif=oif)
            except NetlinkOpError as e:
                if _code(e) == errno.EEXIST:  # somebody's host route already keeps the server reachable
                    return None
                raise
            self._host_routes[host] = 1
            return host

        return await self._op(fn)

    async def release_host_route(self, host: HostRoute) -> None:
        """Drop one reference to a host route from ``ensure_host_route_via_current_gateway``."""

        async def fn(ipr: AsyncIPRoute) -> None:
            left = self._host_routes.get(host, 1) - 1
            if left > 0:
                self._host_routes[host] = left
                return
            self._host_routes.pop(host, None)
            dst = ip_network(host.dst)
            text = _route_text(dst, host.gateway, None, 0)
            await _del_route(ipr, "release_host_route", text, dst, host.gateway, None, 0, MAIN_TABLE,
                             oif=host.ifindex)

        await self._op(fn)

    async def add_default_route(self, ifname: str, distance: int, *, server: IPAddress | str | None = None
                                ) -> DefaultRoute:
        """RouterOS ``add-default-route=yes``: a default route through ``ifname`` with metric
        ``distance`` (RouterOS distance = Linux metric: the lowest wins; an existing default route
        with a lower metric stays preferred, as in RouterOS). With ``server``, first keep a host
        route to the L2TP server via the current gateway so the tunnel does not route into itself.
        Other default routes are never touched, so deleting ours restores the previous state."""
        host = None if server is None else await self.ensure_host_route_via_current_gateway(server)
        dst = IPv4Network("0.0.0.0/0")
        try:
            await self.add_route(dst, None, ifname, distance)
        except BaseException:
            if host is not None:
                await self.release_host_route(host)
            raise
        return DefaultRoute(ifname, distance, host)

    async def del_default_route(self, route: DefaultRoute) -> None:
        """Undo ``add_default_route`` (idempotent; the device may be gone already)."""
        await self.del_route(IPv4Network("0.0.0.0/0"), None, route.ifname, route.metric)
        if route.host_route is not None:
            await self.release_host_route(route.host_route)

    # --- crash recovery ------------------------------------------------------------------------

    async def cleanup_leftovers(self) -> Leftovers:
        """Remove every route with protocol 242 (all tables, IPv4 and IPv6) and every link with the
        alias ``fastl2tp``; touch nothing else. Run once at start, before any session exists: it
        also removes the marks of another fastl2tpd in the same namespace (one per namespace)."""

        async def fn(ipr: AsyncIPRoute) -> Leftovers:
            done = Leftovers()
            for family in (socket.AF_INET, socket.AF_INET6):
                ours = [r for r in await _dump("cleanup_leftovers", "routes", ipr.route("dump", family=family))
                        if r["proto"] == RTPROT_FASTL2TP]
                for r in ours:
                    text = f"{r.get('dst') or 'default'}/{r['dst_len']} table {r.get('table')}"
                    spec = {"family": family, "dst_len": r["dst_len"], "table": r.get("table"),
                            "proto": RTPROT_FASTL2TP, "type": r["type"], "tos": r["tos"],
                            "scope": r["scope"]}
                    for key in ("dst", "gateway", "oif", "priority"):
                        if r.get(key) is not None:
                            spec[key] = r.get(key)
                    try:
                        await ipr.route("del", **spec)
                    except NL_ERRORS as e:
                        if _code(e) not in GONE:
                            raise NetlinkOpError("cleanup_leftovers", f"route {text}", _code(e)) from None
                        continue
                    done.routes.append(text)
            links = [(l["index"], l.get("ifname")) for l in await _dump("cleanup_leftovers", "links", ipr.link("dump"))
                     if l.get("ifalias") == IFALIAS_FASTL2TP]
            for index, name in links:
                try:
                    await ipr.link("del", index=index)
                except NL_ERRORS as e:
                    if _code(e) not in GONE:
                        raise NetlinkOpError("cleanup_leftovers", f"link {name}", _code(e)) from None
                    continue
                done.links.append(name)
            if done:
                log.info("removed leftovers of an earlier run: routes %s, links %s", done.routes, done.links)
            return done

        return await self._op(fn)


# --- helpers running on the netlink thread -------------------------------------------------------


async def _call(op: str, target: str, request: Awaitable[T], ok: frozenset[int] | set[int] = frozenset()
                ) -> T | None:
    """Await a pyroute2 request; errnos in ``ok`` mean success (None), others a NetlinkOpError."""
    try:
        return await request
    except NL_ERRORS as e:
        if _code(e) in ok:
            return None
        raise NetlinkOpError(op, target, _code(e)) from None


async def _dump(op: str, target: str, request: Awaitable[Any]) -> list[Any]:
    """Read a whole pyroute2 dump; errors become a NetlinkOpError like those of ``_call``."""
    try:
        return [m async for m in await request]
    except NL_ERRORS as e:
        raise NetlinkOpError(op, target, _code(e)) from None


def _index_of(op: str, ifname: str) -> int:
    """The interface index by name: an ioctl, in the namespace of the netlink thread (= the daemon's)."""
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        raise NetlinkOpError(op, ifname, errno.ENODEV, "no such interface") from None


def _route_spec(dst: IPNetwork, gw: IPAddress | None, oif: int | None, metric: int, table: int
                ) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "family": _family(dst),
        "dst": str(dst.network_address),
        "dst_len": dst.prefixlen,
        "table": table,
        "proto": RTPROT_FASTL2TP,
        "type": RTN_UNICAST,
        "priority": metric,
    }
    if gw is not None:
        spec["gateway"] = str(gw)
    if oif is not None:
        spec["oif"] = oif
    if gw is None and dst.version == 4:
        spec["scope"] = RT_SCOPE_LINK  # a device route, as `ip route add ... dev X` makes it
    return spec


async def _add_route(ipr: AsyncIPRoute, op: str, text: str, dst: IPNetwork, gw: IPAddress | None,
                     ifname: str | None, metric: int, table: int, *, oif: int | None = None) -> None:
    if gw is None and ifname is None and oif is None:
        raise LocalUsageError(f"{op} {text}: needs a gateway or an interface")
    if ifname is not None:
        oif = _index_of(op, ifname)
    spec = _route_spec(dst, gw, oif, metric, table)
    try:
        await ipr.route("add", **spec)
        return
    except NL_ERRORS as e:
        if _code(e) != errno.EEXIST:
            raise NetlinkOpError(op, text, _code(e)) from None
    # EEXIST: success if the route in the kernel is this very route of ours
    want_metric = metric or (IP6_RT_PRIO_USER if dst.version == 6 else 0)
    for r in await _dump(op, text, ipr.route("dump", family=spec["family"])):
        if (r["dst_len"] == dst.prefixlen and r.get("table") == table
                and (r.get("dst") or str(dst.network_address)) == str(dst.network_address)
                and (r.get("priority") or 0) == want_metric and r["proto"] == RTPROT_FASTL2TP
                and (gw is None or r.get("gateway") == str(gw)) and (oif is None or r.get("oif") == oif)):
            return
    raise NetlinkOpError(op, text, errno.EEXIST, "a route that is not ours is in the way")


async def _del_route(ipr: AsyncIPRoute, op: str, text: str, dst: IPNetwork, gw: IPAddress | None,
                     ifname: str | None, metric: int, table: int, *, oif: int | None = None) -> bool:
    if ifname is not None:
        try:
            oif = (await ipr.link("get", ifname=ifname))[0]["index"]
        except NL_ERRORS as e:
            if _code(e) in GONE:  # the interface is gone, and its routes with it
                return False
            raise NetlinkOpError(op, text, _code(e)) from None
    spec = _route_spec(dst, gw, oif, metric, table)
    spec["scope"] = RT_SCOPE_NOWHERE
    try:
        await ipr.route("del", **spec)
    except NL_ERRORS as e:
        if _code(e) in GONE:
            return False
        raise NetlinkOpError(op, text, _code(e)) from None
    return True
