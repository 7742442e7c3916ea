"""MS-CHAPv2 (RFC 2759): CHAP algorithm 0x81, mutual authentication.

Authenticator: 16-octet challenge; the Response holds the peer's challenge and the NT response; the
Success says ``S=<authenticator response> M=<text>``. The ``M=`` part is left out when the Response's
flags are not zero: Windows 98 sets them and then calls ``M=`` an error (pppd does the same). Failure:
``E=691 R=0 C=<32 hex> V=3``, with C= a fresh challenge (RFC 2759 §6 requires it).

Peer: the peer challenge comes from the injected rng; a Success whose ``S=`` does not match fails the
authentication (RFC 2759 §5), with or without ``M=`` (SoftEther sends none).
"""

from __future__ import annotations

import hmac
from typing import Any

from ...errors import DecodeError
from ...wire.auth import (
    MSCHAP2_CHALLENGE_LEN,
    AuthMethod,
    MsChap2Response,
    MsChap2Success,
    MsChapFailure,
    decode_mschap2_response,
    encode_mschap2_response,
    format_mschap2_success,
    format_mschap_failure,
    parse_mschap2_success,
)
from . import crypto
from .base import (
    AuthConfig,
    AuthDecision,
    ChapAlgorithm,
    Credentials,
    MppeKeyMaterial,
    MsChap2Credentials,
    Rng,
)
from .mschap1 import failure_reason

MSCHAP2_VERSION = 3


def mschap2_keys(password_hash: bytes, nt_response: bytes) -> MppeKeyMaterial:
    hh = crypto.hash_nt_password_hash(password_hash)
    return MppeKeyMaterial(
        AuthMethod.MSCHAP2,
        master_key=crypto.get_master_key(hh, nt_response),
        nt_response=bytes(nt_response),
        password_hash_hash=hh,
    )


def verify_mschap2(credentials: MsChap2Credentials, name: bytes, password: str) -> AuthDecision:
    """Check an MS-CHAPv2 response against a local password; on success the decision carries the
    authenticator response (``S=...``) and the MPPE master key."""
    password_hash = crypto.nt_password_hash(password)
    expected = crypto.generate_nt_response(
        credentials.authenticator_challenge, credentials.peer_challenge, name, password_hash
    )
    if not hmac.compare_digest(expected, credentials.nt_response):
        return AuthDecision(False, reason="wrong password")
    auth = crypto.generate_authenticator_response(
        password_hash, credentials.nt_response, credentials.peer_challenge, credentials.authenticator_challenge, name
    )
    return AuthDecision(True, authenticator_response=auth, keys=mschap2_keys(password_hash, credentials.nt_response))


def _authenticator_bytes(value: str | None) -> bytes | None:
    """20 octets from ``S=<40 hex>`` (or the bare 40 hex digits), else None."""
    if value is None:
        return None
    text = value.removeprefix("S=")
    if len(text) != 40:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


class MsChap2(ChapAlgorithm):
    method = AuthMethod.MSCHAP2
    supports_retry = True

    def challenge_len(self, config: AuthConfig) -> int:
        return MSCHAP2_CHALLENGE_LEN

    def credentials(self, identifier: int, challenge: bytes, value: bytes) -> Credentials:
        resp = decode_mschap2_response(value)
        return MsChap2Credentials(identifier, challenge, resp.peer_challenge, resp.nt_response, resp.flags)

    def success_message(self, decision: AuthDecision, credentials: Credentials, default: str) -> bytes | None:
        auth = _authenticator_bytes(decision.authenticator_response)
        if auth is None:
            return None
        flags = credentials.flags if isinstance(credentials, MsChap2Credentials) else 0
        message = None if flags else (decision.message if decision.message is not None else default)
        return format_mschap2_success(MsChap2Success(auth, message))

    def failure_message(self, decision: AuthDecision, retry: bool | None, new_challenge: bytes) -> bytes:
        failure = MsChapFailure(decision.error_code, bool(retry), new_challenge, MSCHAP2_VERSION, decision.message)
        return format_mschap_failure(failure)

    def response(
        self, identifier: int, challenge: bytes, username: bytes, password: str, rng: Rng
    ) -> tuple[bytes, Any]:
        if len(challenge) != MSCHAP2_CHALLENGE_LEN:
            raise ValueError(f"MS-CHAPv2 challenge of {len(challenge)} octets")
        peer_challenge = bytes(rng(16))
        password_hash = crypto.nt_password_hash(password)
        nt = crypto.generate_nt_response(challenge, peer_challenge, username, password_hash)
        value = encode_mschap2_response(MsChap2Response(peer_challenge, nt, 0))
        return value, (bytes(challenge), peer_challenge, nt)

    def on_success(self, message: bytes, context: Any, username: bytes, password: str) -> AuthDecision:
        authenticator_challenge, peer_challenge, nt = context
        try:
            success = parse_mschap2_success(message)
        except DecodeError:
            return AuthDecision(False, reason="malformed MS-CHAPv2 Success (no valid S=)")
        password_hash = crypto.nt_password_hash(password)
        if not crypto.check_authenticator_response(
            password_hash, nt, peer_challenge, authenticator_challenge, username, success.authenticator_response
        ):
            return AuthDecision(False, reason="MS-CHAPv2 authenticator response (S=) does not verify")
        return AuthDecision(True, message=success.message, keys=mschap2_keys(password_hash, nt))

    def on_failure(self, message: bytes) -> tuple[str, int | None]:
        return failure_reason(message)
