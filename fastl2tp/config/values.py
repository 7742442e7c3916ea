"""Value parsers for the configuration: TOML and RouterOS forms in, typed values out, and back.

Every setting has a *kind* (``Kind``): ``parse(raw)`` accepts what a TOML file or a RouterOS console
line may hold (``true``/``"yes"``, ``30``/``"30s"``/``"00:00:30"``, ``"mschap2,chap"``/``["mschap2",
"chap"]``, ...) and returns the typed value, or raises ``BadValue`` with a message that does not yet
name the key (the loader adds the key path in front). ``dump(value)`` gives the canonical TOML value
(a ``str``, ``int``, ``bool`` or list of ``str``) that ``parse`` turns back into the same value, and
``form`` describes the accepted input for error messages and docs/config.md.

The stand-alone functions (``parse_time``, ``format_time``, ``parse_routes``, ...) are for the
management CLI, which parses ``key=value`` words with the same rules.

Pure: no I/O.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Generic, TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


class BadValue(ValueError):
    """A value that does not parse; the text says why, without the key path (the loader adds it)."""


def show(value: Any) -> str:
    """A value as it would be written in TOML, for error messages: ``"10.0.0.300"``, ``70000``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return toml_string(str(value))


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string with every character TOML requires escaped."""
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# --- booleans -----------------------------------------------------------------------------------

_TRUE = frozenset({"yes", "true"})
_FALSE = frozenset({"no", "false"})


def parse_bool(raw: Any) -> bool:
    """``true``/``false`` (TOML) or ``"yes"``/``"no"`` (RouterOS; also ``"true"``/``"false"``)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise BadValue(f"{show(raw)} is not yes/no (or true/false)")


# --- times --------------------------------------------------------------------------------------

_UNIT_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_UNITS_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_CLOCK_RE = re.compile(r"(?:(\d+)d\s*)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?")


def parse_time_ms(raw: Any) -> int:
    """A duration in whole milliseconds.

    Accepts a TOML number of seconds (``30``, ``1.5``), and the RouterOS forms ``"30"`` (seconds),
    ``"30s"``, ``"1m"``, ``"1h30m"``, ``"1d"``, ``"1w2d"``, ``"1100ms"``, ``"00:01:00"`` and
    ``"1d 00:01:00"``. Negative values and sub-millisecond precision are refused.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise BadValue(f"{show(raw)} is not a time (like 30, \"30s\", \"1m\", \"1h30m\", \"00:01:00\")")
    if isinstance(raw, int | float):
        if math.isnan(raw) or math.isinf(raw):
            raise BadValue(f"{show(raw)} is not a time")
        if raw < 0:
            raise BadValue(f"{show(raw)} is negative")
        ms = raw * 1000
        if abs(ms - round(ms)) > 1e-6:
            raise BadValue(f"{show(raw)} is finer than a millisecond")
        return round(ms)
    text = raw.strip().lower()
    bad = BadValue(f"{show(raw)} is not a time (like 30, \"30s\", \"1m\", \"1h30m\", \"00:01:00\")")
    if not text:
        raise bad
    if text.isdigit():
        return int(text) * 1000
    m = _CLOCK_RE.fullmatch(text)
    if m:
        days, hh, mm, ss, frac = m.groups()
        if int(mm) >= 60 or int(ss) >= 60:
            raise bad
        total = ((int(days or 0) * 24 + int(hh)) * 60 + int(mm)) * 60 + int(ss)
        return total * 1000 + (int(frac.ljust(3, "0")) if frac else 0)
    pos = 0
    total_ms = 0.0
    seen: set[str] = set()
    for part in _UNITS_RE.finditer(text):
        if part.start() != pos or part.group(2) in seen:
            raise bad
        seen.add(part.group(2))
        total_ms += float(part.group(1)) * _UNIT_MS[part.group(2)]
        pos = part.end()
    if pos != len(text):
        raise bad
    if abs(total_ms - round(total_ms)) > 1e-6:
        raise BadValue(f"{show(raw)} is finer than a millisecond")
    return round(total_ms)


def parse_time(raw: Any) -> float:
    """A duration in seconds (a float holding whole milliseconds); see ``parse_time_ms``."""
    return parse_time_ms(raw) / 1000


def format_time(seconds: float) -> str:
    """RouterOS style: ``30s``, ``1m``, ``1h30m``, ``1d2h``, ``1s100ms``, ``0s``. ``parse_time`` inverts it."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit in ("w", "d", "h", "m", "s", "ms"):
        size = _UNIT_MS[unit]
        if ms >= size:
            count, ms = divmod(ms, size)
            out.append(f"{count}{unit}")
    return "".join(out)


