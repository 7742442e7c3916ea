"""The running daemon: configuration → L2TP endpoint + one PPP link per session + data plane + interfaces.

``Node`` owns the I/O and wires the sans-IO machines together:

- the UDP socket is read by the data plane (``_dp.DataPlane.rx_udp``, recvmmsg bursts); data goes
  straight to the sessions' TUN devices, control messages and PPP control frames are punted back here;
- control messages go to the ``Endpoint`` (through ``ControlDriver``), PPP frames to the session's
  ``PppLink``; what the machines produce is sent (``DataPlane.send_ppp`` for PPP frames);
- an L2TP ``SessionUp`` starts a ``PppLink``; its ``AuthRequested`` is answered from the local secrets
  (RouterOS precedence, pools, only-one, caller-id); ``NetworkUp`` creates the TUN device, configures it
  through netlink and hands the fd to the data plane; ``LinkDown`` sends CDN; an L2TP ``SessionDown``
  stops the link. Every session's interface is removed when it goes down.
- clients (``[[l2tp-client]]``) dial, and redial with backoff after a failure or a loss.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from .. import config as cfg
from .._dp import DataPlane
from ..config import values as cfg_values
from ..control import events as ev
from ..control.endpoint import Endpoint, EndpointConfig, TunnelSecret
from ..control.transport import TransportConfig
from ..control.tunnel import Role as TunnelRole
from ..control.tunnel import TunnelConfig
from ..ctl.menus import session_id_text
from ..errors import DecodeError, FastL2tpError
from ..ppp.auth import AuthDecision, verify_locally
from ..ppp.auth.base import (
    ChapMd5Credentials,
    MppeKeyMaterial,
    MsChap1Credentials,
    MsChap2Credentials,
    PapCredentials,
)
from ..ppp.bcp import BcpConfig
from ..ppp.bundle import Bundle, BundleMismatch, Bundles, describe_endpoint
from ..ppp.ccp import CcpConfig, Encryption
from ..ppp.events import (
    AuthRequested,
    AuthResult,
    BridgeDown,
    BridgeUp,
    EncryptionDown,
    EncryptionRefused,
    EncryptionResetRequested,
    EncryptionUp,
    Ipv6Up,
    LinkDown,
    MultilinkUp,
    NetworkDown,
    NetworkUp,
    Role,
)
from ..ppp.ipcp import IpcpConfig
from ..ppp.lcp import LcpConfig
from ..ppp.link import ADMINISTRATIVE, LinkConfig, Phase, PppLink
from ..radius.packets import (
    AccessRequest,
    AccountingRequest,
    AcctStatusType,
    ChapPassword,
    MppeEncryptionTypes,
    MsChap1Response,
    MsChap2Response,
    Nas,
    PapPassword,
    TerminateCause,
)
from ..wire.avp import CDNResult, ErrorCode, ResultCode, StopCCNResult
from ..wire.ppp import decode_frame
from .driver import ControlDriver, open_udp
from .dynauth import DynAuthServer
from .metrics import MetricsServer, NodeCounters, interface_traffic, start_metrics
from .netlink import Netlink
from .radius import RadiusRuntime, RadiusUnavailable
from .tun import TunDevice, linux_ifname, open_tun

log = logging.getLogger(__name__)

REDIAL_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
TCP_IP_HEADERS = 40  # MSS = MTU - 20 (IPv4) - 20 (TCP)
CCP_RESET_RETRY_S = 0.25  # repeat a CCP Reset-Request this often while MPPE is still out of sync
MPPE_OVERHEAD = 4  # protocol 0x00FD + the MPPE header in front of the encrypted protocol and packet
BRIDGED_OVERHEAD = 2 + 14  # the bridged-frame header (RFC 3518 §4) and the Ethernet header
BUNDLE_TICK_S = 1.0  # multilink reassembly stall timeouts are checked this often


UDP_BUFFER_BYTES = 4 << 20  # socket buffers for the tunnel's UDP: bursts must not overflow them


def _grow_buffers(sock: socket.socket) -> None:
    """Large UDP socket buffers: a burst that overflows the receive buffer is loss, and in MPPE stateful
    mode every loss costs a CCP reset. As root the kernel's rmem_max/wmem_max do not cap us (…FORCE)."""
    for force, plain in ((33, socket.SO_RCVBUF), (32, socket.SO_SNDBUF)):  # SO_RCVBUFFORCE, SO_SNDBUFFORCE
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, UDP_BUFFER_BYTES)
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, plain, UDP_BUFFER_BYTES)
            except OSError as exc:
                log.debug("cannot grow the UDP socket buffer: %s", exc)


class SessionLog(logging.LoggerAdapter):
    """Log lines of one session, with its context in front: ``tunnel=7 session=12 user=ex: ...``, and
    the same as record attributes (``tunnel``, ``session``, ``user``) for structured handlers. The
    user is filled in once known (``set_user``). Never pass a password or key to it."""

    def __init__(self, logger: logging.Logger, tunnel_id: int, session_id: int) -> None:
        super().__init__(logger, {"tunnel": tunnel_id, "session": session_id, "user": ""})

    def set_user(self, user: str) -> None:
        self.extra["user"] = user  # type: ignore[index]

    def process(self, msg, kwargs):
        x = self.extra
        head = f"tunnel={x['tunnel']} session={x['session']}" + (f" user={x['user']}" if x["user"] else "")
        kwargs["extra"] = {**x, **kwargs.get("extra", {})}
        return f"{head.replace('%', '%%')}: {msg}", kwargs


@dataclass(eq=False)
class Session:
    """One L2TP session and its PPP link, as the runtime sees it."""

    tunnel_id: int
    session_id: int
    peer: tuple[str, int]
    link: PppLink
    log: SessionLog
    client: Client | None = None  # set for sessions we dialed
    user: str = ""
    calling_number: str = ""
    display_name: str = ""
    ifname: str = ""
    tun: TunDevice | None = None
    secret: cfg.Secret | None = None
    params: cfg.SessionParams | None = None
    leases: list[IPv4Address] = field(default_factory=list)
    local_address: IPv4Address | None = None
    remote_address: IPv4Address | None = None
    slot: int = -1  # the data plane's index of this session
    timer: asyncio.TimerHandle | None = None
    timer_at: float | None = None
    up_since: float | None = None
    up_since_monotonic: float = 0.0  # time.monotonic() at up, the data plane's clock
    timeouts: list[asyncio.TimerHandle] = field(default_factory=list)
    status: str = "connecting"
    use_encryption: Encryption = Encryption.NO
    encrypted: bool = False
    encoding: str = ""
    configured: bool = False  # the interface has its addresses
    attached: bool = False  # the data plane moves IP between the interface and the session
    mtu: int = 0  # the interface's: the link's, less MPPE's 4 octets while MPPE may be used
    mru: int = 0  # the largest packet the peer may send us
    link_mtu: int = 0
    mppe_refused: bool = False
    resync_timer: asyncio.TimerHandle | None = None
    closed: bool = False
    host_route: object | None = None
    default_route: object | None = None
    setup: asyncio.Task | None = None
    auth_task: asyncio.Task | None = None  # a RADIUS login in flight
    radius: object | None = None  # the Access-Accept (AccessResult) this session runs with
    final_stats: dict | None = None  # the data plane's counters, kept as the session is removed
    l2tp_up_at: float = 0.0  # loop time of the L2TP SessionUp: where the set-up latency starts
    bridged: bool = False  # a BCP bridge port: a TAP device in the profile's bridge, no IP of its own
    bundle: Bundle | None = None  # multilink: the bundle this link is in (its owner has the interface)
    acct_id: str = ""  # Acct-Session-Id once accounting started (a bundle's follows its interface)

    @property
    def key(self) -> tuple[int, int]:
        return (self.tunnel_id, self.session_id)


@dataclass(eq=False)
class Client:
    """One ``[[l2tp-client]]`` entry: dials, keeps its session, redials."""

    conf: cfg.L2tpClient
    status: str = "disabled"
    tunnel_id: int | None = None
    session: Session | None = None
    failures: int = 0
    redial: asyncio.TimerHandle | None = None
    last_reason: str = ""


