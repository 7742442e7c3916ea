"""The configuration model: frozen, slotted dataclasses named after RouterOS menus and properties.

A RouterOS property becomes an attribute by mapping ``-`` to ``_`` (``keepalive-timeout`` →
``keepalive_timeout``), and the TOML tables mirror the menus::

    [l2tp-server.server]      /interface l2tp-server server     Config.l2tp_server.server
    [[l2tp-server.interface]] /interface l2tp-server            Config.l2tp_server.interface
    [[l2tp-client]]           /interface l2tp-client            Config.l2tp_client
    [[ppp.secret]]            /ppp secret                       Config.ppp.secret
    [[ppp.profile]]           /ppp profile                      Config.ppp.profile
    [[ppp.l2tp-secret]]       /ppp l2tp-secret                  Config.ppp.l2tp_secret
    [ppp.aaa]                 /ppp aaa                          Config.ppp.aaa
    [[ip.pool]]               /ip pool                          Config.ip.pool
    [[radius]]                /radius                           Config.radius
    [radius-incoming]         /radius incoming                  Config.radius_incoming
    [daemon]                  (fastl2tp only)                   Config.daemon
    [metrics]                 (fastl2tp only)                   Config.metrics

(``/radius incoming`` is ``[radius-incoming]`` because TOML cannot hold both ``[[radius]]`` and a
``[radius.incoming]`` table.)

Each leaf field carries its value kind (``values.Kind``) in its metadata; the loader, ``dump`` and
the docs are driven by it. Units: every time is a ``float`` of seconds holding whole milliseconds,
``None`` where RouterOS says "disabled"/"none"/"unlimited" or leaves it unset.

The two built-in profiles ``default`` and ``default-encryption`` are always in ``Config.ppp.profile``
(a ``[[ppp.profile]]`` entry with one of these names changes the built-in's settings).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ..wire.auth import AuthMethod
from . import values as v
from .values import AddressRange, IPAddress, IPNetwork, Route

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_ENCRYPTION_PROFILE",
    "DEFAULT_PROFILE",
    "Aaa",
    "AddressRange",
    "AuthMethod",
    "CallerIdType",
    "Config",
    "Daemon",
    "IpMenu",
    "L2tpClient",
    "L2tpSecret",
    "L2tpServer",
    "L2tpServerInterface",
    "L2tpServerMenu",
    "LogLevel",
    "Metrics",
    "MppeStateful",
    "Pool",
    "PppMenu",
    "Profile",
    "RadiusIncoming",
    "RadiusServer",
    "RadiusService",
    "Route",
    "Secret",
    "Service",
    "UseEncryption",
    "UseIpv6",
]


class CallerIdType(enum.Enum):
    """``caller-id-type``: what a secret's ``caller-id`` is compared with."""

    IP_ADDRESS = "ip-address"  # the client's IP address
    NUMBER = "number"  # the Calling Number AVP


class UseEncryption(enum.Enum):
    DEFAULT = "default"  # as the `default` profile
    NO = "no"
    YES = "yes"  # MPPE when the peer supports it
    REQUIRED = "required"  # MPPE or no session


class MppeStateful(enum.Enum):
    """``mppe-stateful`` (fastl2tp only): whether MPPE may run in stateful mode (RFC 3078 §3.1)."""

    NO = "no"  # stateless only: a peer that insists on stateful gets no MPPE
    ALLOW = "allow"  # ask for stateless; take stateful when the peer insists
    PREFER = "prefer"  # ask for stateful; yield to a peer that asks for stateless


class UseIpv6(enum.Enum):
    DEFAULT = "default"
    NO = "no"
    YES = "yes"  # IPv6CP when the peer asks
    REQUIRED = "required"


class Service(enum.Enum):
    """A secret's ``service``: which PPP services may use it (fastl2tp uses ``any`` and ``l2tp``)."""

    ANY = "any"
    ASYNC = "async"
    ISDN = "isdn"
    L2TP = "l2tp"
    OVPN = "ovpn"
    PPPOE = "pppoe"
    PPTP = "pptp"
    SSTP = "sstp"


class RadiusService(enum.Enum):
    """A RADIUS server's ``service``; fastl2tp uses the servers that list ``ppp``."""

    PPP = "ppp"
    LOGIN = "login"
    HOTSPOT = "hotspot"
    WIRELESS = "wireless"
    DHCP = "dhcp"
    IPSEC = "ipsec"
    DOT1X = "dot1x"


