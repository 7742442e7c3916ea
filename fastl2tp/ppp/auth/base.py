"""What every PPP authentication machine shares: events, the verification hand-off, configuration.

Two roles, sans-IO in the aioquic shape (``receive(payload, now)``, ``handle_timer(now)``,
``get_timer()``, ``take_output()``, ``next_event()``):

- ``Authenticator`` (server role) sends the challenge, and on a response emits ``VerifyRequest``. It
  never checks a secret itself: the caller answers ``complete(request_id, decision, now)`` with an
  ``AuthDecision``, from local secrets (``verify_locally``) or later from RADIUS, at its own pace.
  Then it sends Success/Failure and emits ``AuthSucceeded`` or ``AuthFailed``.
- ``AuthPeer`` (client role) answers challenges with its username and password (or sends the PAP
  request) and emits ``AuthSucceeded``/``AuthFailed``; for MS-CHAPv2 it checks the authenticator response.

``Authenticator(method, ...)`` and ``AuthPeer(method, ...)`` return the machine for that method
(PAP in ``pap.py``; CHAP-MD5, MS-CHAPv1 and MS-CHAPv2 share ``chap.py`` with one algorithm object each).

Output is ``(ppp_protocol, payload)`` tuples: the PAP or CHAP packet, without the PPP header.
Malformed input is dropped and counted in ``dropped``; nothing a peer sends raises out of a machine.
Passwords, hashes and keys never reach a log line or a ``repr``.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from secrets import token_bytes
from types import MappingProxyType
from typing import Any, Union

from ...errors import LocalUsageError
from ...wire.auth import AuthMethod
from . import crypto

Rng = Callable[[int], bytes]
Output = tuple[int, bytes]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Timers and limits of both roles.

    restart_interval_s: how long before a Challenge (server) or Authenticate-Request (PAP client) is
        sent again (RFC 1661's restart timer, 3 s).
    max_transmits: how many times it is sent in all; when the last one times out the machine fails
        (10, like Max-Configure). Also bounds waiting: a machine that waits for the other side (PAP
        server, CHAP client) gives up after ``restart_interval_s * max_transmits``.
    mschap_max_retries: how many more Responses an MS-CHAP authenticator takes after a failure
        (it says ``R=1`` while any are left, ``R=0`` after). 0: the first failure is final.
    retry_wait_s: how long an authenticator that said ``R=1`` waits for the new Response.
    rechallenge_interval_s: CHAP authenticator only: challenge again this long after success
        (RFC 1994 §2); None: never.
    challenge_len: CHAP-MD5 challenge length (MS-CHAP's are fixed: 8 for v1, 16 for v2).
    success_message: text of Success / Authenticate-Ack; None: "Login ok" for PAP (pppd's),
        "Access granted" for CHAP (pppd's). A decision's ``message`` wins over both.
    """

    restart_interval_s: float = 3.0
    max_transmits: int = 10
    mschap_max_retries: int = 0
    retry_wait_s: float = 60.0
    rechallenge_interval_s: float | None = None
    challenge_len: int = 16
    success_message: str | None = None

    def __post_init__(self) -> None:
        if self.restart_interval_s <= 0 or self.retry_wait_s <= 0:
            raise LocalUsageError("auth timers must be positive")
        if self.max_transmits < 1 or self.mschap_max_retries < 0:
            raise LocalUsageError("auth max_transmits must be >= 1 and mschap_max_retries >= 0")
        if not 1 <= self.challenge_len <= 255:
            raise LocalUsageError("CHAP challenge length must be 1..255")
        if self.rechallenge_interval_s is not None and self.rechallenge_interval_s <= 0:
            raise LocalUsageError("rechallenge interval must be positive")

    @property
    def wait_timeout_s(self) -> float:
        return self.restart_interval_s * self.max_transmits


