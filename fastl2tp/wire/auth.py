"""PPP authentication: the methods as LCP names them, and (below) the PAP/CHAP packet codecs."""

from __future__ import annotations

import enum

PROTO_PAP = 0xC023
PROTO_CHAP = 0xC223
PROTO_EAP = 0xC227

CHAP_ALGO_MD5 = 0x05
CHAP_ALGO_MSCHAP1 = 0x80
CHAP_ALGO_MSCHAP2 = 0x81


class AuthMethod(enum.Enum):
    """An authentication method; ``.value`` is its RouterOS name (`authentication=` / `allow=`)."""

    PAP = "pap"
    CHAP = "chap"  # CHAP with MD5 (RFC 1994)
    MSCHAP1 = "mschap1"  # RFC 2433
    MSCHAP2 = "mschap2"  # RFC 2759

    @property
    def protocol(self) -> int:
        return PROTO_PAP if self is AuthMethod.PAP else PROTO_CHAP

    @property
    def lcp_data(self) -> bytes:
        """The value of the LCP Authentication-Protocol option (type 3) that asks for this method."""
        if self is AuthMethod.PAP:
            return PROTO_PAP.to_bytes(2, "big")
        return PROTO_CHAP.to_bytes(2, "big") + bytes((_CHAP_ALGO[self],))

    @classmethod
    def from_lcp_data(cls, data: bytes) -> "AuthMethod | None":
        """The method an Authentication-Protocol option value names, or None if we do not know it."""
        if data == PROTO_PAP.to_bytes(2, "big"):
            return cls.PAP
        if len(data) == 3 and int.from_bytes(data[:2], "big") == PROTO_CHAP:
            for method, algo in _CHAP_ALGO.items():
                if algo == data[2]:
                    return method
        return None


_CHAP_ALGO = {
    AuthMethod.CHAP: CHAP_ALGO_MD5,
    AuthMethod.MSCHAP1: CHAP_ALGO_MSCHAP1,
    AuthMethod.MSCHAP2: CHAP_ALGO_MSCHAP2,
}