# --- addresses ----------------------------------------------------------------------------------


def parse_ipv4(raw: Any) -> IPv4Address:
    if isinstance(raw, str):
        try:
            return IPv4Address(raw.strip())
        except ValueError:
            pass
    raise BadValue(f"{show(raw)} is not an IPv4 address")


def parse_ip(raw: Any) -> IPAddress:
    if isinstance(raw, str):
        try:
            return ipaddress.ip_address(raw.strip())
        except ValueError:
            pass
    raise BadValue(f"{show(raw)} is not an IP address")


def parse_prefix(raw: Any, *, v4_only: bool = False) -> IPNetwork:
    """``"10.0.0.0/24"`` (host bits must be zero) or a bare address (a /32 or /128)."""
    what = "an IPv4 prefix" if v4_only else "an IP prefix"
    if isinstance(raw, str):
        text = raw.strip()
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            if "host bits set" in str(exc):
                raise BadValue(f"{show(raw)} has host bits set (did you mean "
                               f"{ipaddress.ip_network(text, strict=False)}?)") from None
            raise BadValue(f"{show(raw)} is not {what}") from None
        if v4_only and not isinstance(net, IPv4Network):
            raise BadValue(f"{show(raw)} is not {what}")
        return net
    raise BadValue(f"{show(raw)} is not {what}")



_HOST_PORT_FORM = '"address:port" (like "127.0.0.1:9117" or "[::1]:9117")'


def parse_host_port(raw: Any) -> tuple[IPAddress, int]:
    """``"127.0.0.1:9117"``, ``"[::1]:9117"`` or ``"[fe80::1%eth0]:9117"``: an IP address (IPv6 in
    brackets, so the port cannot be mistaken for a group) and a port 1..65535. Host names are refused:
    a listening address must not depend on name resolution at start."""
    if not isinstance(raw, str):
        raise BadValue(f"{show(raw)} is not {_HOST_PORT_FORM}")
    text = raw.strip()
    bracketed = text.startswith("[")
    if bracketed:
        host, close, rest = text[1:].partition("]")
        sep, port = rest[:1], rest[1:]
        if not close or sep != ":":
            raise BadValue(f"{show(raw)} is not {_HOST_PORT_FORM}")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port:
        raise BadValue(f"{show(raw)} is not {_HOST_PORT_FORM}")
    if bracketed:
        try:
            address: IPAddress = IPv6Address(host)
        except ValueError:
            raise BadValue(f"{show(raw)}: {show(host)} is not an IPv6 address") from None
    elif ":" in host:
        raise BadValue(f"{show(raw)}: write an IPv6 address in brackets, like \"[::1]:9117\"")
    else:
        try:
            address = IPv4Address(host)
        except ValueError:
            raise BadValue(f"{show(raw)}: {show(host)} is not an IPv4 address"
                           " (or an IPv6 address in brackets)") from None
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise BadValue(f"{show(raw)}: port {show(port)} is not an integer 1..65535")
    return address, int(port)


def format_host_port(address: IPAddress, port: int) -> str:
    """The canonical ``address:port`` text (IPv6 in brackets); ``parse_host_port`` inverts it."""
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"

