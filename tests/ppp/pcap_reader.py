"""A tiny pcap reader for the reference traces: Ethernet/IPv4/UDP/L2TPv2 data messages -> PPP frames.

Only what the replay tests need; the L2TP data header is parsed here by hand (RFC 2661 §3.1) so these
tests do not depend on the control-plane codecs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

TRACES = Path("/work/shared/traces")

_PCAP_MAGIC_US = 0xA1B2C3D4
_PCAP_MAGIC_NS = 0xA1B23C4D
_LINKTYPE_ETHERNET = 1


@dataclass(frozen=True)
class PppCapture:
    """One PPP frame carried in an L2TP data message."""

    index: int  # 1-based frame number in the capture (as tshark numbers them)
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    frame: bytes  # the PPP frame, starting at the address/control or protocol field


def _ip(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def read_ppp_frames(path: Path | str) -> list[PppCapture]:
    raw = Path(path).read_bytes()
    magic_le = struct.unpack_from("<I", raw, 0)[0]
    if magic_le in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
        endian = "<"
    else:
        endian = ">"
        magic_le = struct.unpack_from(">I", raw, 0)[0]
    scale = 1e-9 if magic_le == _PCAP_MAGIC_NS else 1e-6
    linktype = struct.unpack_from(endian + "I", raw, 20)[0]
    assert linktype == _LINKTYPE_ETHERNET, linktype
    out: list[PppCapture] = []
    pos = 24
    index = 0
    while pos + 16 <= len(raw):
        ts_s, ts_frac, incl, _orig = struct.unpack_from(endian + "IIII", raw, pos)
        pos += 16
        pkt = raw[pos : pos + incl]
        pos += incl
        index += 1
        frame = _l2tp_ppp(pkt)
        if frame is None:
            continue
        ppp, src, dst, sport, dport = frame
        out.append(PppCapture(index, ts_s + ts_frac * scale, src, dst, sport, dport, ppp))
    return out


def _l2tp_ppp(pkt: bytes) -> tuple[bytes, str, str, int, int] | None:
    if len(pkt) < 14 or pkt[12:14] != b"\x08\x00":
        return None
    ip = pkt[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 17:
        return None
    total = struct.unpack_from(">H", ip, 2)[0]
    src, dst = _ip(ip[12:16]), _ip(ip[16:20])
    udp = ip[ihl:total]
    sport, dport = struct.unpack_from(">HH", udp, 0)
    if 1701 not in (sport, dport):
        return None
    l2 = udp[8:]
    flags = struct.unpack_from(">H", l2, 0)[0]
    if flags & 0x8000 or flags & 0x000F != 2:  # control message, or not L2TPv2
        return None
    p = 2
    if flags & 0x4000:  # L: length present
        p += 2
    p += 4  # tunnel id, session id
    if flags & 0x0800:  # S: Ns, Nr present
        p += 4
    if flags & 0x0200:  # O: offset size present
        offset = struct.unpack_from(">H", l2, p)[0]
        p += 2 + offset
    return l2[p:], src, dst, sport, dport
