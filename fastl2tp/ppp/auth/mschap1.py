"""MS-CHAPv1 (RFC 2433): CHAP algorithm 0x80, an 8-octet challenge and a 49-octet response.

The Response carries an LM and an NT response; peers since NT4 set the "use NT" flag and send zeros
for LM (pppd does, see the traces). We answer the same way, and as authenticator accept an LM-only
response only when asked to (``allow_lm_response``): the LM hash is trivially broken.
"""

from __future__ import annotations

import hmac
from typing import Any

from ...errors import DecodeError
from ...wire.auth import (
    MSCHAP1_CHALLENGE_LEN,
    MSCHAP1_FLAG_USE_NT,
    AuthMethod,
    MsChap1Response,
    MsChapFailure,
    decode_mschap1_response,
    encode_mschap1_response,
    format_mschap_failure,
    parse_mschap_failure,
)
from . import crypto
from .base import (
    AuthConfig,
    AuthDecision,
    ChapAlgorithm,
    Credentials,
    MppeKeyMaterial,
    MsChap1Credentials,
    Rng,
)


def mschap1_keys(password: str, challenge: bytes) -> MppeKeyMaterial:
    hh = crypto.hash_nt_password_hash(crypto.nt_password_hash(password))
    return MppeKeyMaterial(
        AuthMethod.MSCHAP1,
        password_hash_hash=hh,
        challenge=bytes(challenge),
        lm_key=crypto.lm_password_hash(password)[:8],
    )


def verify_mschap1(credentials: MsChap1Credentials, password: str, *, allow_lm_response: bool = False) -> AuthDecision:
    """Check an MS-CHAPv1 response against a local password (constant-time comparison)."""
    if credentials.use_nt:
        expected = crypto.nt_challenge_response(credentials.challenge, crypto.nt_password_hash(password))
        ok = hmac.compare_digest(expected, credentials.nt_response)
    elif allow_lm_response:
        expected = crypto.lm_challenge_response(credentials.challenge, crypto.lm_password_hash(password))
        ok = hmac.compare_digest(expected, credentials.lm_response)
    else:
        return AuthDecision(False, reason="LM-only MS-CHAPv1 response not accepted")
    if not ok:
        return AuthDecision(False, reason="wrong password")
    return AuthDecision(True, keys=mschap1_keys(password, credentials.challenge))


def failure_reason(message: bytes) -> tuple[str, int | None]:
    """The loggable reason and E= code of an MS-CHAP (v1 or v2) Failure message."""
    try:
        failure = parse_mschap_failure(message)
    except DecodeError:
        text = message.decode("utf-8", errors="replace")
        return (f"MS-CHAP failure: {text}" if text else "MS-CHAP failure"), None
    return failure.reason, failure.error


class MsChap1(ChapAlgorithm):
    method = AuthMethod.MSCHAP1
    supports_retry = True

    def challenge_len(self, config: AuthConfig) -> int:
        return MSCHAP1_CHALLENGE_LEN

    def credentials(self, identifier: int, challenge: bytes, value: bytes) -> Credentials:
        resp = decode_mschap1_response(value)
        return MsChap1Credentials(identifier, challenge, resp.lm_response, resp.nt_response, resp.flags)

    def success_message(self, decision: AuthDecision, credentials: Credentials, default: str) -> bytes | None:
        return (decision.message if decision.message is not None else default).encode("utf-8")

    def failure_message(self, decision: AuthDecision, retry: bool | None, new_challenge: bytes) -> bytes:
        # RFC 2433 §6: C= (the next challenge) only matters when a retry is allowed.
        failure = MsChapFailure(
            decision.error_code, bool(retry), new_challenge if retry else None, None, decision.message
        )
        return format_mschap_failure(failure)

    def response(
        self, identifier: int, challenge: bytes, username: bytes, password: str, rng: Rng
    ) -> tuple[bytes, Any]:
        if len(challenge) != MSCHAP1_CHALLENGE_LEN:
            raise ValueError(f"MS-CHAPv1 challenge of {len(challenge)} octets")
        nt = crypto.nt_challenge_response(challenge, crypto.nt_password_hash(password))
        value = encode_mschap1_response(MsChap1Response(bytes(24), nt, MSCHAP1_FLAG_USE_NT))
        return value, bytes(challenge)

    def on_success(self, message: bytes, context: Any, username: bytes, password: str) -> AuthDecision:
        return AuthDecision(
            True, message=message.decode("utf-8", errors="replace"), keys=mschap1_keys(password, context)
        )

    def on_failure(self, message: bytes) -> tuple[str, int | None]:
        return failure_reason(message)
