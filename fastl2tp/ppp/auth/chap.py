"""CHAP (RFC 1994) in both roles, with the algorithm (MD5, MS-CHAPv1, MS-CHAPv2) as a strategy.

Authenticator, state by state (``AuthState``):
- WAITING: Challenge sent; it is sent again, identical (same Identifier and value, as pppd does, so a
  late Response still matches), every ``restart_interval_s`` up to ``max_transmits`` times; when the
  last one times out: AuthFailed. A Response with our Identifier -> VerifyRequest, VERIFYING; others
  are dropped.
- VERIFYING: Responses dropped until ``complete()``. Accept -> Success, SUCCEEDED, AuthSucceeded.
  Reject -> MS-CHAP with retries left: Failure ``R=1 C=<new challenge>`` and RETRY_WAIT; otherwise
  Failure, FAILED, AuthFailed.
- RETRY_WAIT: the new Response (Identifier one more than the Failure's; one reusing the Failure's
  Identifier with a new value is taken too) is verified against the new challenge; after
  ``retry_wait_s`` without one: AuthFailed.
- SUCCEEDED / FAILED / RETRY_WAIT: a repeated Response (same Identifier and value as the one answered)
  gets the same Success/Failure again (the peer lost it, RFC 1994 §4.1). With
  ``rechallenge_interval_s``, SUCCEEDED challenges again later; a failed re-challenge ends in
  AuthFailed, a passed one emits nothing.

Peer: waits for a Challenge (``wait_timeout_s``), answers it (the same Challenge again gets the same
Response), then waits for Success/Failure with the Identifier it answered.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from ...errors import DecodeError
from ...wire.auth import (
    PROTO_CHAP,
    AuthMethod,
    ChapChallenge,
    ChapCode,
    ChapResponse,
    ChapStatus,
    decode_chap,
    encode_chap,
)
from .base import (
    AuthConfig,
    AuthDecision,
    Authenticator,
    AuthPeer,
    AuthState,
    ChapAlgorithm,
    ChapMd5Credentials,
    Credentials,
    Rng,
    VerifyRequest,
)
from .mschap1 import MsChap1
from .mschap2 import MsChap2

_DEFAULT_SUCCESS = "Access granted"
_DEFAULT_FAILURE = "Access denied"


def chap_md5_response(identifier: int, secret: bytes, challenge: bytes) -> bytes:
    """RFC 1994 §4.1: MD5(Identifier | secret | challenge)."""
    return hashlib.md5(bytes((identifier,)) + secret + challenge).digest()


def verify_chap_md5(credentials: ChapMd5Credentials, password: str) -> AuthDecision:
    expected = chap_md5_response(credentials.identifier, password.encode("utf-8"), credentials.challenge)
    if hmac.compare_digest(expected, credentials.response):
        return AuthDecision(True)
    return AuthDecision(False, reason="wrong password")


class ChapMd5(ChapAlgorithm):
    method = AuthMethod.CHAP

    def challenge_len(self, config: AuthConfig) -> int:
        return config.challenge_len

    def credentials(self, identifier: int, challenge: bytes, value: bytes) -> Credentials:
        if len(value) != 16:
            raise DecodeError(f"CHAP-MD5 response of {len(value)} octets", field="chap.value")
        return ChapMd5Credentials(identifier, challenge, value)

    def success_message(self, decision: AuthDecision, credentials: Credentials, default: str) -> bytes | None:
        return (decision.message if decision.message is not None else default).encode("utf-8")

    def failure_message(self, decision: AuthDecision, retry: bool | None, new_challenge: bytes) -> bytes:
        return (decision.message if decision.message is not None else _DEFAULT_FAILURE).encode("utf-8")

    def response(
        self, identifier: int, challenge: bytes, username: bytes, password: str, rng: Rng
    ) -> tuple[bytes, Any]:
        if not challenge:
            raise ValueError("empty CHAP challenge")
        return chap_md5_response(identifier, password.encode("utf-8"), challenge), None

    def on_success(self, message: bytes, context: Any, username: bytes, password: str) -> AuthDecision:
        return AuthDecision(True, message=message.decode("utf-8", errors="replace"))

    def on_failure(self, message: bytes) -> tuple[str, int | None]:
        text = message.decode("utf-8", errors="replace")
        return (f"CHAP Failure: {text}" if text else "CHAP Failure"), None


ALGORITHMS: dict[AuthMethod, ChapAlgorithm] = {
    AuthMethod.CHAP: ChapMd5(),
    AuthMethod.MSCHAP1: MsChap1(),
    AuthMethod.MSCHAP2: MsChap2(),
}


class ChapAuthenticator(Authenticator):
    def __init__(self, method: AuthMethod, name: bytes | str = b"", **kwargs: Any) -> None:
        if method not in ALGORITHMS:
            raise ValueError(f"{method} is not a CHAP method")
        super().__init__(method, name, **kwargs)
        self._algo = ALGORITHMS[method]
        self._identifier = 0
        self._accept_ids: tuple[int, ...] = ()
        self._challenge = b""
        self._challenge_packet = b""
        self._transmits = 0
        self._retries_left = self.config.mschap_max_retries if self._algo.supports_retry else 0
        self._peer_name = b""
        self._credentials: Credentials | None = None
        self._answered_id: int | None = None
        self._answered_value = b""
        self._status = b""
        self._authenticated = False

    # --- challenge ---
    def start(self, now: float) -> None:
        if self.state is AuthState.INITIAL:
            self._identifier = self._rand_byte()
            self._challenge_new(now)

    def _challenge_new(self, now: float) -> None:
        self._challenge = bytes(self._rng(self._algo.challenge_len(self.config)))
        self._accept_ids = (self._identifier,)
        self._challenge_packet = encode_chap(ChapChallenge(self._identifier, self._challenge, self.name))
        self._transmits = 0
        self.state = AuthState.WAITING
        self._send_challenge(now)

    def _send_challenge(self, now: float) -> None:
        self._transmits += 1
        self._out.append((PROTO_CHAP, self._challenge_packet))
        self._deadline = now + self.config.restart_interval_s

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline:
            return
        if self.state is AuthState.WAITING:
            if self._transmits >= self.config.max_transmits:
                self._fail(self._peer_name, "timeout: no response to CHAP Challenge")
            else:
                self._send_challenge(now)
        elif self.state is AuthState.RETRY_WAIT:
            self._fail(self._peer_name, "timeout waiting for the retried response")
        elif self.state is AuthState.SUCCEEDED and self.config.rechallenge_interval_s is not None:
            self._identifier = (self._identifier + 1) & 0xFF
            self._challenge_new(now)
        else:
            self._deadline = None

    # --- responses ---
    def receive(self, payload: bytes, now: float) -> None:
        try:
            packet = decode_chap(payload)
        except DecodeError as exc:
            self._drop(str(exc))
            return
        if not isinstance(packet, ChapResponse):
            self._drop(f"CHAP code {type(packet).__name__} sent to the authenticator")
            return
        duplicate = packet.identifier == self._answered_id and packet.value == self._answered_value
        if duplicate and self._status and self.state is not AuthState.VERIFYING:
            self._out.append((PROTO_CHAP, self._status))  # our Success/Failure was lost: repeat it
        elif self.state in (AuthState.WAITING, AuthState.RETRY_WAIT) and packet.identifier in self._accept_ids:
            try:
                credentials = self._algo.credentials(packet.identifier, self._challenge, packet.value)
            except DecodeError as exc:
                self._drop(str(exc))
                return
            self._identifier = packet.identifier
            self._answered_value = packet.value
            self._peer_name = packet.name
            self._credentials = credentials
            self.state = AuthState.VERIFYING
            self._deadline = None
            rid = self._new_request_id()
            self._events.append(VerifyRequest(rid, self.method, packet.name, credentials))
        else:
            self._drop(f"Response id {packet.identifier} in state {self.state.value}")

    def complete(self, request_id: int, decision: AuthDecision, now: float) -> bool:
        if self.state is not AuthState.VERIFYING or request_id != self._pending:
            return False
        self._pending = None
        assert self._credentials is not None
        identifier = self._identifier
        if decision.accepted:
            default = self.config.success_message if self.config.success_message is not None else _DEFAULT_SUCCESS
            message = self._algo.success_message(decision, self._credentials, default)
            if message is not None:
                self._answer(ChapCode.SUCCESS, identifier, message)
                if self.config.rechallenge_interval_s is not None:
                    self._deadline = now + self.config.rechallenge_interval_s
                if self._authenticated:
                    self.state = AuthState.SUCCEEDED
                    self._log.debug("%s: re-challenge passed", self.method.value)
                else:
                    self._authenticated = True
                    self._succeed(self._peer_name, decision)
                return True
            decision = AuthDecision(False, reason="backend accepted without an authenticator response")
        if self._retries_left > 0:
            self._retries_left -= 1
            self._challenge = bytes(self._rng(self._algo.challenge_len(self.config)))
            self._answer(ChapCode.FAILURE, identifier, self._algo.failure_message(decision, True, self._challenge))
            self._identifier = (identifier + 1) & 0xFF
            self._accept_ids = (self._identifier, identifier)
            self.state = AuthState.RETRY_WAIT
            self._deadline = now + self.config.retry_wait_s
            self._log.info(
                "authentication failed, retry allowed: user=%s method=%s reason=%s",
                self._peer_name.decode("utf-8", errors="backslashreplace"),
                self.method.value,
                decision.reason or "rejected",
            )
            return True
        retry: bool | None = False if self._algo.supports_retry else None
        new_challenge = bytes(self._rng(self._algo.challenge_len(self.config))) if self._algo.supports_retry else b""
        self._answer(ChapCode.FAILURE, identifier, self._algo.failure_message(decision, retry, new_challenge))
        code = decision.error_code if self._algo.supports_retry else None
        self._fail(self._peer_name, decision.reason or "rejected", code)
        return True

    def _answer(self, code: ChapCode, identifier: int, message: bytes) -> None:
        self._status = encode_chap(ChapStatus(code, identifier, message))
        self._answered_id = identifier
        self._out.append((PROTO_CHAP, self._status))


class ChapPeer(AuthPeer):
    def __init__(self, method: AuthMethod, username: bytes | str, password: str, **kwargs: Any) -> None:
        if method not in ALGORITHMS:
            raise ValueError(f"{method} is not a CHAP method")
        super().__init__(method, username, password, **kwargs)
        self._algo = ALGORITHMS[method]
        self._answered: tuple[int, bytes] | None = None
        self._response = b""
        self._context: Any = None
        self._verdict_pending = False
        self._authenticated = False
        self._resend_at: float | None = None  # while waiting for Success/Failure, repeat the Response

    def get_timer(self) -> float | None:
        timers = [t for t in (self._deadline, self._resend_at) if t is not None]
        return min(timers) if timers else None

    def start(self, now: float) -> None:
        if self.state is AuthState.INITIAL:
            self.state = AuthState.WAITING
            self._deadline = now + self.config.wait_timeout_s

    def handle_timer(self, now: float) -> None:
        if self._resend_at is not None and now >= self._resend_at:
            if self.state is AuthState.RESPONDED and self._verdict_pending:
                # A lost Success/Failure: the authenticator answers a repeated Response again.
                self._out.append((PROTO_CHAP, self._response))
                self._resend_at = now + self.config.restart_interval_s
            else:
                self._resend_at = None
        if self._deadline is None or now < self._deadline:
            return
        self._resend_at = None
        if self.state is AuthState.WAITING:
            self._fail(self.username, "timeout waiting for CHAP Challenge")
        elif self.state is AuthState.RESPONDED:
            self._fail(self.username, "timeout waiting for CHAP Success or Failure")
        else:
            self._deadline = None

    def receive(self, payload: bytes, now: float) -> None:
        try:
            packet = decode_chap(payload)
        except DecodeError as exc:
            self._drop(str(exc))
            return
        if self.state in (AuthState.INITIAL, AuthState.FAILED):
            self._drop(f"CHAP packet in state {self.state.value}")
        elif isinstance(packet, ChapChallenge):
            self._on_challenge(packet, now)
        elif isinstance(packet, ChapStatus):
            self._on_status(packet)
        else:
            self._drop("CHAP Response sent to the peer")

    def _on_challenge(self, packet: ChapChallenge, now: float) -> None:
        key = (packet.identifier, packet.value)
        if key != self._answered:
            try:
                value, context = self._algo.response(
                    packet.identifier, packet.value, self.username, self._password, self._rng
                )
            except ValueError as exc:
                self._drop(str(exc))
                return
            self._answered = key
            self._context = context
            self._response = encode_chap(ChapResponse(packet.identifier, value, self.username))
        self._verdict_pending = True
        self._out.append((PROTO_CHAP, self._response))
        if self.state is not AuthState.SUCCEEDED:
            self.state = AuthState.RESPONDED
            self._deadline = now + self.config.wait_timeout_s
            self._resend_at = now + self.config.restart_interval_s

    def _on_status(self, packet: ChapStatus) -> None:
        if self._answered is None or packet.identifier != self._answered[0] or not self._verdict_pending:
            self._drop(f"CHAP {packet.code.name} id {packet.identifier} not for our response")
            return
        self._verdict_pending = False
        self._resend_at = None
        if packet.code is ChapCode.FAILURE:
            reason, code = self._algo.on_failure(packet.message)
            self._fail(self.username, reason, code)
            return
        decision = self._algo.on_success(packet.message, self._context, self.username, self._password)
        if not decision.accepted:
            self._fail(self.username, decision.reason)
        elif self._authenticated:
            self._log.debug("%s: re-challenge passed", self.method.value)
        else:
            self._authenticated = True
            self._deadline = None
            self._succeed(self.username, decision)
