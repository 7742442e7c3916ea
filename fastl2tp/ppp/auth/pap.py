"""PAP (RFC 1334 §2) in both roles.

Server: waits for Authenticate-Request (at most ``config.wait_timeout_s``), emits ``VerifyRequest``
with the password, answers Ack/Nak on ``complete``. A retransmitted request after the verdict gets the
same reply again (the peer lost ours); requests arriving while the backend works are dropped.

Client: sends Authenticate-Request at once and every ``restart_interval_s`` until an Ack or Nak,
``max_transmits`` times in all, each with a new Identifier (as pppd); a reply to any of them counts.
An Ack without the Msg-Length octet (SoftEther) is an Ack.
"""

from __future__ import annotations

import hmac
from typing import Any

from ...errors import DecodeError
from ...wire.auth import (
    PROTO_PAP,
    AuthMethod,
    PapCode,
    PapReply,
    PapRequest,
    decode_pap,
    encode_pap,
)
from .base import (
    AuthDecision,
    Authenticator,
    AuthPeer,
    AuthState,
    PapCredentials,
    VerifyRequest,
)

_DEFAULT_ACK = "Login ok"
_DEFAULT_NAK = "Login incorrect"


def verify_pap(credentials: PapCredentials, password: str) -> AuthDecision:
    """Compare the PAP password with the configured one in constant time."""
    if hmac.compare_digest(credentials.password, password.encode("utf-8")):
        return AuthDecision(True)
    return AuthDecision(False, reason="wrong password")


class PapAuthenticator(Authenticator):
    def __init__(self, method: AuthMethod = AuthMethod.PAP, name: bytes | str = b"", **kwargs: Any) -> None:
        if method is not AuthMethod.PAP:
            raise ValueError("PapAuthenticator is for PAP")
        super().__init__(method, name, **kwargs)
        self._peer_name = b""
        self._request_identifier: int | None = None
        self._reply: bytes | None = None

    def start(self, now: float) -> None:
        if self.state is AuthState.INITIAL:
            self.state = AuthState.WAITING
            self._deadline = now + self.config.wait_timeout_s

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline:
            return
        if self.state is AuthState.WAITING:
            self._fail(self._peer_name, "timeout waiting for Authenticate-Request")
        else:
            self._deadline = None

    def receive(self, payload: bytes, now: float) -> None:
        try:
            packet = decode_pap(payload)
        except DecodeError as exc:
            self._drop(str(exc))
            return
        if not isinstance(packet, PapRequest):
            self._drop("PAP Ack/Nak sent to the authenticator")
            return
        if self.state is AuthState.WAITING:
            self._peer_name = packet.peer_id
            self._request_identifier = packet.identifier
            self.state = AuthState.VERIFYING
            self._deadline = None
            rid = self._new_request_id()
            self._events.append(
                VerifyRequest(rid, AuthMethod.PAP, packet.peer_id, PapCredentials(packet.password))
            )
        elif (
            self.state in (AuthState.SUCCEEDED, AuthState.FAILED)
            and self._reply is not None
            and packet.peer_id == self._peer_name
        ):  # our reply was lost: repeat it to the retransmission, which has a new Identifier (RFC 1334 §2.2.1)
            self._out.append((PROTO_PAP, self._reply[:1] + bytes((packet.identifier,)) + self._reply[2:]))
        else:
            self._drop(f"Authenticate-Request in state {self.state.value}")

    def complete(self, request_id: int, decision: AuthDecision, now: float) -> bool:
        if self.state is not AuthState.VERIFYING or request_id != self._pending:
            return False
        self._pending = None
        assert self._request_identifier is not None
        if decision.accepted:
            text = decision.message if decision.message is not None else self.config.success_message
            message = (text if text is not None else _DEFAULT_ACK).encode("utf-8")
            code = PapCode.AUTHENTICATE_ACK
        else:
            message = (decision.message if decision.message is not None else _DEFAULT_NAK).encode("utf-8")
            code = PapCode.AUTHENTICATE_NAK
        self._reply = encode_pap(PapReply(code, self._request_identifier, message[:255]))
        self._out.append((PROTO_PAP, self._reply))
        if decision.accepted:
            self._succeed(self._peer_name, decision)
        else:
            self._fail(self._peer_name, decision.reason or "rejected")
        return True


class PapPeer(AuthPeer):
    def __init__(self, method: AuthMethod, username: bytes | str, password: str, **kwargs: Any) -> None:
        if method is not AuthMethod.PAP:
            raise ValueError("PapPeer is for PAP")
        super().__init__(method, username, password, **kwargs)
        self._identifier = -1
        self._sent_ids: set[int] = set()
        self._transmits = 0

    def start(self, now: float) -> None:
        if self.state is AuthState.INITIAL:
            self._identifier = self._rand_byte()
            self.state = AuthState.RESPONDED
            self._send(now)

    def _send(self, now: float) -> None:
        if self._transmits:
            self._identifier = (self._identifier + 1) & 0xFF
        self._transmits += 1
        self._sent_ids.add(self._identifier)
        request = PapRequest(self._identifier, self.username, self._password.encode("utf-8"))
        self._out.append((PROTO_PAP, encode_pap(request)))
        self._deadline = now + self.config.restart_interval_s

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline or self.state is not AuthState.RESPONDED:
            return
        if self._transmits >= self.config.max_transmits:
            self._fail(self.username, "timeout: no reply to Authenticate-Request")
        else:
            self._send(now)

    def receive(self, payload: bytes, now: float) -> None:
        try:
            packet = decode_pap(payload)
        except DecodeError as exc:
            self._drop(str(exc))
            return
        if not isinstance(packet, PapReply):
            self._drop("Authenticate-Request sent to the peer")
            return
        if self.state is not AuthState.RESPONDED or packet.identifier not in self._sent_ids:
            self._drop(f"PAP reply id {packet.identifier} in state {self.state.value}")
            return
        self._deadline = None
        text = packet.message.decode("utf-8", errors="replace")
        if packet.code is PapCode.AUTHENTICATE_ACK:
            self._succeed(self.username, AuthDecision(True, message=text))
        else:
            self._fail(self.username, f"PAP Authenticate-Nak: {text}" if text else "PAP Authenticate-Nak")
