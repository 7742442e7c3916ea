"""Read the UDP payloads of classic pcap files (Ethernet, Linux cooked, raw IP), for trace tests."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TRACES = SHARED / "traces"


@dataclass(frozen=True)
class UdpPacket:
    index: int  # frame number, 1-based as tshark counts
    time: float
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def _ip_to_str(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def read_udp(path: Path | str) -> list[UdpPacket]:
    data = Path(path).read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    pos = 24
    out: list[UdpPacket] = []
    index = 0
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[pos : pos + 16])
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        index += 1
        if linktype == 1:  # Ethernet
            off = 12
            ethertype = struct.unpack(">H", frame[off : off + 2])[0]
            off += 2
            while ethertype == 0x8100:
                ethertype = struct.unpack(">H", frame[off + 2 : off + 4])[0]
                off += 4
        elif linktype == 113:  # Linux cooked
            ethertype = struct.unpack(">H", frame[14:16])[0]
            off = 16
        elif linktype in (101, 228):
            ethertype, off = 0x0800, 0
        else:
            raise ValueError(f"unsupported link type {linktype}")
        if ethertype != 0x0800 or len(frame) < off + 20:
            continue
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 17:
            continue
        total = struct.unpack(">H", frame[off + 2 : off + 4])[0]
        ip = frame[off : off + total]
        udp = ip[ihl:]
        sport, dport, ulen = struct.unpack(">HHH", udp[:6])
        t = sec + frac / (1e9 if nano else 1e6)
        out.append(
            UdpPacket(index, t, _ip_to_str(ip[12:16]), sport, _ip_to_str(ip[16:20]), dport, bytes(udp[8:ulen]))
        )
    return out


def l2tp_packets(path: Path | str) -> list[UdpPacket]:
    return [p for p in read_udp(path) if 1701 in (p.sport, p.dport) or p.payload[:2] in (b"\xc8\x02",)]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def write_udp_pcap(path: Path | str, packets: list[tuple[tuple[str, int], tuple[str, int], bytes]]) -> None:
    """Write (src, dst, payload) UDP/IPv4 datagrams as an Ethernet pcap (for tshark checks)."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, ((sip, sport), (dip, dport), payload) in enumerate(packets):
        udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        src = bytes(int(x) for x in sip.split("."))
        dst = bytes(int(x) for x in dip.split("."))
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + ip + udp
        out += struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame
    Path(path).write_bytes(bytes(out))


@dataclass(frozen=True)
class PppCapture:
    """One PPP frame carried in an L2TP data message of a capture."""

    index: int  # 1-based frame number, as tshark counts
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    frame: bytes  # the PPP frame as sent: from the address/control field (if any) on

    @property
    def number(self) -> int:
        return self.index

    @property
    def protocol(self) -> int:
        ppp = self.frame[2:] if self.frame[:2] == b"\xff\x03" else self.frame
        return ppp[0] if ppp[0] & 1 else int.from_bytes(ppp[:2], "big")

    @property
    def payload(self) -> bytes:
        ppp = self.frame[2:] if self.frame[:2] == b"\xff\x03" else self.frame
        return ppp[1:] if ppp[0] & 1 else ppp[2:]


def ppp_frames(path: Path | str) -> list[PppCapture]:
    """The PPP frames of every L2TP data message in a capture (header parsed by the wire codec)."""
    from fastl2tp.wire.l2tp import decode_header

    out = []
    for p in l2tp_packets(path):
        header, start, end = decode_header(p.payload)
        if not header.is_control:
            out.append(PppCapture(p.index, p.time, p.src, p.dst, p.sport, p.dport, p.payload[start:end]))
    return out
