"""The exception hierarchy of fastl2tp.

Whose fault it is decides what happens (after h11):
- ``DecodeError``: bytes from the wire that do not parse. The packet is dropped and counted.
- ``PeerProtocolError``: the peer broke the protocol. ``L2tpProtocolError`` carries the RFC 2661
  result/error code with which the session (CDN) or the tunnel (StopCCN) is closed.
- ``LocalUsageError``: our own code or the operator used an API wrongly.
- ``ConfigError``: a configuration value is wrong; its text names the key path.
- ``AuthError``: authentication failed (the text never holds a password).
Any other exception escaping a protocol machine is a bug.
"""

from __future__ import annotations


class FastL2tpError(Exception):
    """Base of every exception fastl2tp raises on purpose."""


class DecodeError(FastL2tpError, ValueError):
    """Bytes that do not decode. ``offset`` is where in the input, ``field`` what was being read."""

    def __init__(self, message: str, *, offset: int | None = None, field: str | None = None):
        self.offset = offset
        self.field = field
        where = []
        if field is not None:
            where.append(field)
        if offset is not None:
            where.append(f"at offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class PeerProtocolError(FastL2tpError):
    """The remote peer violated the protocol."""


class LocalUsageError(FastL2tpError):
    """We (or the operator) used an API in a way it does not allow."""


class L2tpProtocolError(PeerProtocolError):
    """A violation that closes a session (CDN) or tunnel (StopCCN) with an RFC 2661 §4.4.2 result code."""

    def __init__(self, result_code: int, error_code: int | None = None, message: str = ""):
        self.result_code = int(result_code)
        self.error_code = None if error_code is None else int(error_code)
        self.message = message
        super().__init__(f"result {self.result_code}/{self.error_code}: {message}")


class AuthError(FastL2tpError):
    """Authentication failed; the text says why, never with a secret in it."""


class ConfigError(FastL2tpError, ValueError):
    """A configuration error; the message starts with the key path, e.g. ``ppp.secret[2].local-address``."""