# --- key material for MPPE (RFC 3079) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MppeKeyMaterial:
    """What MPPE needs from an MS-CHAP authentication. Secret: nothing of it appears in ``repr``.

    MS-CHAPv2: ``master_key`` (RFC 3079 §3.4), with ``nt_response`` and ``password_hash_hash`` it came from.
    MS-CHAPv1: ``password_hash_hash`` and ``challenge`` (RFC 3079 §2.4 Get_Start_Key), and ``lm_key``
    (first 8 octets of the LM hash, RFC 3079 §2.1) when the password was known.
    From RADIUS (RFC 2548 MS-MPPE-Send-Key/Recv-Key): ``send_key``/``recv_key`` as the server uses them.
    """

    method: AuthMethod
    master_key: bytes | None = field(default=None, repr=False)
    nt_response: bytes | None = field(default=None, repr=False)
    password_hash_hash: bytes | None = field(default=None, repr=False)
    challenge: bytes | None = field(default=None, repr=False)
    lm_key: bytes | None = field(default=None, repr=False)
    send_key: bytes | None = field(default=None, repr=False)
    recv_key: bytes | None = field(default=None, repr=False)

    def start_keys(self, *, is_server: bool, key_length: int = 16) -> tuple[bytes, bytes]:
        """(send, receive) start keys for our side, 8 or 16 octets, before any MPPE key change or salt.

        Keys given by RADIUS are the server's; a client swaps them. MS-CHAPv1 uses Get_Start_Key for
        both directions (as pppd does, also for 40-bit).
        """
        if self.send_key is not None and self.recv_key is not None:
            send, recv = self.send_key, self.recv_key
            if not is_server:
                send, recv = recv, send
            return send[:key_length], recv[:key_length]
        if self.master_key is not None:
            return (
                crypto.get_asymmetric_start_key(self.master_key, key_length, True, is_server),
                crypto.get_asymmetric_start_key(self.master_key, key_length, False, is_server),
            )
        if self.password_hash_hash is not None and self.challenge is not None:
            key = crypto.get_start_key_v1(self.challenge, self.password_hash_hash)[:key_length]
            return key, key
        raise LocalUsageError("no MPPE key material")


# --- what the authenticator asks the backend ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PapCredentials:
    password: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ChapMd5Credentials:
    """RADIUS: CHAP-Password = identifier + response, CHAP-Challenge = challenge."""

    identifier: int
    challenge: bytes
    response: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class MsChap1Credentials:
    """RADIUS: MS-CHAP-Challenge = challenge; MS-CHAP-Response = identifier, flags, lm, nt."""

    identifier: int
    challenge: bytes
    lm_response: bytes = field(repr=False)
    nt_response: bytes = field(repr=False)
    flags: int

    @property
    def use_nt(self) -> bool:
        return bool(self.flags & 1)


@dataclass(frozen=True, slots=True)
class MsChap2Credentials:
    """RADIUS: MS-CHAP-Challenge = authenticator_challenge; MS-CHAP2-Response = identifier, flags,
    peer_challenge, 8 zero octets, nt_response."""

    identifier: int
    authenticator_challenge: bytes
    peer_challenge: bytes
    nt_response: bytes = field(repr=False)
    flags: int


Credentials = Union[PapCredentials, ChapMd5Credentials, MsChap1Credentials, MsChap2Credentials]


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """The backend's answer to a ``VerifyRequest``.

    accepted / reason: the verdict; ``reason`` is logged (never a secret) and not sent to the peer.
    attributes: what the backend grants (addresses, routes, profile, RADIUS attributes), passed through.
    authenticator_response: MS-CHAPv2 only, required on accept: ``"S=<40 hex>"`` (from RADIUS
        MS-CHAP2-Success, without its identifier octet, or computed by ``verify_locally``).
    message: text for the peer (PAP Ack/Nak message, CHAP Success/Failure text, MS-CHAP ``M=``).
    keys: MPPE key material (MS-CHAP), or None.
    error_code: the MS-CHAP ``E=`` code of a reject (691; 647 account disabled, 648 password expired...).
    """

    accepted: bool
    reason: str = ""
    attributes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    authenticator_response: str | None = None
    message: str | None = None
    keys: MppeKeyMaterial | None = None
    error_code: int = 691


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """Base of the events a machine emits."""


