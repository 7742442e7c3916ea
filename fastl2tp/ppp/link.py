"""One PPP link per L2TP session: LCP, authentication and the NCPs composed, sans-IO (RFC 1661 §3).

Phases (RFC 1661 §3.2), one :class:`Phase` at a time::

    Dead --open--> Establish --LCP up--> Authenticate --all auth ok--> Network
                      ^   (no auth negotiated: straight to Network)       |
                      +---- LCP renegotiates (peer Configure-Request) ----+
    any phase --close / peer Terminate-Request / keepalive / failure--> Terminate --LCP finished--> Dead

- Establish: only LCP runs. When it opens, an ``Authenticator`` (we authenticate the peer: the
  method LCP negotiated as ``auth``) and/or an ``AuthPeer`` (the peer authenticates us:
  ``peer_auth``) start; with neither, the link goes straight to Network.
- Authenticate: the server's ``VerifyRequest`` leaves as :class:`AuthRequested`; the runtime checks it
  (``verify_locally`` or RADIUS) and answers :meth:`PppLink.complete_auth`, optionally with the
  ``IpcpConfig`` for this user (on RouterOS the remote address comes from the user's secret or profile).
  A failure terminates the link ("authentication failed: user ex: E=691 ...").
- Network: IPCP (and IPv6CP with ``use_ipv6``) start only now (RFC 1661 §3.5), and CCP with MPPE
  beside them (not tied to IPCP) when ``use_encryption`` is YES or REQUIRED and the authentication left
  MS-CHAP key material (see "Encryption" below).
- Terminate: LCP is closing (our Terminate-Request, or the peer's acked); NCPs and authentication
  are gone. Dead follows when LCP finishes, and then :class:`LinkDown` goes out, exactly once, with
  the first cause as its reason.

Receive (``receive_frame``) dispatches by protocol through one table built in ``__init__``: LCP;
PAP/CHAP to the authentication machines (during Authenticate and Network); IPCP/IPv6CP to the NCPs
(in Network; before it they are discarded and counted, RFC 1661 §3.5); IPv4/IPv6 data and MPPE
data (0x00FD) are only counted (the data plane carries data; before its NCP/CCP is up it is a counted
drop); anything else (MPLSCP, CDP, LQR, EAP, CCP with ``use_encryption`` NO or without MS-CHAP keys,
IPv6CP without ``use_ipv6``) is Protocol-Rejected
while LCP is Opened (RFC 1661 §5.7) and dropped otherwise. Every received frame counts as life for
the keepalive. Frames that do not decode are dropped and counted; nothing the peer sends raises.

Output: ``take_frames()`` gives whole PPP frames, always ``FF 03`` and a two-octet protocol (SoftEther
drops anything else), in the order the machines produced them (an auth Failure precedes the LCP
Terminate-Request it causes).

Encryption (``use_encryption``, RouterOS ``use-encryption``; the server may set it per user with
``complete_auth(..., use_encryption=...)``, from the user's profile):

=========  =====================================  ==========================================
policy     peer agrees on MPPE                    no MPPE (peer rejects CCP/MPPE, no common
                                                  key length, PAP/CHAP: no MS-CHAP keys)
=========  =====================================  ==========================================
NO         CCP is Protocol-Rejected               CCP is Protocol-Rejected
YES        ``EncryptionUp(keys, encoding)``        ``EncryptionRefused(reason)``, unencrypted
REQUIRED   ``EncryptionUp(keys, encoding)``        LinkDown ``ENCRYPTION_REFUSED`` (or
                                                  ``ENCRYPTION_NEEDS_MSCHAP`` without keys)
=========  =====================================  ==========================================

``NetworkUp`` never waits for CCP; with REQUIRED the runtime must not pass IP before ``EncryptionUp``.
The keys are derived (``ppp.mppe.derive_keys``) from the MS-CHAP authentication we were the
authenticator of (else the one we were authenticated by), for our side of it.

Sans-IO (aioquic shape): ``receive_frame(frame, now)``, ``handle_timer(now)``, ``get_timer()``, commands
``open``, ``close``, ``lower_down``, ``complete_auth``, ``send_reset_request``; output ``take_frames()`` and ``next_event()``.

Bridging (``LinkConfig.bcp``, or ``complete_auth(..., bridged=True)`` from the user's profile): the
link runs BCP (RFC 3518) instead of IPCP and IPv6CP, which are then Protocol-Rejected: the session is
a bridge port with no IP of its own. BCP opening reports ``BridgeUp``; bridged frames (0x0031) are the
data plane's.

Multilink (RFC 1990: both ends negotiated an MRRU; a peer that rejects ours falls back to plain PPP):
after authentication the link reports ``MultilinkUp`` and waits for the runtime, which knows the other
links: ``start_network`` (this link runs the bundle's NCPs) or ``join_bundle`` (a further link of a
bundle: no NCPs; the runtime gives its NCP frames to the link that runs them). ``keep_network`` (set by
the runtime while the bundle has other links) makes a link that goes down keep its NCP machines for
``release_network``, so that another link can ``adopt_network`` them: the bundle stays up. MPPE over a
bundle is not supported: YES goes on unencrypted (``EncryptionRefused``), REQUIRED terminates.
Time comes in as ``now``; randomness (magic, challenges, identifiers) from ``rng(n) -> bytes``.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from secrets import token_bytes  # the CSPRNG; tests inject their own rng
from typing import Any

from ..errors import DecodeError, LocalUsageError
from ..wire.auth import PROTO_CHAP, PROTO_PAP, AuthMethod
from ..wire.ppp import Protocol, decode_frame, encode_frame_header
from .auth import (
    AuthConfig,
    AuthDecision,
    Authenticator,
    AuthFailed,
    AuthPeer,
    AuthState,
    AuthSucceeded,
    MppeKeyMaterial,
    VerifyRequest,
)
from .bcp import Bcp, BcpConfig, BcpValues
from .ccp import Ccp, CcpConfig, CcpValues, Encryption, ResetAcked, ResetRequested
from .events import (
    AuthRequested,
    AuthResult,
    BridgeDown,
    BridgeUp,
    EncryptionDown,
    EncryptionRefused,
    EncryptionResetAcked,
    EncryptionResetRequested,
    EncryptionUp,
    Ipv6Up,
    LinkDown,
    LinkEvent,
    MultilinkUp,
    NetworkDown,
    NetworkUp,
    Role,
)
from .fsm import (
    NEGOTIATING,
    TERMINATING,
    ControlProtocol,
    LayerDown,
    LayerFinished,
    LayerUp,
    PppEvent,
    ProtocolRejected,
    State,
)
from .ipcp import Ipcp, IpcpConfig, IpcpValues
from .ipv6cp import Ipv6cp, Ipv6cpConfig, Ipv6cpValues
from .lcp import Lcp, LcpConfig, LcpValues
from .mppe import MppeKeys, derive_keys

__all__ = [
    "ADMINISTRATIVE",
    "ENCRYPTION_NEEDS_MSCHAP",
    "ENCRYPTION_OVER_MULTILINK",
    "ENCRYPTION_REFUSED",
    "Encryption",
    "LinkConfig",
    "NetworkState",
    "Phase",
    "PppLink",
    "Role",
]

_log = logging.getLogger(__name__)

Rng = Callable[[int], bytes]

ADMINISTRATIVE = "administrative"
ENCRYPTION_REFUSED = "encryption required but the peer refused MPPE"
ENCRYPTION_NEEDS_MSCHAP = "encryption required but MPPE needs MS-CHAPv1 or MS-CHAPv2 authentication"
ENCRYPTION_OVER_MULTILINK = ("encryption required but MPPE over a multilink bundle is not supported "
                             "(set mrru=disabled on one end)")

_ROUTEROS_AUTHENTICATION = (AuthMethod.MSCHAP1, AuthMethod.MSCHAP2)
_ROUTEROS_ALLOW = (AuthMethod.MSCHAP2, AuthMethod.MSCHAP1, AuthMethod.CHAP, AuthMethod.PAP)
_FINISHED = frozenset({State.INITIAL, State.STARTING, State.CLOSED, State.STOPPED})
_MAX_SETTLE_ROUNDS = 64  # event cascades are a few rounds deep; this only bounds a bug


class Phase(enum.Enum):
    """RFC 1661 §3.2 link phases."""

    DEAD = "dead"
    ESTABLISH = "establish"
    AUTHENTICATE = "authenticate"
    NETWORK = "network"
    TERMINATE = "terminate"


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Everything one link needs; names follow RouterOS where it has them.

    lcp: MRU, max-mtu, magic, keepalive (``keepalive_timeout_s``, None disables), timers, multilink.
        Its ``authenticate``/``allow`` are ignored: the link sets them from the role and the two
        fields below.
    authenticate: server role, the methods we require, in order (RouterOS ``authentication=``);
        empty: no authentication, straight to Network.
    allow: client role, the methods we accept to authenticate with, in order of preference.
    username / password: client role credentials (never logged, not in repr).
    auth_name: our name in CHAP Challenges (server role; RouterOS/pppd send the host name).
    auth: timers and retry limits of the authentication machines.
    ipcp: IPCP configuration. Server role: None means "decided at authentication time": the
        ``IpcpConfig`` then comes with ``complete_auth(..., ipcp=...)``. Client role: None is the
        default client (ask for 0.0.0.0, take what the server gives).
    use_ipv6 / ipv6cp: run IPv6CP; when off, IPv6CP is Protocol-Rejected.
    use_encryption: MPPE policy (RouterOS ``use-encryption``, see the module docstring): NO
        Protocol-Rejects CCP; YES offers MPPE and goes on without; REQUIRED terminates without.
        The server may override it per user in ``complete_auth``.
    ccp: MPPE key lengths and stateless/stateful preferences, CCP timers.
    bcp: bridge the link (BCP instead of IPCP/IPv6CP) with this configuration; None: not bridged (BCP
        is Protocol-Rejected). The server may switch it per user in ``complete_auth``.
    """

    lcp: LcpConfig = field(default_factory=LcpConfig)
    authenticate: tuple[AuthMethod, ...] = _ROUTEROS_AUTHENTICATION
    allow: tuple[AuthMethod, ...] = _ROUTEROS_ALLOW
    username: str = ""
    password: str = field(default="", repr=False)
    auth_name: str = "fastl2tp"
    auth: AuthConfig = field(default_factory=AuthConfig)
    ipcp: IpcpConfig | None = None
    use_ipv6: bool = False
    ipv6cp: Ipv6cpConfig = field(default_factory=Ipv6cpConfig)
    use_encryption: Encryption = Encryption.NO
    ccp: CcpConfig = field(default_factory=CcpConfig)
    bcp: BcpConfig | None = None