# --- routes (ppp secret routes=) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of a secret's ``routes``: ``dst [gateway] [metric]``, RouterOS style.

    ``gateway`` None means the session's remote address; ``metric`` is the route's distance (1..255).
    """

    dst: IPv4Network
    gateway: IPv4Address | None = None
    metric: int = 1

    def __str__(self) -> str:
        parts = [str(self.dst)]
        if self.gateway is not None:
            parts.append(str(self.gateway))
        if self.gateway is not None or self.metric != 1:
            parts.append(str(self.metric))
        return " ".join(parts)


def parse_route(text: str) -> Route:
    """``"10.150.1.0/24 10.0.103.2 1"``, ``"10.150.1.0/24 10.0.103.2"``, ``"10.150.1.0/24"`` or
    ``"10.150.1.0/24 5"`` (no gateway: via the session's remote address; metric 5)."""
    words = text.split()
    if not 1 <= len(words) <= 3:
        raise BadValue(f"{show(text)} is not a route (\"dst-address [gateway] [metric]\")")
    dst = parse_prefix(words[0], v4_only=True)
    gateway: IPv4Address | None = None
    metric = 1
    rest = words[1:]
    if rest and not rest[0].isdigit():
        try:
            gateway = IPv4Address(rest[0])
        except ValueError:
            raise BadValue(f"route {show(text)}: gateway {show(rest[0])} is not an IPv4 address") from None
        rest = rest[1:]
    if rest:
        if len(rest) > 1 or not rest[0].isdigit() or not 0 <= int(rest[0]) <= 255:
            raise BadValue(f"route {show(text)}: metric {show(rest[-1])} is not an integer 0..255")
        metric = int(rest[0])
    assert isinstance(dst, IPv4Network)
    return Route(dst, gateway, metric)


def parse_routes(raw: Any) -> tuple[Route, ...]:
    """RouterOS's comma-separated ``"dst gw metric, dst gw metric"`` or a TOML array of such strings."""
    return tuple(parse_route(item) for item in _split_list(raw, "routes"))


def format_routes(routes: Sequence[Route]) -> str:
    return ",".join(str(r) for r in routes)


# --- address ranges (ip pool ranges=) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressRange:
    """An inclusive IPv4 range of an ``ip pool``; written ``a-b``, ``a/len`` or ``a``."""

    first: IPv4Address
    last: IPv4Address

    def __post_init__(self) -> None:
        if int(self.last) < int(self.first):
            raise ValueError(f"range {self.first}-{self.last} ends before it starts")

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def __contains__(self, address: object) -> bool:
        return isinstance(address, IPv4Address) and self.first <= address <= self.last

    def overlaps(self, other: AddressRange) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __str__(self) -> str:
        if self.first == self.last:
            return str(self.first)
        size = self.size
        if size & (size - 1) == 0 and int(self.first) % size == 0:
            return f"{self.first}/{32 - size.bit_length() + 1}"
        return f"{self.first}-{self.last}"


def parse_range(text: str) -> AddressRange:
    """``"10.0.0.2-10.0.0.254"``, ``"10.1.0.0/24"`` (every address of the prefix, as RouterOS) or one address."""
    text = text.strip()
    if "-" in text:
        a, _, b = text.partition("-")
        try:
            first, last = IPv4Address(a.strip()), IPv4Address(b.strip())
        except ValueError:
            raise BadValue(f"{show(text)} is not an IPv4 range (\"a.b.c.d-e.f.g.h\" or a prefix)") from None
        if last < first:
            raise BadValue(f"{show(text)} ends before it starts")
        return AddressRange(first, last)
    if "/" in text:
        net = parse_prefix(text, v4_only=True)
        return AddressRange(net.network_address, net.broadcast_address)  # type: ignore[arg-type]
    try:
        one = IPv4Address(text)
    except ValueError:
        raise BadValue(f"{show(text)} is not an IPv4 range (\"a.b.c.d-e.f.g.h\" or a prefix)") from None
    return AddressRange(one, one)


def parse_ranges(raw: Any) -> tuple[AddressRange, ...]:
    """``"10.0.0.2-10.0.0.254,10.1.0.0/24"`` or an array; at least one; no two overlapping."""
    ranges = tuple(parse_range(item) for item in _split_list(raw, "ranges"))
    if not ranges:
        raise BadValue("needs at least one range")
    for i, a in enumerate(ranges):
        for b in ranges[:i]:
            if a.overlaps(b):
                raise BadValue(f"ranges {b} and {a} overlap")
    return ranges


def format_ranges(ranges: Sequence[AddressRange]) -> str:
    return ",".join(str(r) for r in ranges)


# --- lists --------------------------------------------------------------------------------------


def _split_list(raw: Any, what: str) -> list[str]:
    """A RouterOS comma list (``"a,b"``) or a TOML array of strings; empty items are dropped."""
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list):
        items = []
        for item in raw:
            if not isinstance(item, str):
                raise BadValue(f"{show(raw)} is not a list of {what} (an array of strings or \"a,b\")")
            items.append(item)
    else:
        raise BadValue(f"{show(raw)} is not a list of {what} (an array of strings or \"a,b\")")
    return [item.strip() for item in items if item.strip()]