def _display(name: bytes) -> str:
    return name.decode("utf-8", errors="backslashreplace")


class _Named:
    """``username`` for the events that carry a peer ``name``."""

    __slots__ = ()
    name: bytes

    @property
    def username(self) -> str:
        """The name for logs and local lookups (undecodable octets shown as escapes)."""
        return _display(self.name)


@dataclass(frozen=True, slots=True)
class VerifyRequest(AuthEvent, _Named):
    """Server role: check these credentials for ``name`` and answer ``complete(request_id, ...)``."""

    request_id: int
    method: AuthMethod
    name: bytes
    credentials: Credentials


@dataclass(frozen=True, slots=True)
class AuthSucceeded(AuthEvent, _Named):
    """Both roles. ``decision.keys`` holds the MPPE key material; ``decision.attributes`` what was granted."""

    method: AuthMethod
    name: bytes
    decision: AuthDecision


@dataclass(frozen=True, slots=True)
class AuthFailed(AuthEvent, _Named):
    """Both roles; the link should now be terminated. ``error_code`` is the MS-CHAP E= code if any."""

    method: AuthMethod
    name: bytes
    reason: str
    error_code: int | None = None


class AuthState(enum.Enum):
    INITIAL = "initial"  # start() not called yet
    WAITING = "waiting"  # server: Challenge sent / waiting for the PAP request; client: waiting for a challenge
    VERIFYING = "verifying"  # server: VerifyRequest emitted, waiting for complete()
    RETRY_WAIT = "retry-wait"  # server: MS-CHAP Failure with R=1 sent, waiting for the new Response
    RESPONDED = "responded"  # client: Response / Authenticate-Request sent, waiting for the verdict
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# --- the shared plumbing -------------------------------------------------------------------------


