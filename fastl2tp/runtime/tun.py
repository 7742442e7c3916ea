"""TUN/TAP devices and the Linux names of fastl2tp's interfaces.

``open_tun(name)`` opens ``/dev/net/tun`` and attaches a new (or existing persistent) device to the
file descriptor with ``TUNSETIFF``: ``IFF_TUN`` (or ``IFF_TAP``) plus ``IFF_NO_PI`` (no 4-byte
packet-information prefix, so a read returns exactly one IP packet) and without ``IFF_VNET_HDR``
(no virtio-net offload header; segmentation offload comes later and will switch it on). The
descriptor is non-blocking and close-on-exec, ready for ``loop.add_reader`` and the data plane's
burst reads. The device is not persistent: it vanishes when the descriptor is closed, also when
the process dies, so a crash leaves no TUN behind.

The device is created in the network namespace of the *calling thread* (the kernel takes the
namespace when ``/dev/net/tun`` is opened), so a daemon started with ``ip netns exec`` creates its
interfaces there.

Interface names
---------------
RouterOS shows a client interface by its configured name (``l2tp-out1``) and a server session
without a static entry as ``<l2tp-USER>``. Linux accepts ``<`` and ``>`` in a name (it refuses
only ``/``, ``:``, white space, ``.``/``..`` and more than 15 bytes), but ``ip link show <l2tp-ex>``
typed in a shell is a redirection that creates a file, so ``linux_ifname`` drops the angle brackets
and the session keeps the RouterOS form as its display name. Names that still are not clean (too
long, odd or non-ASCII characters) are sanitized, cut and given a hash of the whole display name.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import hashlib
import os
import socket
import struct
from collections.abc import Container
from typing import Self

from ..errors import FastL2tpError, LocalUsageError

__all__ = [
    "IFNAMSIZ",
    "TunDevice",
    "TunError",
    "is_valid_ifname",
    "linux_ifname",
    "open_tun",
]

TUN_PATH = "/dev/net/tun"
IFNAMSIZ = 16  # including the terminating NUL: names have at most 15 bytes
MAX_IFNAME = IFNAMSIZ - 1

# <linux/if_tun.h>
TUNSETIFF = 0x400454CA  # _IOW('T', 202, int)
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000  # deliberately not set (see the module docstring)

_IFREQ = struct.Struct("16sH22x")  # struct ifreq: ifr_name[IFNAMSIZ], ifr_flags, union padding to 40 bytes


class TunError(FastL2tpError):
    """Opening a TUN/TAP device failed; ``code`` is the errno."""

    def __init__(self, name: str, code: int, detail: str = ""):
        self.name = name
        self.code = code
        text = detail or os.strerror(code)
        super().__init__(f"open_tun {name}: {text} ({errno.errorcode.get(code, code)})")


class TunDevice:
    """An open TUN (or TAP) device: its Linux ``name``, non-blocking ``fd`` and ``ifindex``."""

    __slots__ = ("fd", "ifindex", "name", "tap")

    def __init__(self, name: str, fd: int, ifindex: int, tap: bool = False):
        self.name = name
        self.fd = fd
        self.ifindex = ifindex
        self.tap = tap

    def fileno(self) -> int:
        return self.fd

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        """Close the descriptor; the kernel then removes the (non-persistent) device. Idempotent."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "tap" if self.tap else "tun"
        return f"TunDevice({self.name!r}, {kind}, fd={self.fd}, ifindex={self.ifindex})"


def is_valid_ifname(name: str) -> bool:
    """What the kernel accepts as an interface name (``dev_valid_name``)."""
    raw = name.encode("utf-8", "surrogateescape")
    if not raw or len(raw) > MAX_IFNAME or name in (".", ".."):
        return False
    return not any(c in "/:" or c.isspace() for c in name)


def open_tun(name: str, *, tap: bool = False) -> TunDevice:
    """Create (or attach to a persistent) TUN/TAP device ``name`` in the calling thread's namespace.

    ``name`` must already be a Linux name (see ``linux_ifname``). Raises ``LocalUsageError`` for an
    invalid name and ``TunError`` when the kernel refuses (EBUSY: another descriptor holds the
    device; EINVAL: a non-TUN device of that name exists; EPERM: no CAP_NET_ADMIN).
    """
    if not is_valid_ifname(name):
        raise LocalUsageError(f"open_tun: {name!r} is not a valid Linux interface name")
    flags = (IFF_TAP if tap else IFF_TUN) | IFF_NO_PI
    try:
        fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise TunError(name, e.errno or errno.EIO, f"cannot open {TUN_PATH}: {e.strerror}") from None
    try:
        out = fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode(), flags))
        actual = _IFREQ.unpack(out)[0].rstrip(b"\0").decode("utf-8", "surrogateescape")
        ifindex = socket.if_nametoindex(actual)
    except OSError as e:
        os.close(fd)
        raise TunError(name, e.errno or errno.EIO) from None
    return TunDevice(actual, fd, ifindex, tap)


# --- names ---------------------------------------------------------------------------------------

_CLEAN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
# "all" and "default" name the per-family defaults in /proc/sys/net/*/conf; never use them.
_RESERVED = frozenset({"all", "default", ".", ".."})
HASH_SEP = "~"  # never in a clean name, so a hashed name cannot equal a clean one
HASH_LEN = 5  # base32 characters: 25 bits of the display name's hash


def _is_clean(name: str) -> bool:
    return (
        0 < len(name) <= MAX_IFNAME
        and all(c in _CLEAN for c in name)
        and not name.startswith("-")
        and name not in _RESERVED
    )


def _hash_tag(display_name: str, salt: int) -> str:
    data = display_name.encode("utf-8", "surrogatepass")
    if salt:
        data += b"\0" + str(salt).encode()
    digest = hashlib.blake2b(data, digest_size=5, person=b"fastl2tp-ifname").digest()
    return base64.b32encode(digest).decode().lower()[:HASH_LEN]


def linux_ifname(display_name: str, taken: Container[str] = ()) -> str:
    """Map a RouterOS interface name to a valid Linux name of at most 15 bytes.

    - ``l2tp-out1`` stays ``l2tp-out1``; ``<l2tp-ex>`` becomes ``l2tp-ex`` (brackets dropped).
    - A name that is too long or holds characters other than ``A-Z a-z 0-9 . _ -`` is sanitized
      (each other character becomes ``_``), cut, and ends in ``~`` plus 5 characters of a hash of the
      whole display name: ``<l2tp-a.very.long.user@example.com>`` → ``l2tp-a.ve~xxxxx``.
    - The result is deterministic. Different display names give different clean names; hashed
      names cannot collide with clean ones (only they contain ``~``) and collide with each other
      only by a hash collision. Pass the names in use as ``taken`` (including the static name that
      ``<l2tp-ex>`` would strip to) and the result is guaranteed not to be one of them.
    """
    base = display_name
    if len(base) >= 2 and base[0] == "<" and base[-1] == ">":
        base = base[1:-1]
    if _is_clean(base) and base not in taken:
        return base
    sanitized = "".join(c if c in _CLEAN else "_" for c in base) or "l2tp"
    if sanitized[0] == "-":
        sanitized = "_" + sanitized[1:]
    head = sanitized[: MAX_IFNAME - len(HASH_SEP) - HASH_LEN]
    salt = 0
    while True:
        name = f"{head}{HASH_SEP}{_hash_tag(display_name, salt)}"
        if name not in taken:
            return name
        salt += 1
