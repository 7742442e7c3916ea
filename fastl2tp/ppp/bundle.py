"""Multilink bundles (RFC 1990 §5.1.3): which links belong together, and which one runs the NCPs.

A link that negotiated multilink (both ends sent an MRRU) and authenticated is put in a bundle by
:meth:`Bundles.join`. Links whose peer authenticated with the same name and sent the same endpoint
discriminator join one bundle, as pppd and RouterOS do; the first link of a bundle is its *owner*: it
runs the bundle's NCPs (``PppLink.start_network``), the others join without NCPs
(``PppLink.join_bundle``). When the owner leaves with other links still there, the next link becomes
the owner and takes the NCPs over (``PppLink.release_network`` / ``adopt_network``).

A link whose peer sent no endpoint discriminator, or one of the Null class (0), is never put in an
existing bundle: without one, two different peers that log in with the same name could not be told
apart (RFC 1990 §5.1.3 allows joining on the name alone; we do not, so that one user's two routers never
end up sharing one interface). Such a link is a bundle of its own: multilink over a single link, which
is what the MRRU is mostly for.

The header formats (long or short sequence numbers, each direction) are the bundle's: a link that
negotiated others cannot join it (``BundleMismatch``); its MRRUs are the bundle's first link's.

Pure: no I/O; the runtime keeps whatever it needs per bundle (the interface, the data plane's bundle id)
in ``Bundle.context``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..errors import PeerProtocolError
from .lcp import LcpValues

__all__ = ["Bundle", "BundleKey", "BundleMismatch", "Bundles", "Formats", "Leave", "bundle_key", "describe_endpoint"]

L = TypeVar("L", bound=Hashable)

NULL_CLASS = 0  # RFC 1990 §5.1.3 endpoint discriminator classes
_CLASSES = {0: "null", 1: "local", 2: "ip", 3: "mac", 4: "magic", 5: "phone"}


class BundleMismatch(PeerProtocolError):
    """A link cannot join the bundle its name and endpoint discriminator select."""


@dataclass(frozen=True, slots=True)
class BundleKey:
    """What identifies a bundle: the peer's authenticated name and endpoint discriminator; ``link``
    only for a link that must stay alone (no usable discriminator)."""

    peer_name: str
    peer_endpoint: bytes | None
    link: Hashable | None = None


@dataclass(frozen=True, slots=True)
class Formats:
    """A bundle's negotiated parameters: the MRRUs and header formats of each direction."""

    mrru: int  # ours: the largest reassembled packet the peer may send us
    peer_mrru: int  # the peer's: the interface MTU (the largest packet we send)
    short_seq: bool  # we receive short sequence numbers (we asked, the peer acked)
    peer_short_seq: bool  # we send short sequence numbers (the peer asked)

    @classmethod
    def from_lcp(cls, v: LcpValues) -> Formats:
        if v.mrru is None or v.peer_mrru is None:
            raise ValueError("not a multilink link: an MRRU is missing")
        return cls(v.mrru, v.peer_mrru, v.short_seq, v.peer_short_seq)


def describe_endpoint(endpoint: bytes | None) -> str:
    """``mac:02:00:00:00:00:01``, ``local:0a1b2c3d`` ...: the endpoint discriminator for logs."""
    if not endpoint:
        return "none"
    cls, addr = endpoint[0], endpoint[1:]
    name = _CLASSES.get(cls, f"class{cls}")
    if cls == 3 and len(addr) == 6:
        return f"{name}:" + ":".join(f"{b:02x}" for b in addr)
    if cls == 2 and len(addr) == 4:
        return f"{name}:" + ".".join(str(b) for b in addr)
    return f"{name}:{addr.hex()}"


def bundle_key(peer_name: str, peer_endpoint: bytes | None, link: Hashable) -> BundleKey:
    """The key a link's bundle is found by (see the module docstring)."""
    if not peer_endpoint or peer_endpoint[0] == NULL_CLASS:
        return BundleKey(peer_name, peer_endpoint, link)
    return BundleKey(peer_name, bytes(peer_endpoint))


@dataclass(eq=False)
class Bundle(Generic[L]):
    """The links of one bundle, the owner first."""

    key: BundleKey
    formats: Formats
    links: list[L] = field(default_factory=list)
    context: Any = None  # the runtime's

    @property
    def owner(self) -> L | None:
        return self.links[0] if self.links else None


@dataclass(frozen=True, slots=True)
class Leave(Generic[L]):
    """What a link leaving changed: ``new_owner`` takes the NCPs over (the owner left and others
    remain); ``empty``: that was the last link, the bundle is gone."""

    bundle: Bundle[L]
    was_owner: bool
    new_owner: L | None
    empty: bool


class Bundles(Generic[L]):
    """The bundles of one daemon, by key; each link in at most one."""

    def __init__(self) -> None:
        self.by_key: dict[BundleKey, Bundle[L]] = {}
        self._of: dict[L, Bundle[L]] = {}

    def __len__(self) -> int:
        return len(self.by_key)

    def __iter__(self):
        return iter(list(self.by_key.values()))

    def of(self, link: L) -> Bundle[L] | None:
        return self._of.get(link)

    def join(self, link: L, peer_name: str, values: LcpValues) -> tuple[Bundle[L], bool]:
        """Put ``link`` in its bundle; returns (bundle, True if it is a new bundle and ``link`` its owner).
        Raises ``BundleMismatch`` when the bundle exists with other header formats."""
        if link in self._of:
            raise ValueError(f"link {link!r} is already in a bundle")
        formats = Formats.from_lcp(values)
        key = bundle_key(peer_name, values.peer_endpoint, link)
        bundle = self.by_key.get(key)
        if bundle is None:
            bundle = Bundle(key, formats, [link])
            self.by_key[key] = bundle
            self._of[link] = bundle
            return bundle, True
        ours, theirs = bundle.formats, formats
        if (ours.short_seq, ours.peer_short_seq) != (theirs.short_seq, theirs.peer_short_seq):
            raise BundleMismatch(
                f"multilink: the link's sequence number formats (receive {_fmt(theirs.short_seq)}, send "
                f"{_fmt(theirs.peer_short_seq)}) differ from its bundle's (receive {_fmt(ours.short_seq)}, "
                f"send {_fmt(ours.peer_short_seq)})")
        bundle.links.append(link)
        self._of[link] = bundle
        return bundle, False

    def leave(self, link: L) -> Leave[L] | None:
        """Take ``link`` out of its bundle (None if it is in none)."""
        bundle = self._of.pop(link, None)
        if bundle is None:
            return None
        was_owner = bundle.owner == link
        bundle.links.remove(link)
        empty = not bundle.links
        if empty:
            self.by_key.pop(bundle.key, None)
        return Leave(bundle, was_owner, bundle.owner if was_owner and not empty else None, empty)


def _fmt(short: bool) -> str:
    return "12-bit" if short else "24-bit"