class _Machine:
    """Output queue, event queue, one deadline, and the terminal states."""

    method: AuthMethod

    def __init__(
        self,
        method: AuthMethod,
        *,
        rng: Rng | None = None,
        config: AuthConfig | None = None,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        self.method = method
        self.config = config or AuthConfig()
        self._rng: Rng = rng or token_bytes  # CSPRNG (os.urandom underneath)
        self._log = logger or logging.getLogger(__name__)
        self._out: list[Output] = []
        self._events: deque[AuthEvent] = deque()
        self._deadline: float | None = None
        self.state = AuthState.INITIAL
        self.dropped = 0
        """Packets dropped as malformed, unexpected or stale."""

    # caller API
    def get_timer(self) -> float | None:
        """The earliest time ``handle_timer`` must be called, or None."""
        return self._deadline

    def take_output(self) -> list[Output]:
        """The packets to send, oldest first, as ``(ppp_protocol, payload)``."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> AuthEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def done(self) -> bool:
        return self.state in (AuthState.SUCCEEDED, AuthState.FAILED) and self._deadline is None

    # helpers
    def _drop(self, why: str) -> None:
        self.dropped += 1
        self._log.debug("%s: dropped packet: %s", self.method.value, why)

    def _rand_byte(self) -> int:
        return self._rng(1)[0]

    def _fail(self, name: bytes, reason: str, error_code: int | None = None) -> None:
        self.state = AuthState.FAILED
        self._deadline = None
        self._log.info(
            "authentication failed: user=%s method=%s reason=%s", _display(name), self.method.value, reason
        )
        self._events.append(AuthFailed(self.method, name, reason, error_code))

    def _succeed(self, name: bytes, decision: AuthDecision) -> None:
        self.state = AuthState.SUCCEEDED
        self._log.debug("authenticated: user=%s method=%s", _display(name), self.method.value)
        self._events.append(AuthSucceeded(self.method, name, decision))


class Authenticator(_Machine):
    """Server role. ``Authenticator(method, name, rng=..., config=...)`` gives the machine for ``method``.

    name: our name, sent in CHAP Challenges (pppd and SoftEther send their host name).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Authenticator:
        if cls is Authenticator:
            method = args[0] if args else kwargs["method"]
            if method is AuthMethod.PAP:
                from .pap import PapAuthenticator as impl
            else:
                from .chap import ChapAuthenticator as impl  # type: ignore[assignment]
            cls = impl
        return super().__new__(cls)

    def __init__(
        self,
        method: AuthMethod,
        name: bytes | str = b"",
        *,
        rng: Rng | None = None,
        config: AuthConfig | None = None,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        super().__init__(method, rng=rng, config=config, logger=logger)
        self.name = name.encode("utf-8") if isinstance(name, str) else bytes(name)
        self._next_request_id = 1
        self._pending: int | None = None

    def _new_request_id(self) -> int:
        rid = self._next_request_id
        self._next_request_id += 1
        self._pending = rid
        return rid

    def start(self, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def receive(self, payload: bytes, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def handle_timer(self, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def complete(self, request_id: int, decision: AuthDecision, now: float) -> bool:  # pragma: no cover
        """Answer a ``VerifyRequest``. Returns False (and does nothing) if that request is no longer pending."""
        raise NotImplementedError


class AuthPeer(_Machine):
    """Client role. ``AuthPeer(method, username, password, rng=..., config=...)`` gives the machine for ``method``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> AuthPeer:
        if cls is AuthPeer:
            method = args[0] if args else kwargs["method"]
            if method is AuthMethod.PAP:
                from .pap import PapPeer as impl
            else:
                from .chap import ChapPeer as impl  # type: ignore[assignment]
            cls = impl
        return super().__new__(cls)

    def __init__(
        self,
        method: AuthMethod,
        username: bytes | str,
        password: str,
        *,
        rng: Rng | None = None,
        config: AuthConfig | None = None,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        super().__init__(method, rng=rng, config=config, logger=logger)
        self.username = username.encode("utf-8") if isinstance(username, str) else bytes(username)
        self._password = password

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method.value} user={_display(self.username)!r} {self.state.value}>"

    def start(self, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def receive(self, payload: bytes, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def handle_timer(self, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


# --- what differs between CHAP-MD5, MS-CHAPv1 and MS-CHAPv2 -----------------------------------


class ChapAlgorithm:
    """One CHAP algorithm as the shared machine in ``chap.py`` uses it (strategy object, no state)."""

    method: AuthMethod
    supports_retry = False  # MS-CHAP Failure may say R=1

    def challenge_len(self, config: AuthConfig) -> int:
        raise NotImplementedError

    # server role
    def credentials(self, identifier: int, challenge: bytes, value: bytes) -> Credentials:
        """The backend's view of a Response value; raises DecodeError if it is malformed."""
        raise NotImplementedError

    def success_message(self, decision: AuthDecision, credentials: Credentials, default: str) -> bytes | None:
        """The Success text, or None if the decision cannot be turned into one (fail closed)."""
        raise NotImplementedError

    def failure_message(self, decision: AuthDecision, retry: bool | None, new_challenge: bytes) -> bytes:
        """The Failure text. ``retry`` is None for non-MS-CHAP; ``new_challenge`` is C= (MS-CHAP)."""
        raise NotImplementedError

    # client role
    def response(
        self, identifier: int, challenge: bytes, username: bytes, password: str, rng: Rng
    ) -> tuple[bytes, Any]:
        """The Response value for a Challenge and a context for ``on_success``; ValueError if the
        challenge cannot be answered (wrong size)."""
        raise NotImplementedError

    def on_success(self, message: bytes, context: Any, username: bytes, password: str) -> AuthDecision:
        """Judge a Success: an accepted decision with keys, or a rejected one with the reason."""
        raise NotImplementedError

    def on_failure(self, message: bytes) -> tuple[str, int | None]:
        """The reason and MS-CHAP error code of a Failure."""
        raise NotImplementedError