class Node:
    def __init__(self, config: cfg.Config, netlink: Netlink, *, host_name: str | None = None,
                 loop: asyncio.AbstractEventLoop | None = None):
        self.config = config
        self.netlink = netlink
        self.loop = loop or asyncio.get_running_loop()
        self.host_name = host_name or socket.gethostname() or "fastl2tp"
        self.pools = cfg.IpPools.from_config(config)
        self.dp = DataPlane()
        self.sessions: dict[tuple[int, int], Session] = {}
        self.clients: list[Client] = [Client(c) for c in config.l2tp_client]
        self._client_tunnels: dict[int, Client] = {}
        self.driver: ControlDriver | None = None
        self.sock: socket.socket | None = None
        self._sock_index = -1
        # the server's own socket when the server was enabled while running (clients keep self.sock)
        self.server_sock: socket.socket | None = None
        self._server_sock_index = -1
        self._ifnames: set[str] = set()
        self.stopping = False
        self.radius: RadiusRuntime | None = None
        self.dynauth: DynAuthServer | None = None
        self.counters = NodeCounters()  # what the metrics cannot read from the state at scrape time
        self.metrics_server: MetricsServer | None = None
        self.bundles: Bundles[Session] = Bundles()
        # our multilink endpoint discriminator (RFC 1990 §5.1.3, class 1 "locally assigned"): new per run,
        # so that links of an earlier run never join a bundle of this one
        self.endpoint = b"\x01" + os.urandom(8)
        self._bundle_timer: asyncio.TimerHandle | None = None

    # --- start and stop ------------------------------------------------------------------------------

    def _endpoint_config(self) -> EndpointConfig:
        server = self.config.l2tp_server.server
        secrets = tuple(TunnelSecret(s.address, s.secret.encode()) for s in self.config.ppp.l2tp_secret)
        return EndpointConfig(
            tunnel=TunnelConfig(host_name=self.host_name.encode()[:64] or b"fastl2tp",
                                transport=TransportConfig(counters=self.counters.transport)),
            accept_tunnels=server.enabled,
            secrets=secrets,
        )

    async def start(self) -> None:
        leftovers = await self.netlink.cleanup_leftovers()
        if leftovers:
            log.info("removed leftovers of an earlier run: %s", leftovers)
        server = self.config.l2tp_server.server
        if server.enabled:
            self.sock = open_udp(str(server.listen_address), server.port)
        else:
            self.sock = open_udp("0.0.0.0", 0)
        _grow_buffers(self.sock)
        self._sock_index = self.dp.add_socket(self.sock.fileno())
        self.radius = RadiusRuntime(self.config, self.loop)
        self._accounting_on_off(AcctStatusType.ACCOUNTING_ON)
        self._dynauth_listen()
        endpoint = Endpoint(self._endpoint_config())
        self.driver = ControlDriver(endpoint, self.sock, self._on_l2tp_event, self.loop, read_socket=False)
        self.loop.add_reader(self.sock.fileno(), self._udp_readable, self._sock_index)
        where = "%s:%d" % self.driver.local_address
        log.info("L2TP %s on %s", "server listening" if server.enabled else "client socket", where)
        for c in self.clients:
            if c.conf.disabled:
                log.info("client %s is disabled (set disabled = false to dial)", c.conf.name)
            else:
                self._dial(c)
        listen = self.config.metrics.listen
        if listen is not None:
            self.metrics_server = await start_metrics(self, listen)
            log.info("metrics on http://%s/metrics", listen)

    async def stop(self) -> None:
        """StopCCN to every peer, every interface and route removed."""
        self.stopping = True
        for c in self.clients:
            if c.redial is not None:
                c.redial.cancel()
        for s in list(self.sessions.values()):
            s.link.close(ADMINISTRATIVE, self.now())
            self._pump(s)
        if self.driver is not None:
            self.driver.call(self.driver.endpoint.close_all)
            deadline = self.loop.time() + 3.0
            while (any(t.state.value == "closing" for t in self.driver.endpoint.tunnels.values())
                   and self.loop.time() < deadline):
                await asyncio.sleep(0.05)
        for s in list(self.sessions.values()):
            await self._teardown(s, "daemon stopping")
        if self.driver is not None:
            self.loop.remove_reader(self.sock.fileno())
            if self.server_sock is not None:
                self.loop.remove_reader(self.server_sock.fileno())
                self.server_sock.close()
                self.server_sock = None
            self.driver.close()
            self.driver = None
        if self.metrics_server is not None:
            await self.metrics_server.close()
            self.metrics_server = None
        if self.dynauth is not None:
            self.dynauth.close()
            self.dynauth = None
        if self.radius is not None:
            self._accounting_on_off(AcctStatusType.ACCOUNTING_OFF)
            deadline = self.loop.time() + 3.0  # the Stops and the Off get their chance, bounded
            while self.radius.client.pending and self.loop.time() < deadline:
                await asyncio.sleep(0.05)
            self.radius.close()
            self.radius = None

    def now(self) -> float:
        return self.loop.time()

    def reload(self, config: cfg.Config) -> None:
        """Apply a new configuration (SIGHUP) without dropping sessions the change does not touch:
        new secrets and profiles apply to the next login; a disabled server ends the server's sessions;
        clients that were removed, disabled or changed hang up, new or re-enabled ones dial."""
        old = self.config
        self.config = config
        if self.driver is not None:
            self.driver.endpoint.config = self._endpoint_config()
        old_server, server = old.l2tp_server.server, config.l2tp_server.server
        if server.enabled and not old_server.enabled:
            self._listen(server)
        elif server.enabled and (server.listen_address, server.port) != (old_server.listen_address, old_server.port):
            log.warning("listen-address/port changes take effect at the next start")
        if config.metrics != old.metrics:
            log.warning("metrics.listen changes take effect at the next start")
        pools = cfg.IpPools.from_config(config)
        for s in self.sessions.values():
            for a in s.leases:
                for pool in pools.values():
                    if a in pool:
                        pool.allocate(s.key, prefer=a)
                        break
        self.pools = pools
        if self.radius is not None:
            self.radius.reconfigure(config)
        if config.radius_incoming != old.radius_incoming:
            self._dynauth_listen()
        if old_server.enabled and not server.enabled:
            for s in [s for s in self.sessions.values() if s.client is None]:
                s.link.close("server disabled", self.now())
                self._pump(s)
            if self.driver is not None:
                for tid, t in list(self.driver.endpoint.tunnels.items()):
                    if t.role is TunnelRole.LNS:
                        self.driver.call(self.driver.endpoint.close_tunnel, tid, reason="server disabled")
        old_clients = {c.conf.name: c for c in self.clients}
        self.clients = []
        for conf in config.l2tp_client:
            c = old_clients.pop(conf.name, None)
            if c is not None and dataclasses.replace(c.conf, comment=conf.comment) == conf:
                c.conf = conf  # the same connection (a new comment does not redial)
                self.clients.append(c)
                continue
            if c is not None:
                self._hang_up(c, "configuration changed")
            c = Client(conf)
            self.clients.append(c)
            if not conf.disabled:
                self._dial(c)
        for c in old_clients.values():
            self._hang_up(c, "removed from the configuration")
        if self.driver is not None:
            self.driver.flush()
        log.info("configuration reloaded")

    def _listen(self, server: cfg.L2tpServer) -> None:
        """The server was enabled while running: listen on its address and port. Tunnels we dialed
        keep the socket they were dialed from; new server tunnels use the new one."""
        if self.driver is None:
            return
        want = (str(server.listen_address), server.port)
        if self.server_sock is not None:
            if tuple(self.server_sock.getsockname()[:2]) == want:
                return
            self.loop.remove_reader(self.server_sock.fileno())
            self.server_sock.close()
            self.server_sock = None
        if tuple(self.sock.getsockname()[:2]) == want:
            return
        try:
            sock = open_udp(*want)
        except OSError as exc:
            log.error("L2TP server: cannot listen on %s:%d: %s", *want, exc.strerror or exc)
            return
        _grow_buffers(sock)
        self.server_sock = sock
        self._server_sock_index = self.dp.add_socket(sock.fileno())
        self.driver.lns_sock = sock
        self.loop.add_reader(sock.fileno(), self._udp_readable, self._server_sock_index)
        log.info("L2TP server listening on %s:%d", *want)

    def disconnect(self, key: tuple[int, int], reason: str = ADMINISTRATIVE) -> bool:
        """End one session (``/ppp active remove``); False if there is no such session."""
        s = self.sessions.get(key)
        if s is None or s.closed:
            return False
        s.link.close(reason, self.now())
        self._pump(s)
        if self.driver is not None:
            self.driver.flush()
        return True

    def _hang_up(self, c: Client, reason: str) -> None:
        """Stop a client for good (no redial)."""
        if c.redial is not None:
            c.redial.cancel()
            c.redial = None
        c.conf = dataclasses.replace(c.conf, disabled=True)
        if c.session is not None and not c.session.closed:
            c.session.link.close(reason, self.now())
            self._pump(c.session)
        elif c.tunnel_id is not None and self.driver is not None:
            self.driver.call(self.driver.endpoint.close_tunnel, c.tunnel_id)
        c.status = "disabled"

    # --- packets from the data plane -------------------------------------------------------------------

    def _udp_readable(self, index: int) -> None:
        # The hot path: one recvmmsg burst in C. Python only looks at what the data plane punted
        # (control messages, PPP control frames), which is rare.
        try:
            self.dp.rx_udp(index)
        except OSError as exc:
            log.warning("receive error: %s", exc)
        if self.dp.punted:
            self._handle_punted()

    def _handle_punted(self) -> None:
        now = self.now()
        for item in self.dp.take_punted():
            if item[0] == "control":
                _, data, addr, _sock = item
                self.driver.receive(data, addr)
            elif item[0] == "ccp-reset":  # MPPE stateful: the data plane lost sync
                s = self.sessions.get((item[1], item[2]))
                if s is not None and not s.closed:
                    self._mppe_resync(s)
            else:
                _, tunnel_id, session_id, frame = item
                s = self.sessions.get((tunnel_id, session_id))
                if s is not None and not s.closed:
                    target = self._bundle_owner_for(s, frame)
                    if target is not s:
                        s.link.lcp.note_rx(now)  # life on this link; the bundle's NCP frame is the owner's
                    target.link.receive_frame(frame, now)
                    self._pump(target)
        self.driver.flush()

    @staticmethod
    def _bundle_owner_for(s: Session, frame: bytes) -> Session:
        """Where a PPP frame from ``s`` goes: a bundle's NCP frames (0x8000-0xBFFF: IPCP, IPv6CP, CCP,
        BCP) go to the link that runs the bundle's NCPs, whichever link they came on (RFC 1990 §3)."""
        bundle = s.bundle
        if bundle is None or bundle.owner is s or bundle.owner is None:
            return s
        try:
            protocol = decode_frame(frame).protocol
        except DecodeError:
            return s
        return bundle.owner if 0x8000 <= protocol < 0xC000 else s

    # --- L2TP events -----------------------------------------------------------------------------------

    def _on_l2tp_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.SessionUp):
            self._session_up(e)
        elif isinstance(e, ev.SessionDown):
            s = self.sessions.get((e.tunnel_id, e.session_id))
            if s is not None:
                s.link.lower_down(self.now(), e.reason)
                self._pump(s)
                self._schedule_teardown(s, e.reason)
            elif e.tunnel_id in self._client_tunnels:
                self._client_failed(self._client_tunnels[e.tunnel_id], e.reason)
        elif isinstance(e, ev.TunnelDown):
            c = self._client_tunnels.pop(e.tunnel_id, None)
            if c is not None:
                self._client_failed(c, e.reason)
        elif isinstance(e, ev.TunnelUp):
            log.info("tunnel %d up with %s:%d (%s)", e.tunnel_id, e.peer[0], e.peer[1],
                     e.peer_host_name.decode("utf-8", "replace"))

    def _lcp_config(self, mru: int, max_mtu: int, keepalive: float | None, mrru: int | None = None) -> LcpConfig:
        return LcpConfig(mru=mru, max_mtu=max_mtu, keepalive_timeout_s=keepalive, mrru=mrru,
                         endpoint=self.endpoint if mrru is not None else None)

    @staticmethod
    def _ccp_config(params: cfg.SessionParams) -> CcpConfig:
        """The profile's ``mppe-key-lengths`` and ``mppe-stateful`` as CCP negotiates them."""
        stateful = params.mppe_stateful.value  # no | allow | prefer
        return CcpConfig(allow_40=40 in params.mppe_key_lengths, allow_56=56 in params.mppe_key_lengths,
                         allow_128=128 in params.mppe_key_lengths, allow_stateful=stateful != "no",
                         prefer_stateful=stateful == "prefer", reset_timeout_s=CCP_RESET_RETRY_S)

    def _session_up(self, e: ev.SessionUp) -> None:
        client = self._client_tunnels.get(e.tunnel_id)
        slog = SessionLog(log, e.tunnel_id, e.session_id)
        if client is not None:
            c = client.conf
            params = cfg.effective_client(self.config, c)
            encryption = Encryption(params.use_encryption.value)
            link = PppLink(Role.CLIENT, LinkConfig(
                lcp=self._lcp_config(c.max_mru, c.max_mtu, c.keepalive_timeout, c.mrru), allow=c.allow,
                username=c.user, password=c.password, auth_name=self.host_name,
                ipcp=IpcpConfig(request_dns=False), use_ipv6=params.use_ipv6 is not cfg.UseIpv6.NO,
                use_encryption=encryption, ccp=self._ccp_config(params),
                bcp=BcpConfig() if params.bridge is not None else None), now=self.now(), logger=slog)
            slog.set_user(c.user)
        else:
            server = self.config.l2tp_server.server
            default = cfg.effective_session(self.config, None)
            # until login, the default profile's; the user's profile (or RADIUS) decides at login
            encryption = Encryption(default.use_encryption.value)
            link = PppLink(Role.SERVER, LinkConfig(
                lcp=self._lcp_config(server.max_mru, server.max_mtu, server.keepalive_timeout, server.mrru),
                authenticate=server.authentication, auth_name=self.host_name, ipcp=None,
                use_ipv6=default.use_ipv6 is not cfg.UseIpv6.NO, use_encryption=encryption,
                ccp=self._ccp_config(default)), now=self.now(), logger=slog)
        s = Session(e.tunnel_id, e.session_id, e.peer, link, slog, client=client,
                    calling_number=e.calling_number.decode("utf-8", "replace"), use_encryption=encryption)
        self.sessions[s.key] = s
        s.l2tp_up_at = self.now()
        if client is not None:
            client.session = s
            client.status = "verifying password..."
        sock_index = self._sock_index if client is not None or self.server_sock is None else self._server_sock_index
        s.slot = self.dp.add_session(e.tunnel_id, e.session_id, self._peer_tunnel_id(e.tunnel_id),
                                     e.peer_session_id, e.peer[0], e.peer[1], sock_index, -1,
                                     tx_seq=e.sequencing_required)
        link.open(self.now())
        self._pump(s)

    def _peer_tunnel_id(self, tunnel_id: int) -> int:
        return self.driver.endpoint.tunnels[tunnel_id].peer_tunnel_id

    # --- PPP ---------------------------------------------------------------------------------------------

    def _pump(self, s: Session) -> None:
        """Send the link's frames, act on its events, re-arm its timer."""
        for frame in s.link.take_frames():
            try:
                self.dp.send_ppp(s.tunnel_id, s.session_id, frame)
            except (OSError, KeyError) as exc:
                s.log.debug("cannot send PPP frame: %s", exc)
        while (event := s.link.next_event()) is not None:
            try:
                self._on_link_event(s, event)
            except FastL2tpError as exc:
                s.log.error("%s", exc)
                s.link.close(str(exc), self.now())
            except Exception:  # noqa: BLE001 - the per-session guard: a bug ends this session only
                s.log.exception("internal error")
                s.link.close("internal error", self.now())
        for frame in s.link.take_frames():
            try:
                self.dp.send_ppp(s.tunnel_id, s.session_id, frame)
            except (OSError, KeyError):
                pass
        if s.bundle is not None and s.link.phase is not Phase.NETWORK:
            self._leave_bundle(s)  # terminating, dead or renegotiating LCP: out of the bundle now
        at = s.link.get_timer()
        if at != s.timer_at:
            if s.timer is not None:
                s.timer.cancel()
            s.timer = self.loop.call_at(at, self._link_timer, s) if at is not None and not s.closed else None
            s.timer_at = at

    def _link_timer(self, s: Session) -> None:
        s.timer = None
        s.timer_at = None
        if not s.closed:
            s.link.handle_timer(self.now())
            self._pump(s)
            self.driver.flush()

    def _on_link_event(self, s: Session, e: object) -> None:
        if isinstance(e, AuthRequested):
            self._authenticate(s, e)
        elif isinstance(e, AuthResult):
            s.user = s.user or e.username
            self.counters.auth_result(e.method, e.role, e.succeeded)
            if e.succeeded:
                s.log.info("user %s authenticated (%s)", e.username,
                         e.method.value)
            else:
                s.log.warning("authentication failed for user %s: %s", e.username, e.reason)
        elif isinstance(e, MultilinkUp):
            self._multilink_up(s, e)
        elif isinstance(e, NetworkUp):
            self._network_up(s, e)
        elif isinstance(e, BridgeUp):
            self._bridge_up(s, e)
        elif isinstance(e, BridgeDown):
            s.log.info("BCP down: %s", e.reason)
        elif isinstance(e, Ipv6Up):
            if s.ifname and e.interface_id and e.peer_interface_id:
                self._spawn(s, self.netlink.add_ipv6_link_local(s.ifname, e.interface_id, e.peer_interface_id))
        elif isinstance(e, EncryptionUp):
            k = e.keys
            self.dp.set_mppe(s.tunnel_id, s.session_id, send_key=k.send_start, recv_key=k.recv_start, bits=k.bits,
                             stateless=k.stateless, required=True)
            s.encrypted, s.encoding = True, e.encoding
            s.log.info("encryption %s", e.encoding)
            self._attach(s)
        elif isinstance(e, EncryptionRefused):
            s.log.info("no encryption: %s", e.reason)
            s.mppe_refused = True
            if s.configured and s.mtu < s.link_mtu:  # no MPPE after all: give the 4 octets back
                s.mtu = s.link_mtu
                self._spawn(s, self._set_mtu(s))
        elif isinstance(e, EncryptionDown):
            self.dp.clear_mppe(s.tunnel_id, s.session_id)
            s.encrypted, s.encoding = False, ""
            if s.use_encryption is Encryption.REQUIRED:
                self._detach(s)
        elif isinstance(e, EncryptionResetRequested):
            self.dp.mppe_reset_received(s.tunnel_id, s.session_id)
        elif isinstance(e, NetworkDown):
            s.log.info("%s down: %s", hex(e.protocol), e.reason)
        elif isinstance(e, LinkDown):
            self._link_down(s, e.reason)

    def _authenticate(self, s: Session, e: AuthRequested) -> None:
        req = e.request
        user = req.username
        s.user = user
        s.log.set_user(user)
        now = self.now()
        refusal = self._refuse_login(s, user)
        secret = cfg.find_secret(self.config, user)
        if refusal is None and secret is None and self.config.ppp.aaa.use_radius and self.radius is not None:
            # RouterOS precedence: a local secret first, RADIUS for the users it does not know
            s.auth_task = self._spawn(s, self._radius_login(s, req))
            return
        if refusal is None and secret is None:
            refusal = "no such user"
        if refusal is not None:
            s.log.warning("login of user %s refused: %s", user, refusal)
            s.link.complete_auth(req.request_id, AuthDecision(False, reason=refusal), now)
            return
        decision = verify_locally(req, secret.password)
        if not decision.accepted:
            s.link.complete_auth(req.request_id, decision, now)
            return
        params = cfg.effective_session(self.config, secret)
        if params.only_one and any(o.user == user and o is not s and o.up_since is not None
                                   for o in self.sessions.values()):
            s.log.warning("user %s already connected (only-one)", user)
            s.link.complete_auth(req.request_id, AuthDecision(False, reason="already connected (only-one)"), now)
            return
        s.secret = secret
        self._grant(s, req, decision, params)

    def _grant(self, s: Session, req, decision: AuthDecision, params, radius=None) -> None:
        """Log the user in with these settings: addresses (from pools as needed), encryption policy."""
        s.params, s.radius = params, radius
        local = self._address(s, params.local_address)
        remote = self._address(s, params.remote_address)
        ipcp = None
        if local is not None and remote is not None:
            ipcp = IpcpConfig(local_address=local, remote_address=remote, dns_servers=params.dns_server,
                              wins_servers=params.wins_server)
        s.use_encryption = Encryption(params.use_encryption.value)
        ccp = self._ccp_config(params)
        if radius is not None:
            if radius.mppe_required:
                s.use_encryption = Encryption.REQUIRED  # MS-MPPE-Encryption-Policy: encryption required
            types = radius.mppe_encryption_types  # MS-MPPE-Encryption-Types: the key lengths allowed
            if types:
                allow = {"allow_40": bool(types & MppeEncryptionTypes.RC4_40) and ccp.allow_40,
                         "allow_128": bool(types & MppeEncryptionTypes.RC4_128) and ccp.allow_128,
                         "allow_56": bool(types & MppeEncryptionTypes.RC4_56) and ccp.allow_56}
                if any(allow.values()):
                    ccp = dataclasses.replace(ccp, **allow)
                else:
                    s.log.warning("RADIUS MS-MPPE-Encryption-Types %#x allows none of the profile's MPPE key "
                                  "lengths: the profile's apply", types)
        s.link.complete_auth(req.request_id, decision, self.now(), ipcp=ipcp, use_encryption=s.use_encryption,
                             ccp=ccp, bridged=params.bridge is not None)

    async def _radius_login(self, s: Session, req) -> None:
        server = self.config.l2tp_server.server
        by_number = server.caller_id_type is cfg.CallerIdType.NUMBER
        try:
            request = AccessRequest(
                user_name=req.name, credentials=_radius_credentials(req.credentials), nas=self._nas(),
                calling_station_id=s.calling_number if by_number else s.peer[0],
                called_station_id="" if server.listen_address.is_unspecified else str(server.listen_address),
                acct_session_id=session_acct_id(s))
        except FastL2tpError as exc:  # e.g. a PAP password RADIUS cannot carry (over 128 octets)
            s.log.warning("login of user %s refused: %s", s.user, exc)
            s.link.complete_auth(req.request_id, AuthDecision(False, reason=str(exc)), self.now())
            self._pump(s)
            return
        try:
            result = await self.radius.authenticate(request)
        except RadiusUnavailable as exc:
            result = None
            why = f"RADIUS: {exc}"
        if s.closed:
            return
        now = self.now()
        if result is None or not result.accepted:
            if result is not None:
                why = f"RADIUS reject{': ' + result.reply_message if result.reply_message else ''}"
            s.log.warning("login of user %s refused: %s", s.user, why)
            code = (result.mschap_error_code if result is not None else None) or 691
            message = result.reply_message if result is not None else None
            s.link.complete_auth(req.request_id, AuthDecision(False, reason=why, message=message, error_code=code),
                                 now)
            self._pump(s)
            return
        refusal, decision, params = self._radius_accept(s, req, result)
        if refusal is not None:
            s.log.warning("login of user %s refused: %s", s.user, refusal)
            s.link.complete_auth(req.request_id, AuthDecision(False, reason=refusal), now)
            self._pump(s)
            return
        self._grant(s, req, decision, params, result)
        self._pump(s)
        if self.driver is not None:
            self.driver.flush()

    def _radius_accept(self, s: Session, req, result) -> tuple[str | None, AuthDecision | None, object]:
        """An Access-Accept as the session's settings: Mikrotik-Group picks the profile, the reply's
        address, pool, routes and timeouts override it."""
        try:
            params = cfg.effective_session(self.config, None, result.mikrotik_group)
        except FastL2tpError:
            return f"RADIUS Mikrotik-Group {result.mikrotik_group!r} names no profile", None, None
        remote = result.framed_ip_address or result.framed_pool or params.remote_address
        routes = []
        for text in result.framed_routes:
            try:
                r = cfg_values.parse_route(text)
            except cfg_values.BadValue as exc:
                s.log.warning("RADIUS Framed-Route ignored: %s", exc)
                continue
            if r.gateway is not None and r.gateway.is_unspecified:
                r = dataclasses.replace(r, gateway=None)  # 0.0.0.0: via the session (RFC 2865 §5.22)
            routes.append(r)
        params = dataclasses.replace(
            params, remote_address=remote, routes=tuple(routes),
            session_timeout=float(result.session_timeout_s) if result.session_timeout_s else params.session_timeout,
            idle_timeout=float(result.idle_timeout_s) if result.idle_timeout_s else params.idle_timeout,
            rate_limit=result.mikrotik_rate_limit or params.rate_limit)
        if params.only_one and any(o.user == s.user and o is not s and o.up_since is not None
                                   for o in self.sessions.values()):
            return "already connected (only-one)", None, None
        keys = None
        creds = req.credentials
        method = req.method
        if result.mppe_send_key is not None and result.mppe_recv_key is not None:
            keys = MppeKeyMaterial(method=method, send_key=result.mppe_send_key, recv_key=result.mppe_recv_key)
        elif result.mschap_mppe_keys is not None and isinstance(creds, MsChap1Credentials):
            lm_key, nt_key = result.mschap_mppe_keys
            keys = MppeKeyMaterial(method=method, password_hash_hash=nt_key, challenge=creds.challenge, lm_key=lm_key)
        response = None
        if isinstance(creds, MsChap2Credentials):
            if not result.mschap2_success:
                return "RADIUS accepted MS-CHAPv2 without MS-CHAP2-Success", None, None
            response = result.mschap2_success
        decision = AuthDecision(True, reason="RADIUS accept", authenticator_response=response, keys=keys,
                                message=result.reply_message)
        return None, decision, params

    def _nas(self) -> Nas:
        server = self.config.l2tp_server.server
        address = server.listen_address
        ip = address if isinstance(address, IPv4Address) and not address.is_unspecified else None
        return Nas(ip_address=ip, identifier=self.host_name)

    def _refuse_login(self, s: Session, user: str) -> str | None:
        server = self.config.l2tp_server.server
        if server.one_session_per_host and any(o.peer[0] == s.peer[0] and o is not s and o.client is None
                                               for o in self.sessions.values()):
            return f"one session per host: {s.peer[0]} already has one"
        if server.max_sessions is not None:
            active = sum(1 for o in self.sessions.values() if o.client is None and o.up_since is not None)
            if active >= server.max_sessions:
                return f"max-sessions ({server.max_sessions}) reached"
        secret = cfg.find_secret(self.config, user)
        if secret is not None and secret.caller_id:
            by_number = server.caller_id_type is cfg.CallerIdType.NUMBER
            caller = s.calling_number if by_number else s.peer[0]
            if secret.caller_id != caller:
                return f"caller-id {caller or '(none)'} does not match {secret.caller_id}"
        return None

    def _address(self, s: Session, value: IPv4Address | str | None) -> IPv4Address | None:
        if value is None or isinstance(value, IPv4Address):
            return value
        addr = self.pools.allocate(value, s.key)
        if addr is None:
            s.log.warning("pool %s is exhausted", value)
        else:
            s.leases.append(addr)
        return addr

    def _new_interface(self, s: Session, *, tap: bool) -> bool:
        """Name and open the session's TUN (routed) or TAP (bridge port) device; False when it failed
        (the link is closing then)."""
        if s.client is not None:
            display = s.client.conf.name
        else:
            static = cfg.static_interface(self.config, s.user)
            display = static.name if static is not None else f"<l2tp-{s.user}>"
        ifname = linux_ifname(display, self._ifnames)
        s.display_name, s.ifname = display, ifname
        try:
            s.tun = open_tun(ifname, tap=tap)
        except FastL2tpError as exc:
            s.link.close(f"cannot create interface {ifname}: {exc}", self.now())
            return False
        self._ifnames.add(ifname)
        return True

    def _network_up(self, s: Session, e: NetworkUp) -> None:
        if s.tun is not None:  # IPCP renegotiated: the interface stays, its addresses follow
            previous = (s.local_address, s.remote_address)
            if previous != (e.local_address, e.peer_address):
                s.local_address, s.remote_address = e.local_address, e.peer_address
                self._spawn(s, self.netlink.configure_ptp(s.ifname, e.local_address, e.peer_address, s.mtu,
                                                          previous=previous))
            self._attach(s)  # again after LCP renegotiated a multilink link into a new bundle
            return
        s.local_address, s.remote_address = e.local_address, e.peer_address
        if not self._new_interface(s, tap=False):
            return
        s.link_mtu = e.mtu
        if s.bundle is not None:
            # multilink: the peer reassembles packets up to its MRRU, we up to ours (RFC 1990 §5.1.1)
            s.mtu, s.mru = min(s.bundle.formats.peer_mrru, 65535), s.bundle.formats.mrru
        else:
            # With MPPE possible, leave room for its 4 octets so that packets never exceed the peer's MRU.
            s.mru = e.mru
            s.mtu = e.mtu - (MPPE_OVERHEAD if s.use_encryption is not Encryption.NO and not s.mppe_refused else 0)
        s.setup = self._spawn(s, self._configure(s, e))

    async def _configure(self, s: Session, e: NetworkUp) -> None:
        nl = self.netlink
        await nl.configure_ptp(s.ifname, e.local_address, e.peer_address, s.mtu)
        if s.closed:
            return
        s.configured = True
        self._attach(s)
        if s.params is not None:
            for r in s.params.routes:  # the secret's routes, or RADIUS Framed-Route
                gw = r.gateway if r.gateway is not None else None
                await nl.add_route(r.dst, gw, None if gw is not None else s.ifname, r.metric)
        if s.client is not None and s.client.conf.add_default_route:
            s.default_route = await nl.add_default_route(s.ifname, s.client.conf.default_route_distance,
                                                         server=s.peer[0])
        self._now_up(s, f"{e.local_address} -> {e.peer_address}")

    def _now_up(self, s: Session, what: str) -> None:
        """The session's interface is configured: it is up (timeouts, accounting Start, status)."""
        s.up_since = self.now()
        s.up_since_monotonic = time.monotonic()
        s.status = "connected"
        self._arm_timeouts(s)
        s.acct_id = session_acct_id(s)
        self._account(s, AcctStatusType.START)
        if s.client is not None:
            s.client.status = "connected"
            s.client.failures = 0
        extra = (f", {s.encoding}" if s.encoding else "") + (
            f", multilink MRRU {s.bundle.formats.peer_mrru}" if s.bundle is not None else "")
        s.log.info("%s up, user %s, %s, mtu %d%s", s.display_name, s.user, what, s.mtu, extra)
        self.counters.session_set_up(self.now() - s.l2tp_up_at)

    # --- bridge ports (BCP) -----------------------------------------------------------------------------

    def _session_params(self, s: Session) -> cfg.SessionParams:
        if s.client is not None:
            return cfg.effective_client(self.config, s.client.conf)
        return s.params if s.params is not None else cfg.effective_session(self.config, None)

    def _bridge_up(self, s: Session, e: BridgeUp) -> None:
        """BCP opened: the session becomes a port of its profile's bridge through a TAP device (RouterOS
        ``bridge=``); frames flow as soon as it is in the bridge."""
        s.log.info("BCP up: %s", e.values.describe())
        if s.tun is not None:  # BCP renegotiated: the port stays
            self._attach(s)
            return
        params = self._session_params(s)
        if params.bridge is None:  # cannot happen: only a bridged link runs BCP
            s.link.close("BCP up without a bridge in the profile", self.now())
            return
        s.bridged = True
        if not self._new_interface(s, tap=True):
            return
        s.link_mtu = e.mtu
        # the Ethernet payload that fits: the link's MTU (or the peer's MRRU) less the bridged-frame
        # header (2) and the Ethernet header (14); 4 more for MPPE while it may be used
        room = min(s.bundle.formats.peer_mrru, 65535) if s.bundle is not None else e.mtu
        mppe = MPPE_OVERHEAD if s.bundle is None and s.use_encryption is not Encryption.NO and not s.mppe_refused else 0
        s.mtu = max(room - BRIDGED_OVERHEAD - mppe, 68)
        s.mru = s.bundle.formats.mrru if s.bundle is not None else e.mru
        s.setup = self._spawn(s, self._configure_bridge_port(s, params.bridge, params.bridge_horizon))

    async def _configure_bridge_port(self, s: Session, bridge: str, horizon: int | None) -> None:
        await self.netlink.add_bridge_port(s.ifname, bridge, s.mtu, isolated=horizon is not None)
        if s.closed:
            return
        s.configured = True
        self._attach(s)
        self._now_up(s, f"port of bridge {bridge}" + (f" (horizon {horizon})" if horizon is not None else ""))

    # --- multilink bundles (RFC 1990) ---------------------------------------------------------------------

    def _multilink_up(self, s: Session, e: MultilinkUp) -> None:
        """Put the link in its bundle: a new one (this link runs the NCPs and gets the interface) or the
        bundle of the same peer (name and endpoint discriminator), which it joins as a further link."""
        now = self.now()
        # a server's bundles are told apart by the user who logged in; a client's by the user it logs in as
        name = e.peer_name if s.client is None else s.client.conf.user
        try:
            bundle, first = self.bundles.join(s, name, e.values)
        except BundleMismatch as exc:
            s.link.close(str(exc), now)
            return
        f = bundle.formats
        try:
            if first:
                bundle.context = self.dp.add_bundle(-1, mrru=f.mrru, rx_short_seq=f.short_seq,
                                                    tx_short_seq=f.peer_short_seq, bridged=s.link.bridged,
                                                    peer_mrru=f.peer_mrru)
                self._arm_bundle_timer()
            self.dp.bundle_add_link(bundle.context, s.tunnel_id, s.session_id, mtu=s.link.lcp.peer_mru)
        except ValueError as exc:  # e.g. more links than a bundle takes
            self.bundles.leave(s)
            if first and isinstance(bundle.context, int):
                self.dp.remove_bundle(bundle.context)
            s.link.close(f"multilink: {exc}", now)
            return
        s.bundle = bundle
        self._keep_network(bundle)
        if first:
            s.log.info("multilink: new bundle, peer endpoint %s, MRRU %d (ours %d), %s sequence numbers",
                       describe_endpoint(e.peer_endpoint), f.peer_mrru, f.mrru,
                       "short" if f.peer_short_seq else "long")
            s.link.start_network(now)
        else:
            owner = bundle.owner
            s.link.join_bundle(now)
            s.status = f"bundled with {owner.display_name or owner.ifname or 'its first link'}"
            if s.client is not None:
                s.client.status = "connected"
            s.log.info("multilink: link %d of the bundle of %s", len(bundle.links), owner.display_name or name)

    def _keep_network(self, bundle: Bundle) -> None:
        """The owner keeps its NCPs for a hand-over while the bundle has other links."""
        for link_session in bundle.links:
            link_session.link.keep_network = link_session is bundle.owner and len(bundle.links) > 1

    def _leave_bundle(self, s: Session) -> None:
        """The link left the Network phase: out of its bundle. The last link takes the bundle with it;
        an owner with other links still there hands the interface and the NCPs to the next one."""
        bundle, s.bundle = s.bundle, None
        if bundle is None:
            return
        left = self.bundles.leave(s)
        if left is not None and self.stopping and not left.empty:
            left = dataclasses.replace(left, new_owner=None)  # all links go: nothing to hand over
        bid = bundle.context
        try:
            self.dp.bundle_remove_link(bid, s.tunnel_id, s.session_id)
        except (KeyError, ValueError):
            pass
        if left is None:
            return
        if left.empty:
            if s.attached:
                try:
                    s.final_stats = self._stats(s, bid)
                except KeyError:
                    pass
                self._detach(s, bid)
            self.dp.remove_bundle(bid)  # a link renegotiating LCP keeps its interface for its next bundle
            return
        if left.was_owner and left.new_owner is not None:
            new = left.new_owner
            state = s.link.release_network()
            self._move_interface(s, new)
            if state is None or not new.link.adopt_network(state, self.now()):
                new.link.close("multilink: the bundle's network protocols were lost with its first link",
                               self.now())
            s.log.info("multilink: the bundle goes on over tunnel=%d session=%d", new.tunnel_id, new.session_id)
            self._pump(new)
        self._keep_network(bundle)

    _MOVED = ("display_name", "ifname", "tun", "leases", "local_address", "remote_address", "mtu", "mru",
              "link_mtu", "configured", "attached", "default_route", "host_route", "up_since",
              "up_since_monotonic", "acct_id", "params", "secret", "radius", "bridged", "encrypted", "encoding")

    def _move_interface(self, old: Session, new: Session) -> None:
        """A bundle's interface, addresses, routes, limits and accounting follow its NCPs to ``new``."""
        for name in self._MOVED:
            setattr(new, name, getattr(old, name))
        new.status = "connected" if new.up_since is not None else old.status
        if new.client is not None and new.up_since is not None:
            new.client.status = "connected"
        for t in old.timeouts:
            t.cancel()
        old.timeouts.clear()
        old.tun, old.leases, old.configured, old.attached = None, [], False, False
        old.default_route = old.host_route = None
        old.up_since, old.acct_id = None, ""
        old.status = f"left the bundle of {new.display_name}"
        self._arm_timeouts(new)

    def _arm_bundle_timer(self) -> None:
        if self._bundle_timer is None:
            self._bundle_timer = self.loop.call_later(BUNDLE_TICK_S, self._bundle_tick)

    def _bundle_tick(self) -> None:
        """Reassembly stall timeouts (a bundle whose links went quiet after a loss)."""
        self._bundle_timer = None
        if len(self.bundles):
            self.dp.expire_bundles()
            self._arm_bundle_timer()

    def _bundle_readable(self, bundle: Bundle) -> None:
        try:
            self.dp.rx_bundle(bundle.context)
        except (OSError, KeyError) as exc:
            log.debug("bundle %s: read error: %s", bundle.context, exc)

    def _stats(self, s: Session, bundle_id: int | None = None) -> dict:
        """The traffic counters of the session's interface: its bundle's when it has a bundle's."""
        if bundle_id is None and s.bundle is not None and s.bundle.owner is s:
            bundle_id = s.bundle.context
        if bundle_id is not None:
            return self.dp.bundle_stats(bundle_id)
        return self.dp.session_stats(s.tunnel_id, s.session_id)

    def traffic(self, s: Session) -> tuple[int, int, int, int, int, int]:
        return interface_traffic(self.dp, s)

    def _mppe_resync(self, s: Session) -> None:
        """MPPE stateful lost sync: send a CCP Reset-Request, and again every reset interval for as long
        as the data plane still discards (a lost Reset-Request or Reset-Ack, or a lost flushed packet,
        must not leave the session deaf until enough further packets arrive to punt again)."""
        if s.closed:
            s.resync_timer = None
            return
        stats = self.dp.session_stats(s.tunnel_id, s.session_id).get("mppe")
        if stats is None or not stats["rx_discard"]:
            s.resync_timer = None
            return
        sent = s.link.send_reset_request(self.now())
        s.log.debug("MPPE lost sync: ccp reset %s", "requested" if sent else "already pending")
        self._pump(s)
        if s.resync_timer is None or sent:
            if s.resync_timer is not None:
                s.resync_timer.cancel()
            s.resync_timer = self.loop.call_later(CCP_RESET_RETRY_S, self._mppe_resync_tick, s)

    def _mppe_resync_tick(self, s: Session) -> None:
        s.resync_timer = None
        self._mppe_resync(s)
        if self.driver is not None:
            self.driver.flush()

    async def _set_mtu(self, s: Session) -> None:
        await self.netlink.configure_ptp(s.ifname, s.local_address, s.remote_address, s.mtu)
        if s.attached and not s.closed and s.bundle is None:
            self.dp.update_session(s.tunnel_id, s.session_id, mss=0 if s.bridged else self._mss(s))

    def _mss(self, s: Session) -> int:
        change_mss = s.params.change_tcp_mss if s.params is not None else True
        if s.client is not None:
            change_mss = cfg.effective_client(self.config, s.client.conf).change_tcp_mss
        return max(s.mtu - TCP_IP_HEADERS, 0) if change_mss else 0

    def _attach(self, s: Session) -> None:
        """Let IP flow between the interface and the session: once it is configured, and with
        ``use-encryption=required`` only once MPPE is up."""
        if s.attached or not s.configured or s.closed or s.tun is None:
            return
        if s.use_encryption is Encryption.REQUIRED and not s.encrypted:
            return
        mss = 0 if s.bridged else self._mss(s)
        if s.bundle is not None:
            if s.bundle.owner is not s:
                return
            self.dp.update_bundle(s.bundle.context, fd=s.tun.fileno(), mss=mss)
            self.loop.add_reader(s.tun.fileno(), self._bundle_readable, s.bundle)
        else:
            self.dp.update_session(s.tunnel_id, s.session_id, tun_fd=s.tun.fileno(), mss=mss, bridged=s.bridged)
            self.loop.add_reader(s.tun.fileno(), self._tun_readable, s)
        s.attached = True

    def _detach(self, s: Session, bundle_id: int | None = None) -> None:
        if not s.attached:
            return
        self.loop.remove_reader(s.tun.fileno())
        if bundle_id is None and s.bundle is not None:
            bundle_id = s.bundle.context
        if bundle_id is not None:
            self.dp.update_bundle(bundle_id, fd=-1)
        else:
            self.dp.update_session(s.tunnel_id, s.session_id, tun_fd=-1)
        s.attached = False

    def _arm_timeouts(self, s: Session) -> None:
        """Session and idle timeouts (and RADIUS interim accounting) from ``s.params``, counted from
        the session's start: called at up and again when a CoA-Request changes them."""
        for t in s.timeouts:
            t.cancel()
        s.timeouts.clear()
        if s.params is None or s.up_since is None:
            return
        if s.params.session_timeout:
            left = max(s.params.session_timeout - (self.now() - s.up_since), 0.0)
            s.timeouts.append(self.loop.call_later(left, self._expire, s, "session timeout"))
        if s.params.idle_timeout:
            s.timeouts.append(self.loop.call_later(s.params.idle_timeout, self._check_idle, s))
        interval = self._interim_interval(s)
        if interval:
            s.timeouts.append(self.loop.call_later(interval, self._interim, s))

    def find_sessions(self, *, user: str | None = None, acct_session_id: str | None = None,
                      framed_ip: IPv4Address | None = None) -> list[Session]:
        """Server sessions matching every criterion given (RFC 5176 session identification)."""
        out = []
        for s in self.sessions.values():
            if s.closed or s.client is not None:
                continue
            if user is not None and s.user != user:
                continue
            if acct_session_id is not None and session_acct_id(s) != acct_session_id:
                continue
            if framed_ip is not None and s.remote_address != framed_ip:
                continue
            out.append(s)
        return out

    def change_session(self, s: Session, *, session_timeout: float | None = None,
                       idle_timeout: float | None = None, rate_limit: str | None = None) -> None:
        """A CoA-Request's new limits for a running session (0 = no limit)."""
        if s.params is None:
            return
        changes: dict[str, object] = {}
        if session_timeout is not None:
            changes["session_timeout"] = session_timeout or None
        if idle_timeout is not None:
            changes["idle_timeout"] = idle_timeout or None
        if rate_limit is not None:
            changes["rate_limit"] = rate_limit or None
        s.params = dataclasses.replace(s.params, **changes)
        s.log.info("limits changed: session-timeout %s, idle-timeout %s, rate-limit %s",
                   s.params.session_timeout, s.params.idle_timeout, s.params.rate_limit)
        self._arm_timeouts(s)

    # --- RADIUS accounting ------------------------------------------------------------------------

    def _accounting(self, s: Session) -> bool:
        aaa = self.config.ppp.aaa
        return (s.client is None and aaa.accounting and self.radius is not None and self.radius.has_servers
                and (s.radius is not None or aaa.use_radius))

    def _interim_interval(self, s: Session) -> float | None:
        if not self._accounting(s):
            return None
        if s.radius is not None and s.radius.acct_interim_interval_s:
            return float(s.radius.acct_interim_interval_s)  # the server's Acct-Interim-Interval wins
        return self.config.ppp.aaa.interim_update

    def _dynauth_listen(self) -> None:
        """``[radius-incoming]``: (re)open or close the Disconnect/CoA listener as configured."""
        if self.dynauth is not None:
            self.dynauth.close()
            self.dynauth = None
        incoming = self.config.radius_incoming
        if not incoming.accept:
            return
        server = DynAuthServer(self, incoming.port)
        try:
            server.start()
        except OSError as exc:
            log.error("RADIUS incoming: cannot listen on UDP port %d: %s", incoming.port, exc.strerror or exc)
            return
        self.dynauth = server

    def _accounting_on_off(self, status: AcctStatusType) -> None:
        """Accounting-On at start, Accounting-Off at a clean stop (RFC 2866 §5.1): the server closes
        what it still holds open for this NAS."""
        aaa = self.config.ppp.aaa
        if self.radius is None or not self.radius.has_servers or not (aaa.accounting and aaa.use_radius):
            return
        self.radius.account(AccountingRequest(status_type=status, nas=self._nas(),
                                              acct_session_id=f"{status.name.lower()}-{int(time.time()):X}",
                                              event_timestamp=int(time.time())))

    def _interim(self, s: Session) -> None:
        if s.closed:
            return
        self._account(s, AcctStatusType.INTERIM_UPDATE)
        interval = self._interim_interval(s)
        if interval:
            s.timeouts.append(self.loop.call_later(interval, self._interim, s))

    def _account(self, s: Session, status: AcctStatusType, cause: TerminateCause | None = None) -> None:
        if not self._accounting(s) or s.up_since is None:
            return
        st = s.final_stats
        if st is None:
            try:
                st = self._stats(s)
            except KeyError:
                st = {}
        server = self.config.l2tp_server.server
        by_number = server.caller_id_type is cfg.CallerIdType.NUMBER
        started = status is AcctStatusType.START
        self.radius.account(AccountingRequest(
            status_type=status, nas=self._nas(), acct_session_id=session_acct_id(s), user_name=s.user,
            session_time_s=None if started else int(self.now() - s.up_since),
            input_octets=None if started else st.get("rx_bytes", 0),
            output_octets=None if started else st.get("tx_bytes", 0),
            input_packets=None if started else st.get("rx_packets", 0),
            output_packets=None if started else st.get("tx_packets", 0),
            framed_ip_address=s.remote_address, classes=s.radius.classes if s.radius is not None else (),
            terminate_cause=cause, calling_station_id=s.calling_number if by_number else s.peer[0],
            event_timestamp=int(time.time())))

    def _expire(self, s: Session, reason: str) -> None:
        if not s.closed:
            s.log.info("%s", reason)
            s.link.close(reason, self.now())
            self._pump(s)
            self.driver.flush()

    def idle_seconds(self, s: Session) -> float:
        """Seconds since the session last carried an IP packet either way (RouterOS ``idle-time``)."""
        *_, last_rx_ns, last_tx_ns = self.traffic(s)
        last_ns = max(last_rx_ns, last_tx_ns)
        since = time.monotonic() - (last_ns / 1e9 if last_ns else s.up_since_monotonic)
        return max(since, 0.0)

    def _check_idle(self, s: Session) -> None:
        if s.closed or s.params is None or not s.params.idle_timeout:
            return
        idle = self.idle_seconds(s)
        if idle >= s.params.idle_timeout:
            self._expire(s, "idle timeout")
        else:
            s.timeouts.append(self.loop.call_later(s.params.idle_timeout - idle, self._check_idle, s))

    def _tun_readable(self, s: Session) -> None:
        try:
            self.dp.rx_tun(s.slot)
        except OSError as exc:
            log.debug("%s: read error: %s", s.ifname, exc)

    def _spawn(self, s: Session, coro) -> asyncio.Task:
        task = self.loop.create_task(coro)

        def done(t: asyncio.Task) -> None:
            if t.cancelled():
                return
            exc = t.exception()
            if exc is not None:
                s.log.error("%s: %s", s.ifname, exc)
                if not s.closed:
                    s.link.close(f"interface setup failed: {exc}", self.now())
                    self._pump(s)

        task.add_done_callback(done)
        return task

    def _link_down(self, s: Session, reason: str) -> None:
        s.log.info("link down: %s", reason)
        if self.driver is not None and (s.tunnel_id, s.session_id) in self.sessions:
            result = ResultCode(CDNResult.ADMIN if reason == ADMINISTRATIVE else CDNResult.GENERAL_ERROR,
                                ErrorCode.NO_ERROR, reason.encode()[:200])
            self.driver.call(self.driver.endpoint.close_session, s.tunnel_id, s.session_id, result=result,
                             reason=reason)
            if s.client is not None and s.client.tunnel_id is not None:
                self.driver.call(self.driver.endpoint.close_tunnel, s.client.tunnel_id,
                                 result=ResultCode(StopCCNResult.GENERAL_REQUEST, 0), reason=reason)
        self._schedule_teardown(s, reason)

    def _schedule_teardown(self, s: Session, reason: str) -> None:
        if s.bundle is not None:
            self._leave_bundle(s)
        if not s.closed:
            s.closed = True
            self.loop.create_task(self._teardown(s, reason))

    async def _teardown(self, s: Session, reason: str) -> None:
        s.closed = True
        if self.sessions.pop(s.key, None) is None:
            return
        if s.timer is not None:
            s.timer.cancel()
        for t in s.timeouts:
            t.cancel()
        if s.resync_timer is not None:
            s.resync_timer.cancel()
        if s.setup is not None and not s.setup.done():
            s.setup.cancel()
        if s.auth_task is not None and not s.auth_task.done():
            s.auth_task.cancel()
        if s.tun is not None and s.attached:
            try:
                self.loop.remove_reader(s.tun.fileno())
            except (ValueError, OSError):
                pass
        try:
            link_stats = self.dp.session_stats(s.tunnel_id, s.session_id)
            if s.final_stats is None:
                s.final_stats = link_stats
            self.counters.session_ended(link_stats)
            self.dp.remove_session(s.tunnel_id, s.session_id)
        except KeyError:
            pass
        self._account(s, AcctStatusType.STOP, terminate_cause(reason))
        if s.default_route is not None:
            try:
                await self.netlink.del_default_route(s.default_route)
            except FastL2tpError as exc:
                log.warning("%s: removing the default route: %s", s.ifname, exc)
        if s.tun is not None:
            s.tun.close()  # the kernel removes the interface, its addresses and routes
            self._ifnames.discard(s.ifname)
        for a in s.leases:
            self.pools.release(a)
        if s.client is not None:
            self._client_failed(s.client, reason)

    # --- clients ---------------------------------------------------------------------------------------

    def _dial(self, c: Client) -> None:
        c.redial = None
        if self.stopping or c.conf.disabled:
            return
        try:
            host = str(ipaddress.ip_address(str(c.conf.connect_to)))
        except ValueError:
            try:
                host = socket.gethostbyname(str(c.conf.connect_to))
            except OSError as exc:
                self._client_failed(c, f"cannot resolve {c.conf.connect_to}: {exc}")
                return
        c.status = "dialing"
        endpoint = self.driver.endpoint
        secret = endpoint.secret_for(host)  # ppp.l2tp-secret applies to the tunnels we dial too
        tunnel = dataclasses.replace(endpoint.config.tunnel, secret=secret) if secret else None
        tid = self.driver.call(endpoint.open_tunnel, (host, c.conf.port), config=tunnel)
        c.tunnel_id = tid
        self._client_tunnels[tid] = c
        self.driver.call(self.driver.endpoint.open_session, tid)
        log.info("client %s: dialing %s:%d", c.conf.name, host, c.conf.port)

    def _client_failed(self, c: Client, reason: str) -> None:
        if c.redial is not None or self.stopping or c.conf.disabled:
            if c.tunnel_id is not None:
                self._client_tunnels.pop(c.tunnel_id, None)
                c.tunnel_id = None
            c.session = None
            return
        if c.tunnel_id is not None:
            self._client_tunnels.pop(c.tunnel_id, None)
            if self.driver is not None and c.tunnel_id in self.driver.endpoint.tunnels:
                self.driver.call(self.driver.endpoint.close_tunnel, c.tunnel_id)
            c.tunnel_id = None
        if c.session is not None and not c.session.closed:
            s = c.session
            s.link.close(reason, self.now())
            self._pump(s)
            self._schedule_teardown(s, reason)
        c.session = None
        c.status = "terminated"
        c.last_reason = reason
        delay = REDIAL_BACKOFF_S[min(c.failures, len(REDIAL_BACKOFF_S) - 1)]
        c.failures += 1
        log.info("client %s: %s; redialing in %.0f s", c.conf.name, reason, delay)
        c.redial = self.loop.call_later(delay, self._dial, c)