# --- names --------------------------------------------------------------------------------------


def looks_like_ipv4(text: str) -> bool:
    """Digits and dots only: read as an IPv4 address where an address or a pool name may stand, so a
    pool may not be named like that."""
    return re.fullmatch(r"[\d.]+", text) is not None


def check_name(raw: Any, what: str = "name") -> str:
    """A RouterOS item name: a non-empty string without control characters or surrounding spaces."""
    if not isinstance(raw, str):
        raise BadValue(f"{show(raw)} is not a {what} (a string)")
    if not raw:
        raise BadValue(f"{what} must not be empty")
    if raw != raw.strip():
        raise BadValue(f"{show(raw)} has leading or trailing spaces")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise BadValue(f"{show(raw)} has a control character")
    return raw


IFNAME_MAX = 15  # Linux IFNAMSIZ - 1: the interface is created with this name


def check_ifname(raw: Any) -> str:
    """An interface name Linux accepts: 1..15 characters, none of ``/``, ``:`` or white space, not ``.``/``..``."""
    name = check_name(raw, "interface name")
    if len(name.encode()) > IFNAME_MAX:
        raise BadValue(f"{show(name)} is longer than {IFNAME_MAX} bytes (a Linux interface name)")
    if name in (".", "..") or any(ch in name for ch in "/:") or any(ch.isspace() for ch in name):
        raise BadValue(f"{show(name)} is not a valid interface name (no '/', ':' or spaces)")
    return name


_HOSTNAME_RE = re.compile(r"(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?", re.IGNORECASE)


# --- kinds --------------------------------------------------------------------------------------


class Kind(Generic[T]):
    """How one setting is parsed, written back and described."""

    form = "a value"  # the accepted input, for errors and docs
    type_name = "value"  # the RouterOS-style type, for docs

    def parse(self, raw: Any) -> T:
        raise NotImplementedError

    def dump(self, value: T) -> Any:
        raise NotImplementedError


class Bool(Kind[bool]):
    type_name = "yes | no"
    form = "yes/no or true/false"

    def parse(self, raw: Any) -> bool:
        return parse_bool(raw)

    def dump(self, value: bool) -> Any:
        return bool(value)


class YesNoDefault(Kind["bool | None"]):
    """yes | no | default; ``None`` is ``default`` (take the value of the ``default`` profile)."""

    type_name = "yes | no | default"
    form = "yes, no or default"

    def parse(self, raw: Any) -> bool | None:
        if isinstance(raw, str) and raw.strip().lower() == "default":
            return None
        try:
            return parse_bool(raw)
        except BadValue:
            raise BadValue(f"{show(raw)} is not yes, no or default") from None

    def dump(self, value: bool | None) -> Any:
        return "default" if value is None else bool(value)


class Int(Kind["int | None"]):
    """An integer in ``lo..hi``; ``none_word`` (e.g. "disabled", "unlimited") stands for None when given."""

    def __init__(self, lo: int, hi: int, none_word: str | None = None):
        self.lo, self.hi, self.none_word = lo, hi, none_word
        self.type_name = f"integer {lo}..{hi}" + (f" | {none_word}" if none_word else "")
        self.form = f"an integer {lo}..{hi}" + (f' or "{none_word}"' if none_word else "")

    def parse(self, raw: Any) -> int | None:
        if self.none_word is not None and isinstance(raw, str) and raw.strip().lower() in (self.none_word, ""):
            return None
        value: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
            value = int(raw)
        if value is None:
            raise BadValue(f"{show(raw)} is not {self.form}")
        if not self.lo <= value <= self.hi:
            raise BadValue(f"{show(raw)} is out of range {self.lo}..{self.hi}")
        return value

    def dump(self, value: int | None) -> Any:
        return self.none_word if value is None else int(value)