class LogLevel(enum.Enum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_MISSING: Any = object()


def _k(kind: v.Kind[Any], default: Any = _MISSING, doc: str = "",
       routeros: str | None = None, *, secret: bool = False) -> Any:
    """A leaf field: its kind, default, one-line doc and (if it differs) the RouterOS default.

    ``secret`` fields (passwords) are left out of ``repr`` so that a logged object never shows them.
    """
    meta = {"kind": kind, "doc": doc, "routeros": routeros, "secret": secret}
    if default is _MISSING:
        return field(metadata=meta, repr=not secret)
    if isinstance(default, list | dict | set):
        raise TypeError("mutable default")
    return field(default=default, metadata=meta, repr=not secret)


def _table(cls: type) -> Any:
    return field(default_factory=cls, metadata={"table": cls})


def _array(cls: type, default: tuple[Any, ...] = ()) -> Any:
    return field(default=default, metadata={"array": cls})


MTU = v.Int(512, 65535)
MRRU = v.Int(512, 65535, "disabled")
AUTH = v.EnumSet(AuthMethod)
KEEPALIVE = v.Time(1, None, ("disabled", "none"))


# --- /interface l2tp-server ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class L2tpServer:
    """``/interface l2tp-server server``: the LNS."""

    enabled: bool = _k(v.Bool(), False, "whether the server accepts tunnels")
    authentication: tuple[AuthMethod, ...] = _k(
        AUTH, (AuthMethod.MSCHAP1, AuthMethod.MSCHAP2),
        "methods offered, in this order", "mschap1,mschap2 (v6); mschap2 in the manual")
    default_profile: str = _k(v.Name("profile name"), "default-encryption",
                              "profile for users without a local secret (RADIUS)", "default in the manual")
    keepalive_timeout: float | None = _k(KEEPALIVE, 30.0, "silence before LCP echoes start; disabled = off")
    max_mtu: int = _k(MTU, 1450, "largest MTU negotiated", "1460 in the manual")
    max_mru: int = _k(MTU, 1450, "largest MRU negotiated", "1460 in the manual")
    mrru: int | None = _k(MRRU, None, "MRRU: multilink PPP (RFC 1990), packets up to this size over smaller links; disabled = no MP")
    max_sessions: int | None = _k(v.Int(0, 2**32 - 1, "unlimited"), None, "sessions accepted at most")
    one_session_per_host: bool = _k(v.Bool(), False, "one session per client IP address")
    caller_id_type: CallerIdType = _k(v.EnumKind(CallerIdType), CallerIdType.IP_ADDRESS,
                                      "what a secret's caller-id is compared with")
    listen_address: IPAddress = _k(v.IP(), IPv4Address("0.0.0.0"),
                                   "address the server binds (fastl2tp only)", "(all addresses)")
    port: int = _k(v.Int(1, 65535), 1701, "UDP port the server binds (fastl2tp only)", "(1701)")


@dataclass(frozen=True, slots=True, kw_only=True)
class L2tpServerInterface:
    """``/interface l2tp-server``: a static interface name for a user's session."""

    name: str = _k(v.IfName(), doc="interface name; default l2tp-in1, l2tp-in2, ...")
    user: str = _k(v.Name("user name"), doc="the ppp secret (or RADIUS user) whose session gets this name")
    disabled: bool = _k(v.Bool(), False, "a disabled entry is not used")
    comment: str = _k(v.Text(), "", "free text")


@dataclass(frozen=True, slots=True, kw_only=True)
class L2tpServerMenu:
    server: L2tpServer = _table(L2tpServer)
    interface: tuple[L2tpServerInterface, ...] = _array(L2tpServerInterface)


# --- /interface l2tp-client ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class L2tpClient:
    """``/interface l2tp-client``: a LAC dialing one server."""

    name: str = _k(v.IfName(), doc="interface name; default l2tp-out1, l2tp-out2, ...")
    connect_to: IPAddress | str = _k(v.Host(), doc="the server's address (or DNS name)")
    port: int = _k(v.Int(1, 65535), 1701, "the server's UDP port", "(1701)")
    user: str = _k(v.Name("user name"), doc="user name to log in with")
    password: str = _k(v.Text(), "", "password to log in with", secret=True)
    profile: str = _k(v.Name("profile name"), "default-encryption", "ppp profile of this link",
                      "default in the manual")
    allow: tuple[AuthMethod, ...] = _k(
        AUTH, (AuthMethod.MSCHAP2, AuthMethod.MSCHAP1, AuthMethod.CHAP, AuthMethod.PAP),
        "methods the client accepts")
    add_default_route: bool = _k(v.Bool(), False, "route 0.0.0.0/0 through the tunnel when up")
    default_route_distance: int = _k(v.Int(0, 255), 1, "distance (metric) of that default route")
    keepalive_timeout: float | None = _k(KEEPALIVE, 60.0, "silence before LCP echoes start; disabled = off")
    max_mtu: int = _k(MTU, 1450, "largest MTU negotiated", "1460 in the manual")
    max_mru: int = _k(MTU, 1450, "largest MRU negotiated", "1460 in the manual")
    mrru: int | None = _k(MRRU, None, "MRRU: multilink PPP (RFC 1990), packets up to this size over smaller links; disabled = no MP")
    disabled: bool = _k(v.Bool(), True, "a disabled client does not dial (RouterOS adds clients disabled)")
    comment: str = _k(v.Text(), "", "free text")


# --- /ppp ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Secret:
    """``/ppp secret``: a local user."""

    name: str = _k(v.Name("user name"), doc="user name")
    password: str = _k(v.Text(), "", "password", secret=True)
    service: Service = _k(v.EnumKind(Service), Service.ANY, "service that may use it (any or l2tp here)")
    caller_id: str = _k(v.Text(), "", "if set, the client's IP address (or number) must match")
    profile: str = _k(v.Name("profile name"), "default", "ppp profile")
    local_address: IPv4Address | None = _k(v.OptIPv4(), None, "our address on the link (over the profile's)")
    remote_address: IPv4Address | None = _k(v.OptIPv4(), None, "the client's address (over the profile's)")
    routes: tuple[Route, ...] = _k(v.Routes(), (), 'routes added while up: "dst gateway metric", ...')
    disabled: bool = _k(v.Bool(), False, "a disabled secret does not log in")
    comment: str = _k(v.Text(), "", "free text")


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """``/ppp profile``: settings shared by sessions. ``None`` tri-states mean ``default``: take the
    value of the ``default`` profile."""

    name: str = _k(v.Name("profile name"), doc="profile name")
    local_address: IPv4Address | str | None = _k(v.IPv4OrPool(), None, "our address: an address or a pool name")
    remote_address: IPv4Address | str | None = _k(v.IPv4OrPool(), None,
                                                  "the client's address: an address or a pool name")
    dns_server: tuple[IPv4Address, ...] = _k(v.IPv4List(2), (), "DNS servers given to the client (IPCP)")
    wins_server: tuple[IPv4Address, ...] = _k(v.IPv4List(2), (), "WINS/NBNS servers given to the client")
    use_encryption: UseEncryption = _k(v.EnumKind(UseEncryption), UseEncryption.DEFAULT, "MPPE policy")
    mppe_key_lengths: tuple[int, ...] = _k(v.IntSet((40, 56, 128)), (128, 40),
                                           "MPPE key lengths accepted; the strongest both ends allow wins "
                                           "(fastl2tp only)", "(40 and 128)")
    mppe_stateful: MppeStateful = _k(v.EnumKind(MppeStateful), MppeStateful.ALLOW,
                                     "MPPE stateful mode: no, allow (when the peer insists) or prefer "
                                     "(fastl2tp only)", "(stateless preferred)")
    use_ipv6: UseIpv6 = _k(v.EnumKind(UseIpv6), UseIpv6.DEFAULT, "IPv6CP policy")
    change_tcp_mss: bool | None = _k(v.YesNoDefault(), None, "clamp the TCP MSS of SYNs to the link MTU")
    only_one: bool | None = _k(v.YesNoDefault(), None, "at most one session per user")
    session_timeout: float | None = _k(v.Time(0, None, ("none",), zero_is_none=True), None,
                                       "longest session; none/0s = no limit")
    idle_timeout: float | None = _k(v.Time(0, None, ("none",), zero_is_none=True), None,
                                    "longest idle time; none/0s = no limit")
    bridge: str | None = _k(v.OptName("bridge name"), None, "bridge the session joins as a port (BCP, a TAP device); no IP of its own")
    bridge_horizon: int | None = _k(v.Int(0, 429496729, "none"), None, "ports with a horizon do not forward to each other (the Linux port isolated flag)")
    rate_limit: str | None = _k(v.OptText(), None, "rate limit as RouterOS text (kept, applied later)")
    comment: str = _k(v.Text(), "", "free text")


# The RouterOS built-ins. `default`: change-tcp-mss=yes, use-ipv6=yes, the rest `default` (no).
DEFAULT_PROFILE = Profile(name="default", change_tcp_mss=True, use_ipv6=UseIpv6.YES)
# `default-encryption`: as `default` but use-encryption=yes.
DEFAULT_ENCRYPTION_PROFILE = Profile(name="default-encryption", change_tcp_mss=True,
                                     use_encryption=UseEncryption.YES)
BUILTIN_PROFILES: dict[str, Profile] = {p.name: p for p in (DEFAULT_PROFILE, DEFAULT_ENCRYPTION_PROFILE)}


@dataclass(frozen=True, slots=True, kw_only=True)
class L2tpSecret:
    """``/ppp l2tp-secret``: the tunnel secret (RFC 2661 §5.1.1 challenge) for peers in ``address``."""

    address: IPNetwork = _k(v.Prefix(), IPv4Network("0.0.0.0/0"), "peers this secret is for")
    secret: str = _k(v.Text(non_empty=True), doc="the shared tunnel secret", secret=True)
    comment: str = _k(v.Text(), "", "free text")


@dataclass(frozen=True, slots=True, kw_only=True)
class Aaa:
    """``/ppp aaa``."""

    use_radius: bool = _k(v.Bool(), False, "ask RADIUS for users without a local secret")
    accounting: bool = _k(v.Bool(), True, "send RADIUS accounting")
    interim_update: float | None = _k(v.Time(0, None, zero_is_none=True), None,
                                      "accounting interim interval; 0s = off")


@dataclass(frozen=True, slots=True, kw_only=True)
class PppMenu:
    secret: tuple[Secret, ...] = _array(Secret)
    profile: tuple[Profile, ...] = _array(Profile, (DEFAULT_PROFILE, DEFAULT_ENCRYPTION_PROFILE))
    l2tp_secret: tuple[L2tpSecret, ...] = _array(L2tpSecret)
    aaa: Aaa = _table(Aaa)


# --- /ip pool -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    """``/ip pool``: addresses handed out to sessions."""

    name: str = _k(v.Name("pool name"), doc="pool name (must not look like an address)")
    ranges: tuple[AddressRange, ...] = _k(v.Ranges(), doc='"10.0.0.2-10.0.0.254,10.1.0.0/24"')
    next_pool: str | None = _k(v.OptName("pool name"), None, "pool to use when this one is exhausted")
    comment: str = _k(v.Text(), "", "free text")


@dataclass(frozen=True, slots=True, kw_only=True)
class IpMenu:
    pool: tuple[Pool, ...] = _array(Pool)


# --- /radius ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RadiusServer:
    """``/radius``: a RADIUS server; several are tried in order."""

    address: IPAddress = _k(v.IP(), doc="the server's address")
    secret: str = _k(v.Text(non_empty=True), doc="shared secret", secret=True)
    service: tuple[RadiusService, ...] = _k(v.EnumSet(RadiusService), (RadiusService.PPP,),
                                            "services using it (fastl2tp uses ppp)", "(empty)")
    authentication_port: int = _k(v.Int(1, 65535), 1812, "UDP port for Access-Request")
    accounting_port: int = _k(v.Int(1, 65535), 1813, "UDP port for Accounting-Request")
    timeout: float = _k(v.Time(0.001, 60), 1.1, "wait for an answer before retrying", "300ms (v6)")
    src_address: IPAddress | None = _k(v.OptIP(), None, "source address of requests (unset: any)")
    require_message_auth: bool = _k(v.Bool(), True,
                                    "refuse replies without a valid Message-Authenticator (Blast-RADIUS)")
    disabled: bool = _k(v.Bool(), False, "a disabled server is not asked")
    comment: str = _k(v.Text(), "", "free text")


@dataclass(frozen=True, slots=True, kw_only=True)
class RadiusIncoming:
    """``/radius incoming``: Disconnect and CoA requests (RFC 5176)."""

    accept: bool = _k(v.Bool(), False, "listen for Disconnect/CoA requests")
    port: int = _k(v.Int(1, 65535), 1700, "UDP port (1700 as RouterOS; RFC 5176 says 3799)")


# --- fastl2tp only ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Daemon:
    """``[daemon]``: settings of fastl2tpd itself (no RouterOS equivalent)."""

    socket: str = _k(v.AbsPath(), "/run/fastl2tp/fastl2tpd.sock", "control socket path")
    log_level: LogLevel = _k(v.EnumKind(LogLevel), LogLevel.INFO, "log level")


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """``[metrics]``: the Prometheus endpoint (no RouterOS equivalent). Off unless ``listen`` is set,
    because it publishes user names and traffic to whoever can reach the port."""

    listen: str | None = _k(v.OptHostPort(), None,
                            'serve /metrics on this address:port ("127.0.0.1:9117", "[::1]:9117"); unset = off')


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration. ``Config()`` is the empty one: nothing enabled, the built-in profiles."""

    l2tp_server: L2tpServerMenu = _table(L2tpServerMenu)
    l2tp_client: tuple[L2tpClient, ...] = _array(L2tpClient)
    ppp: PppMenu = _table(PppMenu)
    ip: IpMenu = _table(IpMenu)
    radius: tuple[RadiusServer, ...] = _array(RadiusServer)
    radius_incoming: RadiusIncoming = _table(RadiusIncoming)
    daemon: Daemon = _table(Daemon)
    metrics: Metrics = _table(Metrics)
