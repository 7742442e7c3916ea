"""PPP authentication, sans-IO: PAP (RFC 1334), CHAP-MD5 (RFC 1994), MS-CHAPv1 (RFC 2433), MS-CHAPv2 (RFC 2759).

- ``Authenticator(method, our_name, rng=, config=)``: server role; asks the caller to verify with
  ``VerifyRequest`` and takes the answer in ``complete(request_id, AuthDecision, now)``.
- ``AuthPeer(method, username, password, rng=, config=)``: client role.
- ``verify_locally(request, password)``: the decision for a locally configured password.
- Events: ``VerifyRequest``, ``AuthSucceeded``, ``AuthFailed``. MPPE key material rides in
  ``AuthDecision.keys`` (``MppeKeyMaterial``); the RFC 3079 arithmetic is in ``crypto``.
"""

from __future__ import annotations

from .base import (
    AuthConfig,
    AuthDecision,
    Authenticator,
    AuthEvent,
    AuthFailed,
    AuthPeer,
    AuthState,
    AuthSucceeded,
    ChapMd5Credentials,
    Credentials,
    MppeKeyMaterial,
    MsChap1Credentials,
    MsChap2Credentials,
    PapCredentials,
    VerifyRequest,
)
from .chap import ChapAuthenticator, ChapPeer, verify_chap_md5
from .mschap1 import verify_mschap1
from .mschap2 import verify_mschap2
from .pap import PapAuthenticator, PapPeer, verify_pap

__all__ = [
    "AuthConfig",
    "AuthDecision",
    "AuthEvent",
    "AuthFailed",
    "AuthPeer",
    "AuthState",
    "AuthSucceeded",
    "Authenticator",
    "ChapAuthenticator",
    "ChapMd5Credentials",
    "ChapPeer",
    "Credentials",
    "MppeKeyMaterial",
    "MsChap1Credentials",
    "MsChap2Credentials",
    "PapAuthenticator",
    "PapCredentials",
    "PapPeer",
    "VerifyRequest",
    "verify_locally",
]


def verify_locally(request: VerifyRequest, password: str, *, allow_lm_response: bool = False) -> AuthDecision:
    """Verify ``request`` against a locally configured password (constant-time comparisons).

    On MS-CHAP success the decision carries the MPPE key material, and for MS-CHAPv2 the
    authenticator response. ``allow_lm_response`` lets MS-CHAPv1 LM-only responses through (off: LM is broken).
    """
    creds = request.credentials
    if isinstance(creds, PapCredentials):
        return verify_pap(creds, password)
    if isinstance(creds, ChapMd5Credentials):
        return verify_chap_md5(creds, password)
    if isinstance(creds, MsChap1Credentials):
        return verify_mschap1(creds, password, allow_lm_response=allow_lm_response)
    if isinstance(creds, MsChap2Credentials):
        return verify_mschap2(creds, request.name, password)
    raise TypeError(f"unknown credentials {type(creds).__name__}")
