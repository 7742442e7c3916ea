"""RouterOS rules on top of the configuration: which secret and profile a session uses, what its
settings come to, and IP pools that hand out addresses.

Precedence (RouterOS):

- the profile is ``profile_name_override`` (RADIUS Mikrotik-Group) if given, else the secret's
  ``profile``, else (a user without a local secret, e.g. from RADIUS) the server's ``default-profile``;
- the secret's own ``local-address``/``remote-address`` win over the profile's, and a single address
  over a pool (a secret holds addresses only; a profile may name a pool);
- a profile's ``default`` (``None``/``DEFAULT``) tri-states — use-encryption, use-ipv6, change-tcp-mss,
  only-one — take the value of the ``default`` profile, and where that says ``default`` too, the
  RouterOS built-in value (use-encryption no, use-ipv6 yes, change-tcp-mss yes, only-one no);
- other profile settings (addresses, DNS, timeouts, and the fastl2tp-only ``mppe-key-lengths`` and
  ``mppe-stateful``, which have no ``default`` value) are the chosen profile's own: RouterOS does not
  merge them with ``default``.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from ..errors import ConfigError
from .model import (
    AddressRange,
    Config,
    L2tpClient,
    L2tpServerInterface,
    MppeStateful,
    Pool,
    Profile,
    Route,
    Secret,
    Service,
    UseEncryption,
    UseIpv6,
)

__all__ = [
    "IpPool",
    "IpPools",
    "SessionParams",
    "effective_client",
    "effective_session",
    "find_profile",
    "find_secret",
    "static_interface",
]

# What `default` in the `default` profile itself comes to (RouterOS).
_BUILTIN_ENCRYPTION = UseEncryption.NO
_BUILTIN_IPV6 = UseIpv6.YES
_BUILTIN_CHANGE_TCP_MSS = True
_BUILTIN_ONLY_ONE = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionParams:
    """The settings one PPP session runs with, every ``default`` resolved.

    ``local_address``/``remote_address`` are an address, the name of an ``ip pool`` to allocate from
    (``IpPools``), or None (none configured: the client's own request decides, or no address).
    """

    profile: str
    local_address: IPv4Address | str | None
    remote_address: IPv4Address | str | None
    dns_server: tuple[IPv4Address, ...]
    wins_server: tuple[IPv4Address, ...]
    use_encryption: UseEncryption  # NO, YES or REQUIRED
    mppe_key_lengths: tuple[int, ...]  # MPPE key lengths allowed (40, 56, 128), largest first
    mppe_stateful: MppeStateful  # NO, ALLOW or PREFER
    use_ipv6: UseIpv6  # NO, YES or REQUIRED
    change_tcp_mss: bool
    only_one: bool
    session_timeout: float | None
    idle_timeout: float | None
    routes: tuple[Route, ...]
    rate_limit: str | None
    bridge: str | None
    bridge_horizon: int | None


def find_profile(config: Config, name: str) -> Profile:
    """The profile called ``name``; ConfigError if there is none."""
    for profile in config.ppp.profile:
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in config.ppp.profile)
    raise ConfigError(f'ppp.profile: no profile named "{name}" (known: {known})')


def find_secret(config: Config, name: str, service: Service = Service.L2TP) -> Secret | None:
    """The first enabled secret for ``name`` whose service is ``any`` or ``service``."""
    for secret in config.ppp.secret:
        if secret.name == name and not secret.disabled and secret.service in (Service.ANY, service):
            return secret
    return None


def static_interface(config: Config, user: str) -> L2tpServerInterface | None:
    """The first enabled ``/interface l2tp-server`` entry for ``user`` (its session gets that name;
    without one, or when it is in use, the session's interface is the dynamic ``<l2tp-USER>``)."""
    for entry in config.l2tp_server.interface:
        if entry.user == user and not entry.disabled:
            return entry
    return None


def _params(config: Config, profile: Profile, local: IPv4Address | str | None,
            remote: IPv4Address | str | None, routes: tuple[Route, ...]) -> SessionParams:
    base = find_profile(config, "default")
    use_encryption = profile.use_encryption
    if use_encryption is UseEncryption.DEFAULT:
        use_encryption = base.use_encryption
    if use_encryption is UseEncryption.DEFAULT:
        use_encryption = _BUILTIN_ENCRYPTION
    use_ipv6 = profile.use_ipv6
    if use_ipv6 is UseIpv6.DEFAULT:
        use_ipv6 = base.use_ipv6
    if use_ipv6 is UseIpv6.DEFAULT:
        use_ipv6 = _BUILTIN_IPV6
    change_tcp_mss = profile.change_tcp_mss
    if change_tcp_mss is None:
        change_tcp_mss = base.change_tcp_mss
    if change_tcp_mss is None:
        change_tcp_mss = _BUILTIN_CHANGE_TCP_MSS
    only_one = profile.only_one
    if only_one is None:
        only_one = base.only_one
    if only_one is None:
        only_one = _BUILTIN_ONLY_ONE
    return SessionParams(
        profile=profile.name,
        local_address=local,
        remote_address=remote,
        dns_server=profile.dns_server,
        wins_server=profile.wins_server,
        use_encryption=use_encryption,
        mppe_key_lengths=profile.mppe_key_lengths,
        mppe_stateful=profile.mppe_stateful,
        use_ipv6=use_ipv6,
        change_tcp_mss=change_tcp_mss,
        only_one=only_one,
        session_timeout=profile.session_timeout,
        idle_timeout=profile.idle_timeout,
        routes=routes,
        rate_limit=profile.rate_limit,
        bridge=profile.bridge,
        bridge_horizon=profile.bridge_horizon,
    )


def effective_session(config: Config, secret: Secret | None,
                      profile_name_override: str | None = None) -> SessionParams:
    """A server session's settings for ``secret`` (None: a user without a local secret, e.g. RADIUS),
    with RouterOS precedence (see the module text). ``profile_name_override`` is RADIUS's
    Mikrotik-Group. ConfigError if the profile does not exist."""
    if profile_name_override is not None:
        name = profile_name_override
    elif secret is not None:
        name = secret.profile
    else:
        name = config.l2tp_server.server.default_profile
    profile = find_profile(config, name)
    local: IPv4Address | str | None = profile.local_address
    remote: IPv4Address | str | None = profile.remote_address
    routes: tuple[Route, ...] = ()
    if secret is not None:
        if secret.local_address is not None:
            local = secret.local_address
        if secret.remote_address is not None:
            remote = secret.remote_address
        routes = secret.routes
    return _params(config, profile, local, remote, routes)


def effective_client(config: Config, client: L2tpClient) -> SessionParams:
    """A client session's settings: its profile's (addresses there are what the client asks for)."""
    profile = find_profile(config, client.profile)
    return _params(config, profile, profile.local_address, profile.remote_address, ())


# --- IP pools --------------------------------------------------------------------------------------


class IpPool:
    """One ``/ip pool``: hands out each address of its ranges to one owner at a time.

    Fresh addresses go out in order first; once every address has been used, released ones are
    reused oldest-released first (so that an address just given up is not handed straight to
    someone else). When the pool is exhausted, ``allocate`` falls through to ``next_pool``.
    """

    __slots__ = ("_cursor", "_released", "_span", "_spans", "_used", "name", "next_pool", "ranges", "total")

    def __init__(self, name: str, ranges: Iterable[AddressRange], next_pool: IpPool | None = None):
        self.name = name
        self.ranges = tuple(ranges)
        self.next_pool = next_pool
        self._spans = [(int(r.first), int(r.last)) for r in self.ranges]
        self.total = sum(last - first + 1 for first, last in self._spans)
        self._span = 0
        self._cursor = self._spans[0][0] if self._spans else 0
        self._used: dict[int, object] = {}
        self._released: deque[int] = deque()

    @classmethod
    def from_config(cls, pool: Pool, next_pool: IpPool | None = None) -> IpPool:
        return cls(pool.name, pool.ranges, next_pool)

    @property
    def used(self) -> int:
        return len(self._used)

    @property
    def available(self) -> int:
        return self.total - len(self._used)

    def __contains__(self, address: object) -> bool:
        return isinstance(address, IPv4Address) and any(first <= int(address) <= last
                                                         for first, last in self._spans)

    def __repr__(self) -> str:
        return f"IpPool({self.name!r}, used={self.used}, total={self.total})"

    def owner_of(self, address: IPv4Address) -> object | None:
        """Who holds ``address`` in this pool (not its next pools), or None."""
        return self._used.get(int(address))

    def leases(self) -> dict[IPv4Address, object]:
        """Every address in use in this pool and its owner (for ``ip pool used print``)."""
        return {IPv4Address(a): owner for a, owner in sorted(self._used.items())}

    def _chain(self) -> Iterator[IpPool]:
        seen: set[int] = set()
        pool: IpPool | None = self
        while pool is not None and id(pool) not in seen:
            seen.add(id(pool))
            yield pool
            pool = pool.next_pool

    def allocate(self, owner: object, prefer: IPv4Address | None = None) -> IPv4Address | None:
        """An address for ``owner`` from this pool or, when it is exhausted, from its next pools;
        None when all are exhausted. ``prefer`` (e.g. the address the peer asks for) is taken if it
        belongs to the pool and is free."""
        for pool in self._chain():
            address = pool._take(owner, prefer)
            if address is not None:
                return address
        return None

    def _take(self, owner: object, prefer: IPv4Address | None) -> IPv4Address | None:
        if prefer is not None and prefer in self and int(prefer) not in self._used:
            self._used[int(prefer)] = owner
            return prefer
        while self._span < len(self._spans):  # fresh addresses first
            last = self._spans[self._span][1]
            while self._cursor <= last:
                address = self._cursor
                self._cursor += 1
                if address not in self._used:
                    self._used[address] = owner
                    return IPv4Address(address)
            self._span += 1
            if self._span < len(self._spans):
                self._cursor = self._spans[self._span][0]
        while self._released:  # then the oldest released
            address = self._released.popleft()
            if address not in self._used:
                self._used[address] = owner
                return IPv4Address(address)
        return None

    def release(self, address: IPv4Address) -> bool:
        """Give ``address`` back to whichever pool of the chain holds it; False if none does."""
        key = int(address)
        for pool in self._chain():
            if key in pool._used:
                del pool._used[key]
                pool._released.append(key)
                return True
        return False


class IpPools(Mapping[str, IpPool]):
    """All ``/ip pool`` entries of a config, each linked to its ``next-pool``."""

    def __init__(self, pools: Iterable[Pool]):
        config_pools = list(pools)
        self._pools = {p.name: IpPool.from_config(p) for p in config_pools}
        for p in config_pools:
            if p.next_pool is not None:
                self._pools[p.name].next_pool = self._pools[p.next_pool]

    @classmethod
    def from_config(cls, config: Config) -> IpPools:
        return cls(config.ip.pool)

    def __getitem__(self, name: str) -> IpPool:
        return self._pools[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pools)

    def __len__(self) -> int:
        return len(self._pools)

    def allocate(self, pool: str, owner: object, prefer: IPv4Address | None = None) -> IPv4Address | None:
        return self._pools[pool].allocate(owner, prefer)

    def release(self, address: IPv4Address) -> bool:
        """Give an address back to the pool that holds it."""
        for pool in self._pools.values():
            if address in pool:
                return pool.release(address)
        return False