def session_acct_id(s: Session) -> str:
    """The session's Acct-Session-Id: the session-id ``/ppp active`` shows (a bundle keeps the one of
    the link it started on)."""
    return s.acct_id or session_id_text(s.tunnel_id, s.session_id)


def _radius_credentials(creds):
    """The PPP layer's credentials as RADIUS attributes want them (same fields, RADIUS's types)."""
    kind = {PapCredentials: PapPassword, ChapMd5Credentials: ChapPassword, MsChap1Credentials: MsChap1Response,
            MsChap2Credentials: MsChap2Response}.get(type(creds))
    if kind is None:
        raise FastL2tpError(f"no RADIUS form for {type(creds).__name__}")
    return kind(**{f.name: getattr(creds, f.name) for f in dataclasses.fields(creds)})


def terminate_cause(reason: str) -> TerminateCause:
    """Acct-Terminate-Cause (RFC 2866 §5.10) for why a session ended."""
    r = reason.lower()
    if "idle timeout" in r:
        return TerminateCause.IDLE_TIMEOUT
    if "session timeout" in r:
        return TerminateCause.SESSION_TIMEOUT
    if "keepalive" in r or "lost" in r or "no answer" in r or "retransmi" in r:
        return TerminateCause.LOST_CARRIER
    if "administrator" in r or "server disabled" in r or "radius disconnect" in r:
        return TerminateCause.ADMIN_RESET
    if "daemon stopping" in r or r == ADMINISTRATIVE.lower():
        return TerminateCause.NAS_REBOOT
    if "peer" in r or "user request" in r:
        return TerminateCause.USER_REQUEST
    return TerminateCause.NAS_REQUEST