class Time(Kind["float | None"]):
    """A duration in seconds (whole milliseconds) within ``lo..hi`` seconds.

    ``none_words`` (e.g. "disabled", "none") give None; with ``zero_is_none`` a zero duration is None
    too (RouterOS writes "0s" for "no limit" in session-timeout and interim-update).
    """

    def __init__(self, lo: float = 0, hi: float | None = None, none_words: tuple[str, ...] = (),
                 zero_is_none: bool = False):
        self.lo, self.hi, self.none_words, self.zero_is_none = lo, hi, none_words, zero_is_none
        extra = " | " + " | ".join(none_words) if none_words else ""
        self.type_name = "time" + extra
        self.form = 'a time (like 30, "30s", "1m", "1h30m", "00:01:00")' + (
            " or " + "/".join(f'"{w}"' for w in none_words) if none_words else "")

    def parse(self, raw: Any) -> float | None:
        if isinstance(raw, str) and (raw.strip().lower() in self.none_words or
                                     (self.none_words or self.zero_is_none) and not raw.strip()):
            return None
        try:
            ms = parse_time_ms(raw)
        except BadValue as exc:
            if self.none_words and "is not a time" in str(exc):
                raise BadValue(f"{show(raw)} is not {self.form}") from None
            raise
        if ms == 0 and self.zero_is_none:
            return None
        if self.hi is None and ms < self.lo * 1000:
            hint = f' (use "{self.none_words[0]}" to turn it off)' if self.none_words else ""
            raise BadValue(f"{show(raw)} is less than {format_time(self.lo)}{hint}")
        if ms < self.lo * 1000 or (self.hi is not None and ms > self.hi * 1000):
            raise BadValue(f"{show(raw)} is out of range {format_time(self.lo)}..{format_time(self.hi or 0)}")
        return ms / 1000

    def dump(self, value: float | None) -> Any:
        if value is None:
            return self.none_words[0] if self.none_words else "0s"
        return format_time(value)


class Text(Kind[str]):
    """Any string (passwords, comments, caller-id); NUL is refused."""

    type_name = "text"
    form = "a string"

    def __init__(self, non_empty: bool = False):
        self.non_empty = non_empty

    def parse(self, raw: Any) -> str:
        if not isinstance(raw, str):
            raise BadValue(f"{show(raw)} is not a string")
        if "\x00" in raw:
            raise BadValue("has a NUL character")
        if self.non_empty and not raw:
            raise BadValue("must not be empty")
        return raw

    def dump(self, value: str) -> Any:
        return value


class OptText(Kind["str | None"]):
    """A string where empty means unset (None): rate-limit."""

    type_name = "text"
    form = "a string"

    def parse(self, raw: Any) -> str | None:
        if not isinstance(raw, str):
            raise BadValue(f"{show(raw)} is not a string")
        if any(ord(ch) < 0x20 for ch in raw):
            raise BadValue(f"{show(raw)} has a control character")
        return raw.strip() or None

    def dump(self, value: str | None) -> Any:
        return value or ""


class Name(Kind[str]):
    type_name = "name"

    def __init__(self, what: str = "name"):
        self.what = what
        self.form = f"a {what}"

    def parse(self, raw: Any) -> str:
        return check_name(raw, self.what)

    def dump(self, value: str) -> Any:
        return value


class OptName(Kind["str | None"]):
    """A reference by name where empty (or "none") means no reference: next-pool, bridge."""

    type_name = "name"

    def __init__(self, what: str = "name"):
        self.what = what
        self.form = f"a {what} or \"none\""

    def parse(self, raw: Any) -> str | None:
        if isinstance(raw, str) and raw.strip().lower() in ("", "none"):
            return None
        return check_name(raw, self.what)

    def dump(self, value: str | None) -> Any:
        return value or "none"


class IfName(Kind[str]):
    type_name = "name (≤ 15 bytes)"
    form = "an interface name"

    def parse(self, raw: Any) -> str:
        return check_ifname(raw)

    def dump(self, value: str) -> Any:
        return value


class EnumKind(Kind[E]):
    def __init__(self, cls: type[E]):
        self.cls = cls
        names = [m.value for m in cls]
        self.type_name = " | ".join(names)
        self.form = "one of " + ", ".join(names)

    def parse(self, raw: Any) -> E:
        if isinstance(raw, str):
            word = raw.strip().lower()
            for member in self.cls:
                if member.value == word:
                    return member
        raise BadValue(f"{show(raw)} is not {self.form}")

    def dump(self, value: E) -> Any:
        return value.value


