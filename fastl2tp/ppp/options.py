"""Configuration options as data: one :class:`OptionSpec` per option type (RFC 1661 §6).

A control protocol (LCP, IPCP, IPv6CP, later CCP/BCP) is an :class:`OptionTable` plus hooks. Each spec
carries the codec of its value and four decisions, all taking the protocol object as ``ctx``:

- ``request(ctx)``: the value we put in our Configure-Request, or None to not ask for it;
- ``judge(ctx, value)``: the peer's value is ACK, NAK (with a suggestion) or REJECT (RFC 1661 §5.2-5.4);
- ``on_nak(ctx, ours, suggested)``: the peer Nak'd our value (``ours`` is None for an option it
  suggests that we did not ask for; ``suggested`` is None when its value does not decode); return the
  value to ask for next, or None to stop asking;
- ``on_reject(ctx, ours)``: the peer rejected our option; return another value to try, or None.
- ``hint(ctx)``: a value to Nak for when the peer's request omits the option (RFC 1661 §5.3 allows a
  Nak to name options the peer did not include); None for no hint.

Hooks may raise :class:`NegotiationFailed` to end the layer with a reason. Values are plain Python
objects (ints, bytes, addresses); the machine stores them, not the hooks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import DecodeError

V = TypeVar("V")


class Verdict(enum.Enum):
    ACK = "ack"
    NAK = "nak"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Judgement:
    """How we answer one option of the peer's Configure-Request."""

    verdict: Verdict
    suggestion: Any = None  # for NAK: the value we propose instead


ACK = Judgement(Verdict.ACK)
REJECT = Judgement(Verdict.REJECT)


def nak(suggestion: Any) -> Judgement:
    return Judgement(Verdict.NAK, suggestion)


class NegotiationFailed(Exception):
    """Raised by a hook when negotiation cannot succeed; the machine closes the layer with ``reason``.
    Internal control flow: it never leaves the machine."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _never(ctx: Any) -> None:
    return None


def _reject(ctx: Any, value: Any) -> Judgement:
    return REJECT


def _ack(ctx: Any, value: Any) -> Judgement:
    return ACK


def _ignore_nak(ctx: Any, ours: Any, suggested: Any) -> Any:
    return ours


def _drop(ctx: Any, ours: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class OptionSpec(Generic[V]):
    """The codec and the negotiation hooks of one option type."""

    type: int
    name: str
    decode: Callable[[bytes], V]
    encode: Callable[[V], bytes]
    request: Callable[[Any], V | None] = _never
    judge: Callable[[Any, V], Judgement] = _reject
    on_nak: Callable[[Any, V | None, V | None], V | None] = _ignore_nak
    on_reject: Callable[[Any, V], V | None] = _drop
    hint: Callable[[Any], V | None] = _never


class OptionTable:
    """The options of one control protocol, in the order we put them in a Configure-Request."""

    def __init__(self, name: str, specs: list[OptionSpec[Any]] | None = None):
        self.name = name
        self._specs: dict[int, OptionSpec[Any]] = {}
        for spec in specs or ():
            self.register(spec)

    def register(self, spec: OptionSpec[Any]) -> None:
        if spec.type in self._specs:
            raise ValueError(f"{self.name}: option {spec.type} registered twice")
        self._specs[spec.type] = spec

    def get(self, typ: int) -> OptionSpec[Any] | None:
        return self._specs.get(typ)

    def __iter__(self) -> Iterator[OptionSpec[Any]]:
        return iter(self._specs.values())

    def __contains__(self, typ: object) -> bool:
        return typ in self._specs

    def name_of(self, typ: int) -> str:
        spec = self._specs.get(typ)
        return spec.name if spec else f"option-{typ}"


# --- value codecs shared by the option tables ----------------------------------------------------


def fixed(n: int, name: str) -> Callable[[bytes], bytes]:
    """A decoder for a value of exactly ``n`` bytes, kept as bytes."""

    def decode(data: bytes) -> bytes:
        if len(data) != n:
            raise DecodeError(f"{name}: {len(data)} bytes, expected {n}", field=name)
        return bytes(data)

    return decode


def uint(n: int, name: str) -> tuple[Callable[[bytes], int], Callable[[int], bytes]]:
    """Decoder and encoder for an ``n``-byte big-endian unsigned value."""

    def decode(data: bytes) -> int:
        if len(data) != n:
            raise DecodeError(f"{name}: {len(data)} bytes, expected {n}", field=name)
        return int.from_bytes(data, "big")

    def encode(value: int) -> bytes:
        return value.to_bytes(n, "big")

    return decode, encode


def _decode_flag(name: str) -> Callable[[bytes], bool]:
    def decode(data: bytes) -> bool:
        if data:
            raise DecodeError(f"{name}: {len(data)} bytes, expected none", field=name)
        return True

    return decode


def flag(name: str) -> tuple[Callable[[bytes], bool], Callable[[bool], bytes]]:
    """Codec of a boolean option that has no data (PFC, ACFC, SSNH): present means True."""
    return _decode_flag(name), lambda value: b""


def raw(data: bytes) -> bytes:
    return bytes(data)
