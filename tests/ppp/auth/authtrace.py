"""A tiny pcap reader for the reference traces: Ethernet/IPv4/UDP/L2TP data/PPP -> (protocol, payload).

Only what the traces in ``shared/traces`` use (classic pcap, Ethernet, IPv4, L2TPv2 data messages);
kept here rather than in the package because only tests read captures.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pytest


def traces_dir() -> Path:
    repo = Path(__file__).resolve().parents[3]
    for cand in (repo.parent / "shared" / "traces", Path("/work/shared/traces")):
        if cand.is_dir():
            return cand
    pytest.skip("shared/traces not available")


@dataclass(frozen=True)
class PppFrame:
    number: int  # 1-based frame number, as tshark counts
    src: str
    protocol: int
    payload: bytes


def _packets(data: bytes):
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian = ">"
    else:
        raise ValueError("not a classic pcap file")
    (linktype,) = struct.unpack_from(endian + "I", data, 20)
    assert linktype == 1, "only Ethernet captures"
    pos = 24
    while pos + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(endian + "4I", data, pos)
        pos += 16
        yield data[pos : pos + incl]
        pos += incl


def ppp_frames(path: Path) -> list[PppFrame]:
    out = []
    for number, frame in enumerate(_packets(path.read_bytes()), 1):
        off = 12
        ethertype = struct.unpack_from("!H", frame, off)[0]
        while ethertype == 0x8100:
            off += 4
            ethertype = struct.unpack_from("!H", frame, off)[0]
        off += 2
        if ethertype != 0x0800:
            continue
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 17:
            continue
        src = ".".join(str(b) for b in frame[off + 12 : off + 16])
        total = struct.unpack_from("!H", frame, off + 2)[0]
        ip_end = off + total
        udp = off + ihl
        sport, dport = struct.unpack_from("!HH", frame, udp)
        if 1701 not in (sport, dport):
            continue
        l2 = udp + 8
        flags = struct.unpack_from("!H", frame, l2)[0]
        if flags & 0x8000:  # control message
            continue
        p = l2 + 2
        end = ip_end
        if flags & 0x4000:
            end = l2 + struct.unpack_from("!H", frame, p)[0]
            p += 2
        p += 4  # tunnel id, session id
        if flags & 0x0800:
            p += 4  # Ns, Nr
        if flags & 0x0200:
            p += 2 + struct.unpack_from("!H", frame, p)[0]
        ppp = frame[p:end]
        if ppp[:2] == b"\xff\x03":
            ppp = ppp[2:]
        if ppp[0] & 1:
            proto, payload = ppp[0], ppp[1:]
        else:
            proto, payload = struct.unpack_from("!H", ppp)[0], ppp[2:]
        out.append(PppFrame(number, src, proto, bytes(payload)))
    return out


def auth_frames(path: Path) -> list[PppFrame]:
    """PAP and CHAP frames only, in capture order."""
    return [f for f in ppp_frames(path) if f.protocol in (0xC023, 0xC223)]


class FakeRng:
    """An rng(n) that hands out scripted bytes, then zeros; records what it was asked for."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.asked: list[int] = []

    def __call__(self, n: int) -> bytes:
        self.asked.append(n)
        if self.chunks:
            chunk = self.chunks.pop(0)
            assert len(chunk) == n, f"scripted {len(chunk)} octets, asked for {n}"
            return chunk
        return bytes(n)