class EnumSet(Kind["tuple[E, ...]"]):
    """An ordered set of enum values: ``"mschap2,chap"`` or ``["mschap2", "chap"]``; order kept."""

    def __init__(self, cls: type[E], allow_empty: bool = False):
        self.cls, self.allow_empty = cls, allow_empty
        names = [m.value for m in cls]
        self.type_name = "multiple choice: " + ", ".join(names)
        self.form = "a list of " + ", ".join(names)

    def parse(self, raw: Any) -> tuple[E, ...]:
        out: list[E] = []
        by_name = {m.value: m for m in self.cls}
        for word in _split_list(raw, ", ".join(by_name)):
            member = by_name.get(word.lower())
            if member is None:
                raise BadValue(f"{show(word)} is not one of {', '.join(by_name)}")
            if member in out:
                raise BadValue(f"{show(word)} is listed twice")
            out.append(member)
        if not out and not self.allow_empty:
            raise BadValue(f"must name at least one of {', '.join(by_name)}")
        return tuple(out)

    def dump(self, value: tuple[E, ...]) -> Any:
        return [m.value for m in value]


class IntSet(Kind["tuple[int, ...]"]):
    """A set of integers from ``choices`` (mppe-key-lengths): ``"128,40"``, ``[128, 40]`` or ``40``.

    At least one, no repeats; the order written does not matter (kept largest first, which is also
    how the value is written back).
    """

    def __init__(self, choices: Sequence[int]):
        self.choices = tuple(sorted(choices, reverse=True))
        self.names = ", ".join(str(c) for c in sorted(self.choices))
        self.type_name = "multiple choice: " + self.names
        self.form = "a list of " + self.names

    def parse(self, raw: Any) -> tuple[int, ...]:
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = [raw]
        if isinstance(raw, list):
            if not all(isinstance(x, int | str) and not isinstance(x, bool) for x in raw):
                raise BadValue(f"{show(raw)} is not a list of {self.names} (an array or \"a,b\")")
            raw = [str(x) for x in raw]
        out: list[int] = []
        for word in _split_list(raw, self.names):
            if not (word.isascii() and word.isdigit()) or int(word) not in self.choices:
                raise BadValue(f"{show(word)} is not one of {self.names}")
            if int(word) in out:
                raise BadValue(f"{show(word)} is listed twice")
            out.append(int(word))
        if not out:
            raise BadValue(f"must name at least one of {self.names}")
        return tuple(sorted(out, reverse=True))

    def dump(self, value: tuple[int, ...]) -> Any:
        return [int(x) for x in value]


class IPv4(Kind[IPv4Address]):
    type_name = "IPv4 address"
    form = "an IPv4 address"

    def parse(self, raw: Any) -> IPv4Address:
        return parse_ipv4(raw)

    def dump(self, value: IPv4Address) -> Any:
        return str(value)


class OptIPv4(Kind["IPv4Address | None"]):
    """An IPv4 address or empty (unset)."""

    type_name = "IPv4 address"
    form = "an IPv4 address"

    def parse(self, raw: Any) -> IPv4Address | None:
        if isinstance(raw, str) and not raw.strip():
            return None
        return parse_ipv4(raw)

    def dump(self, value: IPv4Address | None) -> Any:
        return "" if value is None else str(value)


class IPv4OrPool(Kind["IPv4Address | str | None"]):
    """An IPv4 address, or the name of an ``ip pool`` (a string that is not an address), or empty."""

    type_name = "IPv4 address | pool name"
    form = "an IPv4 address or a pool name"

    def parse(self, raw: Any) -> IPv4Address | str | None:
        if not isinstance(raw, str):
            raise BadValue(f"{show(raw)} is not an IPv4 address or a pool name")
        text = raw.strip()
        if not text:
            return None
        if looks_like_ipv4(text):  # must then be an address
            return parse_ipv4(text)
        try:
            return ipaddress.IPv4Address(text)
        except ValueError:
            return check_name(raw, "pool name")

    def dump(self, value: IPv4Address | str | None) -> Any:
        return "" if value is None else str(value)