@dataclass(slots=True)
class NetworkState:
    """A bundle's network layer as one link hands it to another (``release_network`` /
    ``adopt_network``): the NCP machines as they are, mid-negotiation or opened, and what they settled."""

    ipcp: Ipcp | None
    ipv6cp: Ipv6cp | None
    ccp: Ccp | None
    bcp: Bcp | None
    ipcp_values: IpcpValues | None
    ipv6cp_values: Ipv6cpValues | None
    ccp_values: CcpValues | None
    bcp_values: BcpValues | None
    bridged: bool
    use_encryption: Encryption
    ncp_finished_reason: str | None


class PppLink:
    """One PPP link in the ``role`` given (see the module docstring).

    State visible to the runtime: ``phase``, ``lcp_values`` (after LCP opened), ``ipcp_values`` /
    ``ipv6cp_values`` (after each NCP opened), ``auth_decision`` (after authentication succeeded: what
    the backend granted, or on the client the keys for MPPE), ``ccp_values`` and ``mppe_keys`` (while
    MPPE is up), ``use_encryption`` (the policy in force), ``down_reason`` (once terminating) and
    ``counters`` (drops and oddities by name). The sub-machines are ``lcp``, ``authenticator``,
    ``auth_peer``, ``ipcp``, ``ipv6cp`` and ``ccp`` (None when not running).
    """

    def __init__(
        self,
        role: Role,
        config: LinkConfig,
        *,
        rng: Rng = token_bytes,
        now: float = 0.0,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        if not isinstance(role, Role):
            raise LocalUsageError(f"role must be a Role, not {role!r}")
        if role is Role.SERVER and config.ipcp is None and not config.authenticate:
            raise LocalUsageError("server without authentication needs an IPCP configuration")
        if role is Role.CLIENT and config.allow and not config.username:
            raise LocalUsageError("client that may authenticate needs a username")
        self.role = role
        self.config = config
        self.created_at = now
        self._rng = rng
        self._log: logging.Logger | logging.LoggerAdapter = logger if logger is not None else _log
        if role is Role.SERVER:
            lcp_config = replace(config.lcp, authenticate=config.authenticate, allow=())
        else:
            lcp_config = replace(config.lcp, authenticate=(), allow=config.allow)
        self.lcp = Lcp(lcp_config, rng=rng)
        self.authenticator: Authenticator | None = None
        self.auth_peer: AuthPeer | None = None
        self.ipcp: Ipcp | None = None
        self.ipv6cp: Ipv6cp | None = None
        self.ccp: Ccp | None = None
        self.bcp: Bcp | None = None
        self.bridged = config.bcp is not None  # BCP instead of IPCP/IPv6CP
        self._bcp_config = config.bcp
        self.bcp_values: BcpValues | None = None
        self.multilink = False  # both ends negotiated an MRRU (set when LCP opens)
        self.bundle_member = False  # join_bundle: a further link of a bundle, without NCPs
        self._awaiting_bundle = False  # MultilinkUp sent, start_network / join_bundle not yet called
        self.keep_network = False  # the runtime: keep the NCPs for release_network when going down
        self._released: NetworkState | None = None
        self.phase = Phase.DEAD
        self.lcp_values: LcpValues | None = None
        self.ipcp_values: IpcpValues | None = None
        self.ipv6cp_values: Ipv6cpValues | None = None
        self.auth_decision: AuthDecision | None = None
        self.ccp_values: CcpValues | None = None
        self.mppe_keys: MppeKeys | None = None
        self.use_encryption = config.use_encryption
        self._encryption_refused = False  # EncryptionRefused went out for this negotiation
        self._mppe_material: dict[Role, MppeKeyMaterial] = {}  # by our role in the MS-CHAP exchange
        self._auth_method: AuthMethod | None = None  # the last method that succeeded, for reasons
        self.down_reason: str | None = None
        self.counters: dict[str, int] = {}
        self._opened = False
        self._link_down_sent = False
        self._auth_ipcp: IpcpConfig | None = None  # the IpcpConfig given with the auth decision
        self._auth_ccp: CcpConfig | None = None  # the CcpConfig given with the auth decision
        self._peer_name = ""  # who authenticated (server role), for reasons and logs
        self._ncp_finished_reason: str | None = None
        self._frames: list[bytes] = []
        self._events: deque[LinkEvent] = deque()
        # Dispatch by protocol (DESIGN: one table, unknown protocols rejected in one place).
        self._receivers: dict[int, Callable[[int, bytes, float], None]] = {
            Protocol.LCP: self._rx_lcp,
            PROTO_PAP: self._rx_auth,
            PROTO_CHAP: self._rx_auth,
            Protocol.IPCP: self._rx_ncp,
            Protocol.IPV4: self._rx_data,
            Protocol.IPV6: self._rx_data,
            Protocol.CCP: self._rx_ccp,
            Protocol.COMPRESSED: self._rx_compressed,
            Protocol.BCP: self._rx_bcp,
            Protocol.BRIDGED: self._rx_bridged,
            Protocol.MP: self._rx_mp,
        }
        if config.use_ipv6:
            self._receivers[Protocol.IPV6CP] = self._rx_ncp

    # --- commands ------------------------------------------------------------------------------

    def open(self, now: float) -> None:
        """Start the link: the L2TP session is up (lower layer Up) and we want PPP (administrative Open)."""
        if self._opened:
            return
        self._opened = True
        self.phase = Phase.ESTABLISH
        self.lcp.open(now)
        self.lcp.lower_up(now)
        self._settle(now)

    def close(self, reason: str, now: float) -> None:
        """Administrative close (``reason`` e.g. ``ADMINISTRATIVE``): LCP Terminate-Request carrying it;
        LinkDown once LCP finished (Terminate-Ack, or after Max-Terminate tries)."""
        if self.phase is Phase.DEAD:
            if not self._opened:
                self._opened = True
                self._dead(reason)
            return
        self._terminate(reason, now)
        self._settle(now)

    def lower_down(self, now: float, reason: str = "L2TP session closed") -> None:
        """The L2TP session is gone: no more frames either way; the link is Dead at once."""
        if self.phase is Phase.DEAD:
            if not self._opened:
                self._opened = True
                self._dead(reason)
            return
        self._enter_terminate(reason)
        self.lcp.lower_down(now, reason)
        self.lcp.close(reason, now)
        self._settle(now)

    def complete_auth(
        self, request_id: int, decision: AuthDecision, now: float, *, ipcp: IpcpConfig | None = None,
        use_encryption: Encryption | None = None, ccp: CcpConfig | None = None, bridged: bool | None = None,
        bcp: BcpConfig | None = None,
    ) -> bool:
        """Server role: answer the ``AuthRequested`` with this ``request_id``. ``ipcp`` (on accept) is
        the IPCP configuration for this user, replacing ``LinkConfig.ipcp`` (the addresses from the
        user's secret/profile or from RADIUS); ``use_encryption`` (on accept) the user's profile's
        policy, replacing ``LinkConfig.use_encryption``; ``ccp`` (on accept) the user's MPPE key lengths
        and stateless/stateful preferences, replacing ``LinkConfig.ccp``; ``bridged`` (on accept) whether
        the user's session is a bridge port (BCP, with ``bcp`` or ``LinkConfig.bcp`` or the defaults)
        instead of routed (IPCP). Returns False if that request is no longer
        pending (the link terminated, or a stale id); then nothing happens."""
        if self.authenticator is None or self.phase not in (Phase.AUTHENTICATE, Phase.NETWORK):
            return False
        if not self.authenticator.complete(request_id, decision, now):
            return False
        if decision.accepted and ipcp is not None:
            self._auth_ipcp = ipcp
        if decision.accepted and use_encryption is not None:
            self.use_encryption = use_encryption
        if decision.accepted and ccp is not None:
            self._auth_ccp = ccp
        if decision.accepted and bridged is not None:
            self.bridged = bridged
            if bcp is not None:
                self._bcp_config = bcp
        self._settle(now)
        return True

    def start_network(self, now: float) -> None:
        """Multilink: this link runs the NCPs of its (new) bundle. No-op unless ``MultilinkUp`` waits."""
        if not self._awaiting_bundle or self.phase is not Phase.NETWORK:
            return
        self._awaiting_bundle = False
        self._start_ncps(now)
        self._settle(now)

    def join_bundle(self, now: float) -> None:
        """Multilink: this link joins a bundle whose NCPs run on another link: it starts none."""
        if not self._awaiting_bundle or self.phase is not Phase.NETWORK:
            return
        self._awaiting_bundle = False
        self.bundle_member = True
        self._log.info("joined a multilink bundle")

    def release_network(self) -> NetworkState | None:
        """The NCPs this link kept when it went down with ``keep_network`` set (once), else None."""
        state, self._released = self._released, None
        return state

    def adopt_network(self, state: NetworkState, now: float) -> bool:
        """Run a bundle's NCPs handed over from another link (``release_network``): this link must be a
        bundle member in the Network phase. Their frames go out on this link from now on."""
        if self.phase is not Phase.NETWORK or not self.bundle_member:
            return False
        self.bundle_member = False
        self.ipcp, self.ipv6cp, self.ccp, self.bcp = state.ipcp, state.ipv6cp, state.ccp, state.bcp
        self.ipcp_values, self.ipv6cp_values = state.ipcp_values, state.ipv6cp_values
        self.ccp_values, self.bcp_values = state.ccp_values, state.bcp_values
        self.bridged, self.use_encryption = state.bridged, state.use_encryption
        self._ncp_finished_reason = state.ncp_finished_reason
        self._log.info("now runs the bundle's network protocols")
        self._settle(now)
        return True

    def send_reset_request(self, now: float) -> bool:
        """The data plane lost MPPE sync (stateful mode): send a CCP Reset-Request (rate limited by
        ``CcpConfig.reset_timeout_s``). True if one went out."""
        if self.ccp is None or self.phase is not Phase.NETWORK:
            return False
        sent = self.ccp.send_reset_request(now)
        self._settle(now)
        return sent

    # --- input ---------------------------------------------------------------------------------

    def receive_frame(self, frame: bytes | bytearray | memoryview, now: float) -> None:
        """A whole PPP frame from the peer as carried in L2TP (FF 03 optional, PFC accepted)."""
        if self.phase is Phase.DEAD:
            self._count("rx_while_dead")
            return
        self.lcp.note_rx(now)  # anything received is life (keepalive)
        try:
            decoded = decode_frame(frame)
        except DecodeError:
            self._count("malformed_frame")
            return
        receiver = self._receivers.get(decoded.protocol, self._rx_unsupported)
        receiver(decoded.protocol, decoded.payload, now)
        self._settle(now)

    def handle_timer(self, now: float) -> None:
        for name in ("lcp", "authenticator", "auth_peer", "ipcp", "ipv6cp", "ccp", "bcp"):
            if self.phase is Phase.DEAD:
                return
            machine = getattr(self, name)
            if machine is not None:
                deadline = machine.get_timer()
                if deadline is not None and deadline <= now:
                    machine.handle_timer(now)
                    self._settle(now)

    # --- output --------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest time ``handle_timer`` must be called, or None."""
        if self.phase is Phase.DEAD:
            return None
        deadlines = [
            t for m in self._machines() if (t := m.get_timer()) is not None
        ]
        return min(deadlines) if deadlines else None

    def take_frames(self) -> list[bytes]:
        """PPP frames to send, oldest first: FF 03, a two-octet protocol, the information field."""
        frames, self._frames = self._frames, []
        return frames

    def next_event(self) -> LinkEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def is_dead(self) -> bool:
        return self.phase is Phase.DEAD and self._opened

    # --- receive handlers ------------------------------------------------------------------------

    def _rx_lcp(self, protocol: int, payload: bytes, now: float) -> None:
        self.lcp.receive(payload, now)

    def _rx_auth(self, protocol: int, payload: bytes, now: float) -> None:
        if self.phase not in (Phase.AUTHENTICATE, Phase.NETWORK):
            self._count("auth_outside_phase")
            return
        # A request/response goes to the side that verifies, a challenge or verdict to the side
        # being verified: PAP code 1 and CHAP code 2 are for the authenticator.
        to_authenticator = bool(payload) and payload[0] == (1 if protocol == PROTO_PAP else 2)
        first, second = (
            (self.authenticator, self.auth_peer) if to_authenticator else (self.auth_peer, self.authenticator)
        )
        for machine in (first, second):
            if machine is not None and machine.method.protocol == protocol:
                machine.receive(payload, now)
                return
        self._count("auth_not_negotiated")

    def _rx_ncp(self, protocol: int, payload: bytes, now: float) -> None:
        machine = self.ipcp if protocol == Protocol.IPCP else self.ipv6cp
        if self.phase is Phase.NETWORK and self.bridged and not self.bundle_member:
            self._rx_unsupported(protocol, payload, now)  # a bridge port has no IP of its own
            return
        if self.phase is not Phase.NETWORK or machine is None:
            self._count("ncp_before_network")  # RFC 1661 §3.5: silently discarded
            return
        machine.receive(payload, now)

    def _rx_ccp(self, protocol: int, payload: bytes, now: float) -> None:
        if self.phase is Phase.NETWORK and self.ccp is not None:
            self.ccp.receive(payload, now)
        elif self.phase is not Phase.NETWORK and self.use_encryption is not Encryption.NO:
            self._count("ccp_before_network")  # RFC 1661 §3.5: silently discarded
        else:
            self._rx_unsupported(protocol, payload, now)  # NO, or no MS-CHAP keys for MPPE

    def _rx_bcp(self, protocol: int, payload: bytes, now: float) -> None:
        if self.phase is not Phase.NETWORK or self.bundle_member or self._awaiting_bundle:
            self._count("ncp_before_network")  # RFC 1661 §3.5: silently discarded
        elif self.bcp is not None:
            self.bcp.receive(payload, now)
        elif not self.bridged:
            self._rx_unsupported(protocol, payload, now)  # not a bridge port
        else:
            self._count("bcp_finished")

    def _rx_bridged(self, protocol: int, payload: bytes, now: float) -> None:
        if self.phase is Phase.NETWORK and self.bcp is not None and self.bcp.is_opened:
            self._count("data_seen")  # the data plane's job; here only counted
        else:
            self._count("data_dropped")

    def _rx_mp(self, protocol: int, payload: bytes, now: float) -> None:
        if self.multilink:
            self._count("mp_seen")  # the data plane's job (reassembly); here only counted
        else:
            self._rx_unsupported(protocol, payload, now)  # MRRU not negotiated (RFC 1990 §3)

    def _rx_compressed(self, protocol: int, payload: bytes, now: float) -> None:
        if self.phase is Phase.NETWORK and self.mppe_keys is not None:
            self._count("mppe_seen")  # the data plane's job; here only counted
        else:
            self._count("mppe_dropped")

    def _rx_data(self, protocol: int, payload: bytes, now: float) -> None:
        machine = self.ipcp if protocol == Protocol.IPV4 else self.ipv6cp
        if self.phase is Phase.NETWORK and machine is not None and machine.is_opened:
            self._count("data_seen")  # the data plane's job; here only counted
        else:
            self._count("data_dropped")

    def _rx_unsupported(self, protocol: int, payload: bytes, now: float) -> None:
        if self.lcp.is_opened:
            self.lcp.send_protocol_reject(protocol, payload, now)
            self._count("protocol_rejected")
        else:
            self._count("unknown_protocol_dropped")

    # --- the composition -----------------------------------------------------------------------

    def _machines(self) -> list[Any]:
        return [m for m in (self.lcp, self.authenticator, self.auth_peer, self.ipcp, self.ipv6cp, self.ccp,
                            self.bcp) if m is not None]

    def _collect(self) -> None:
        for machine in self._machines():
            for protocol, payload in machine.take_output():
                self._frames.append(encode_frame_header(protocol) + payload)

    def _settle(self, now: float) -> None:
        """Send what the machines produced and act on their events until nothing more happens."""
        for _ in range(_MAX_SETTLE_ROUNDS):
            self._collect()
            if not self._dispatch(now):
                break
        self._collect()
        # LCP may have stopped terminating without a This-Layer-Finished (e.g. Close in Closed).
        if self.phase is Phase.TERMINATE and self.lcp.state not in TERMINATING:
            self._dead(self.down_reason or ADMINISTRATIVE)

    def _dispatch(self, now: float) -> bool:
        handled = False
        while (ev := self.lcp.next_event()) is not None:
            handled = True
            self._on_lcp_event(ev, now)
        for name in ("authenticator", "auth_peer"):
            while (machine := getattr(self, name)) is not None and (aev := machine.next_event()) is not None:
                handled = True
                self._on_auth_event(name, aev, now)
        for name in ("ipcp", "ipv6cp", "bcp"):
            while (machine := getattr(self, name)) is not None and (nev := machine.next_event()) is not None:
                handled = True
                self._on_ncp_event(machine, nev, now)
        while (ccp := self.ccp) is not None and (cev := ccp.next_event()) is not None:
            handled = True
            self._on_ccp_event(cev, now)
        return handled

    def _on_lcp_event(self, ev: PppEvent, now: float) -> None:
        if self.phase is Phase.DEAD:
            return
        if isinstance(ev, LayerUp):
            self._lcp_up(ev.values, now)
        elif isinstance(ev, LayerDown):
            if self.lcp.state in NEGOTIATING:
                self._lcp_renegotiating(ev.reason)
            else:
                self._enter_terminate(ev.reason)
        elif isinstance(ev, LayerFinished):
            self._dead(ev.reason)
        elif isinstance(ev, ProtocolRejected):
            rejected = ev.rejected_protocol
            by_protocol: dict[int, ControlProtocol | None] = {
                Protocol.IPCP: self.ipcp, Protocol.IPV6CP: self.ipv6cp, Protocol.CCP: self.ccp,
                Protocol.BCP: self.bcp,
            }
            ncp = by_protocol.get(rejected)
            if ncp is not None:
                ncp.protocol_rejected(now)
            else:
                self._count(f"peer_rejected_0x{rejected:04x}")

    def _lcp_renegotiating(self, reason: str) -> None:
        """The peer sent a Configure-Request while LCP was Opened (RFC 1661 §4.1 RCR in Opened; also
        what a retransmission after a lost Configure-Ack looks like): back to Establish. Open NCPs
        report NetworkDown; authentication and the NCPs run again when LCP is up again (§3.2)."""
        if not self.keep_network:
            for ncp in (self.ipcp, self.ipv6cp):
                if ncp is not None and ncp.is_opened:
                    self._events.append(NetworkDown(ncp.protocol, reason))
            if self.bcp is not None and self.bcp.is_opened:
                self._events.append(BridgeDown(reason))
            if self.mppe_keys is not None:
                self._events.append(EncryptionDown(reason))
        self._drop_machines()
        self.bundle_member = self._awaiting_bundle = False
        self.phase = Phase.ESTABLISH
        self._log.info("LCP renegotiating: %s", reason)

    def _lcp_up(self, values: LcpValues, now: float) -> None:
        if self.phase is not Phase.ESTABLISH:
            self._count("lcp_up_out_of_phase")
            return
        self.lcp_values = values
        self.multilink = values.mrru is not None and values.peer_mrru is not None
        if self.role is Role.SERVER and self.config.authenticate and values.auth is None:
            self._terminate("no common authentication method", now)
            return
        cfg = self.config
        if values.auth is not None:
            self.authenticator = Authenticator(values.auth, cfg.auth_name, rng=self._rng, config=cfg.auth,
                                               logger=self._log)
        if values.peer_auth is not None:
            self.auth_peer = AuthPeer(values.peer_auth, cfg.username, cfg.password, rng=self._rng,
                                      config=cfg.auth, logger=self._log)
        if self.authenticator is None and self.auth_peer is None:
            self._enter_network(now)
            return
        self.phase = Phase.AUTHENTICATE
        for machine in (self.authenticator, self.auth_peer):
            if machine is not None:
                machine.start(now)

    def _on_auth_event(self, name: str, ev: Any, now: float) -> None:
        if self.phase not in (Phase.AUTHENTICATE, Phase.NETWORK):
            return
        role = Role.SERVER if name == "authenticator" else Role.CLIENT
        if isinstance(ev, VerifyRequest):
            self._peer_name = ev.username
            self._events.append(AuthRequested(ev))
        elif isinstance(ev, AuthSucceeded):
            self._log.debug("authenticated (%s): user=%s method=%s", role.value, ev.username, ev.method.value)
            self.auth_decision = ev.decision
            self._auth_method = ev.method
            if ev.decision.keys is not None:
                self._mppe_material[role] = ev.decision.keys
            self._events.append(AuthResult(role, ev.method, ev.username, True, decision=ev.decision))
            if self.phase is Phase.AUTHENTICATE and all(
                m.state is AuthState.SUCCEEDED for m in (self.authenticator, self.auth_peer) if m is not None
            ):
                self._enter_network(now)
        elif isinstance(ev, AuthFailed):
            self._events.append(AuthResult(role, ev.method, ev.username, False, ev.reason, ev.error_code))
            self._terminate(_auth_failure_reason(ev), now)

    def _enter_network(self, now: float) -> None:
        policy = self.use_encryption
        if policy is Encryption.REQUIRED and self.multilink:
            self._log.info("%s", ENCRYPTION_OVER_MULTILINK)
            self._terminate(ENCRYPTION_OVER_MULTILINK, now)
            return
        if policy is Encryption.REQUIRED and self._keys_source() is None:
            self._log.info("%s (authenticated with %s)", ENCRYPTION_NEEDS_MSCHAP, self._auth_name())
            self._terminate(ENCRYPTION_NEEDS_MSCHAP, now)
            return
        if not self.bridged and self._auth_ipcp is None and self.config.ipcp is None and self.role is Role.SERVER:
            who = f" for user {self._peer_name}" if self._peer_name else ""
            self._terminate(f"no IPv4 addresses{who}: none configured and none given with the "
                            "authentication decision", now)
            return
        self.phase = Phase.NETWORK
        self._ncp_finished_reason = None
        if self.multilink:
            assert self.lcp_values is not None
            self._awaiting_bundle = True
            self._events.append(MultilinkUp(self._peer_name, self.lcp_values.peer_endpoint, self.lcp_values))
            return
        self._start_ncps(now)

    def _start_ncps(self, now: float) -> None:
        """Network phase: the NCPs (IPCP and IPv6CP, or BCP when bridged) and CCP beside them."""
        policy = self.use_encryption
        ncps: list[ControlProtocol] = []
        if self.bridged:
            self.bcp = Bcp(self._bcp_config or BcpConfig(), rng=self._rng)
            ncps.append(self.bcp)
        else:
            self.ipcp = Ipcp(self._auth_ipcp or self.config.ipcp or IpcpConfig(), rng=self._rng)
            ncps.append(self.ipcp)
            if self.config.use_ipv6:
                self.ipv6cp = Ipv6cp(self.config.ipv6cp, rng=self._rng)
                ncps.append(self.ipv6cp)
        self._encryption_refused = False
        if policy is not Encryption.NO and self.multilink:
            self._refuse_encryption("MPPE over a multilink bundle is not supported", now)
        elif policy is not Encryption.NO:
            if self._keys_source() is None:
                self._refuse_encryption(f"MPPE needs MS-CHAPv1 or MS-CHAPv2 keys (authenticated with "
                                        f"{self._auth_name()})", now)
            else:
                self.ccp = Ccp(self._auth_ccp or self.config.ccp, rng=self._rng)
                ncps.append(self.ccp)
        for ncp in ncps:
            ncp.peer_mru = self.lcp.peer_mru
            ncp.open(now)
            ncp.lower_up(now)

    def _on_ncp_event(self, ncp: ControlProtocol, ev: PppEvent, now: float) -> None:
        if self.phase is not Phase.NETWORK:
            return
        mtu = self.lcp.peer_mru
        mru = self.lcp_values.mru if self.lcp_values is not None else mtu
        if isinstance(ev, LayerUp) and ncp is self.ipcp:
            v: IpcpValues = ev.values
            self.ipcp_values = v
            server = self.role is Role.SERVER
            self._log.info("IPCP up: local=%s peer=%s", v.address, v.peer_address)
            self._events.append(NetworkUp(
                v.address, v.peer_address,
                v.peer_dns if server else v.dns,
                v.peer_nbns if server else v.nbns,
                mtu, mru, v,
            ))
        elif isinstance(ev, LayerUp) and ncp is self.bcp:
            b: BcpValues = ev.values
            self.bcp_values = b
            self._log.info("BCP up: %s", b.describe())
            self._events.append(BridgeUp(mtu, mru, b))
        elif isinstance(ev, LayerDown) and ncp is self.bcp:
            self.bcp_values = None
            self._events.append(BridgeDown(ev.reason))
        elif isinstance(ev, LayerUp):
            w: Ipv6cpValues = ev.values
            self.ipv6cp_values = w
            self._events.append(Ipv6Up(w.interface_id, w.peer_interface_id, mtu, mru, w))
        elif isinstance(ev, LayerDown):
            self._events.append(NetworkDown(ncp.protocol, ev.reason))
        elif isinstance(ev, LayerFinished):
            if self._ncp_finished_reason is None:
                self._ncp_finished_reason = ev.reason
            running = [m for m in (self.ipcp, self.ipv6cp, self.bcp) if m is not None and m.state not in _FINISHED]
            if not running:  # no network protocol left (pppd does the same); the first one's reason
                self._terminate(self._ncp_finished_reason, now)

    # --- encryption (CCP/MPPE) ------------------------------------------------------------------

    def _auth_name(self) -> str:
        return self._auth_method.value if self._auth_method is not None else "no authentication"

    def _keys_source(self) -> tuple[MppeKeyMaterial, bool] | None:
        """The MS-CHAP key material for MPPE and whether we were its authenticator (RFC 3079 IsServer)."""
        for role in (Role.SERVER, Role.CLIENT):
            material = self._mppe_material.get(role)
            if material is None:
                continue
            try:
                material.start_keys(is_server=role is Role.SERVER)
            except LocalUsageError:
                continue  # e.g. a RADIUS accept without MS-MPPE keys
            return material, role is Role.SERVER
        return None

    def _on_ccp_event(self, ev: PppEvent, now: float) -> None:
        if self.phase is not Phase.NETWORK or self.ccp is None:
            return
        if isinstance(ev, LayerUp):
            values: CcpValues = ev.values
            self.ccp_values = values
            agreed = values.agreed
            source = self._keys_source()
            if agreed is None or source is None:
                self._encryption_failed(f"CCP opened without common MPPE ({values.encoding or 'none'})", now)
                return
            material, is_server = source
            self.mppe_keys = derive_keys(material, is_server=is_server, bits=agreed.bits,
                                         stateless=agreed.stateless)
            self._encryption_refused = False
            self._log.info("encryption up: %s", values.encoding)
            self._events.append(EncryptionUp(self.mppe_keys, values.encoding, values))
        elif isinstance(ev, LayerDown):
            self.ccp_values = None
            if self.mppe_keys is not None:
                self.mppe_keys = None
                self._events.append(EncryptionDown(ev.reason))
        elif isinstance(ev, LayerFinished):
            self._encryption_failed(ev.reason, now)
        elif isinstance(ev, ResetRequested):
            self._events.append(EncryptionResetRequested())
        elif isinstance(ev, ResetAcked):
            self._events.append(EncryptionResetAcked())

    def _encryption_failed(self, detail: str, now: float) -> None:
        """No MPPE (after CCP tried): terminate with REQUIRED, else report once and close CCP."""
        self.mppe_keys = None
        if self.use_encryption is Encryption.REQUIRED:
            self._log.info("%s: %s", ENCRYPTION_REFUSED, detail)
            self._terminate(ENCRYPTION_REFUSED, now)
            return
        self._refuse_encryption(detail, now)
        if self.ccp is not None and self.ccp.state not in _FINISHED:
            self.ccp.close(detail, now)  # both directions unencrypted, cleanly

    def _refuse_encryption(self, detail: str, now: float) -> None:
        if not self._encryption_refused:
            self._encryption_refused = True
            self._log.info("no encryption: %s", detail)
            self._events.append(EncryptionRefused(detail))

    # --- termination ---------------------------------------------------------------------------

    def _terminate(self, reason: str, now: float) -> None:
        """Close LCP with ``reason`` (our Terminate-Request); Dead follows when LCP finishes."""
        if self.phase in (Phase.TERMINATE, Phase.DEAD):
            return
        self._enter_terminate(reason)
        self.lcp.close(reason, now)

    def _enter_terminate(self, reason: str) -> None:
        if self.down_reason is None:
            self.down_reason = reason
        if self.phase is not Phase.DEAD:
            self.phase = Phase.TERMINATE
        self._drop_machines()

    def _drop_machines(self) -> None:
        self._collect()  # what they already produced still goes out, in order
        if self.keep_network and not self.bundle_member and self._released is None and any(
                m is not None for m in (self.ipcp, self.ipv6cp, self.bcp)):
            self._released = NetworkState(
                self.ipcp, self.ipv6cp, self.ccp, self.bcp, self.ipcp_values, self.ipv6cp_values,
                self.ccp_values, self.bcp_values, self.bridged, self.use_encryption, self._ncp_finished_reason)
        self.authenticator = self.auth_peer = self.ipcp = self.ipv6cp = self.ccp = self.bcp = None
        self.mppe_keys = self.ccp_values = self.bcp_values = None

    def _dead(self, reason: str) -> None:
        if self.down_reason is None:
            self.down_reason = reason
        if self.phase is not Phase.DEAD:
            self._drop_machines()
            self.phase = Phase.DEAD
        if not self._link_down_sent:
            self._link_down_sent = True
            self._log.info("PPP link down: %s", self.down_reason)
            self._events.append(LinkDown(self.down_reason))

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1


def _auth_failure_reason(ev: AuthFailed) -> str:
    who = f"user {ev.username}: " if ev.name else ""
    reason = ev.reason or "rejected"
    if ev.error_code is not None and not reason.startswith(f"E={ev.error_code}"):
        reason = f"E={ev.error_code} {reason}"
    return f"authentication failed: {who}{reason}"