class IP(Kind[IPAddress]):
    type_name = "IP address"
    form = "an IP address"

    def parse(self, raw: Any) -> IPAddress:
        return parse_ip(raw)

    def dump(self, value: IPAddress) -> Any:
        return str(value)


class OptIP(Kind["IPAddress | None"]):
    """An IP address; empty, ``0.0.0.0`` or ``::`` mean unset (RouterOS's "any")."""

    type_name = "IP address"
    form = "an IP address"

    def parse(self, raw: Any) -> IPAddress | None:
        if isinstance(raw, str) and not raw.strip():
            return None
        address = parse_ip(raw)
        return None if address.is_unspecified else address

    def dump(self, value: IPAddress | None) -> Any:
        return "" if value is None else str(value)



class OptHostPort(Kind["str | None"]):
    """A listening address and port, ``"127.0.0.1:9117"`` or ``"[::1]:9117"``, kept as canonical text;
    empty means unset (off)."""

    type_name = "address:port"
    form = _HOST_PORT_FORM + ' or "" (off)'

    def parse(self, raw: Any) -> str | None:
        if isinstance(raw, str) and not raw.strip():
            return None
        return format_host_port(*parse_host_port(raw))

    def dump(self, value: str | None) -> Any:
        return "" if value is None else value

class IPv4List(Kind["tuple[IPv4Address, ...]"]):
    """Up to ``limit`` IPv4 addresses: ``"8.8.8.8,1.1.1.1"`` or an array (dns-server, wins-server)."""

    def __init__(self, limit: int = 2):
        self.limit = limit
        self.type_name = f"list of up to {limit} IPv4 addresses"
        self.form = f"up to {limit} IPv4 addresses"

    def parse(self, raw: Any) -> tuple[IPv4Address, ...]:
        items = tuple(parse_ipv4(item) for item in _split_list(raw, "IPv4 addresses"))
        if len(items) > self.limit:
            raise BadValue(f"{show(raw)} has more than {self.limit} addresses")
        return items

    def dump(self, value: tuple[IPv4Address, ...]) -> Any:
        return [str(a) for a in value]


class Prefix(Kind[IPNetwork]):
    type_name = "IP prefix"
    form = "an IP prefix"

    def parse(self, raw: Any) -> IPNetwork:
        return parse_prefix(raw)

    def dump(self, value: IPNetwork) -> Any:
        return str(value)


class Host(Kind["IPAddress | str"]):
    """Where a client connects: an IP address or a DNS name (resolved when dialing)."""

    type_name = "IP address | DNS name"
    form = "an IP address or a host name"

    def parse(self, raw: Any) -> IPAddress | str:
        if isinstance(raw, str):
            text = raw.strip()
            try:
                return ipaddress.ip_address(text)
            except ValueError:
                if not re.fullmatch(r"[\d.]+", text) and _HOSTNAME_RE.fullmatch(text):
                    return text.lower()
        raise BadValue(f"{show(raw)} is not an IP address or a host name")

    def dump(self, value: IPAddress | str) -> Any:
        return str(value)


class Routes(Kind["tuple[Route, ...]"]):
    type_name = 'text: "dst-address gateway metric", comma-separated'
    form = '"dst-address [gateway] [metric]" routes, comma-separated'

    def parse(self, raw: Any) -> tuple[Route, ...]:
        return parse_routes(raw)

    def dump(self, value: tuple[Route, ...]) -> Any:
        return format_routes(value)


class Ranges(Kind["tuple[AddressRange, ...]"]):
    type_name = "IPv4 ranges and prefixes, comma-separated"
    form = '"a.b.c.d-e.f.g.h" ranges or prefixes, comma-separated'

    def parse(self, raw: Any) -> tuple[AddressRange, ...]:
        return parse_ranges(raw)

    def dump(self, value: tuple[AddressRange, ...]) -> Any:
        return format_ranges(value)


class AbsPath(Kind[str]):
    type_name = "path"
    form = "an absolute path"

    def parse(self, raw: Any) -> str:
        if not isinstance(raw, str) or not raw.startswith("/") or "\x00" in raw:
            raise BadValue(f"{show(raw)} is not an absolute path")
        return raw

    def dump(self, value: str) -> Any:
        return value
