"""Shared pieces of the DataPlane tests: IP packets, L2TP data messages built with the pure codecs
(never with _dp's own builder), and harnesses that stand a socketpair in for the TUN device."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from fastl2tp import _dp
from fastl2tp.wire import l2tp, ppp

from .test_dp_mss import SYN, ipv4, ipv6, mss_option, tcp_segment

__all__ = ["SYN", "ipv4", "ipv6", "mss_option", "tcp_segment"]

# our ids on the data plane under test, and the ids of its peer
TID, SID, PEER_TID, PEER_SID = 1, 2, 10, 20


def icmp4(payload: bytes = b"ping") -> bytes:
    """An IPv4 ICMP echo request (checksums not needed: nothing here validates them)."""
    body = bytes([8, 0, 0, 0, 0, 1, 0, 1]) + payload
    return bytes(ipv4(body, proto=1))


def udp4(payload: bytes = b"hello") -> bytes:
    body = (5000).to_bytes(2, "big") + (6000).to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big") + bytes(2)
    return bytes(ipv4(body + payload, proto=17))


def udp6(payload: bytes = b"hello6") -> bytes:
    body = (5000).to_bytes(2, "big") + (6000).to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big") + bytes(2)
    data = body + payload
    hdr = bytes([0x60, 0, 0, 0]) + len(data).to_bytes(2, "big") + bytes([17, 64]) + bytes(15) + b"\x01" + bytes(15) + b"\x02"
    return hdr + data


def syn4(mss: int = 1460) -> bytes:
    return bytes(ipv4(tcp_segment(mss_option(mss), SYN)))


def syn6(mss: int = 1460) -> bytes:
    return bytes(ipv6(tcp_segment(mss_option(mss), SYN)))


def data_message(tid: int, sid: int, frame: bytes, *, length: bool = False, ns: int | None = None,
                 offset: int | None = None) -> bytes:
    """An L2TP data message around a whole PPP frame, encoded by the oracle codec."""
    header = l2tp.Header(False, tid, sid, ns, 0 if ns is not None else None, 0 if length else None, offset)
    return l2tp.encode_header(header, len(frame)) + frame


def ppp_frame(protocol: int, payload: bytes, *, acfc: bool = False, pfc: bool = False) -> bytes:
    return ppp.encode_frame_header(protocol, acfc=acfc, pfc=pfc) + payload


def control_message(tid: int = TID, ns: int = 0) -> bytes:
    return l2tp.encode_header(l2tp.Header(True, tid, 0, ns, 0), 8) + bytes(8)


def drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536))
        except BlockingIOError:
            return out


@dataclass
class Harness:
    """A DataPlane with one session whose TUN is one end of a datagram socketpair.

    ``peer`` is the UDP socket of the remote side; ``tun`` is the test's end of the socketpair: what the
    data plane writes to its 'TUN' arrives there, and what the test sends there is read by rx_tun."""

    dp: _dp.DataPlane
    sock: socket.socket
    peer: socket.socket
    tun: socket.socket
    tun_dp: socket.socket
    si: int
    slot: int
    others: list[socket.socket] = field(default_factory=list)

    @classmethod
    def make(cls, family: int = socket.AF_INET, host: str = "127.0.0.1", peer_host: str | None = None,
             **session_kw) -> Harness:
        dp_kw = {k: session_kw.pop(k) for k in list(session_kw) if k in
                 ("batch", "headroom", "max_sessions", "slot_size", "max_bursts", "punt_slots", "punt_bytes")}
        dp = _dp.DataPlane(**dp_kw)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        sock.setblocking(False)
        peer_host = peer_host or host
        peer = socket.socket(socket.AF_INET6 if ":" in peer_host else socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind((peer_host, 0))
        peer.setblocking(False)
        tun, tun_dp = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        tun.setblocking(False)
        tun_dp.setblocking(False)
        si = dp.add_socket(sock.fileno())
        slot = dp.add_session(TID, SID, PEER_TID, PEER_SID, peer_host, peer.getsockname()[1], si,
                              tun_dp.fileno(), **session_kw)
        return cls(dp, sock, peer, tun, tun_dp, si, slot)

    @property
    def dp_addr(self):
        return self.sock.getsockname()[:2]

    def to_dp(self, *datagrams: bytes, via: socket.socket | None = None) -> int:
        """Send datagrams to the data plane's socket and run one rx_udp; returns its count."""
        for d in datagrams:
            (via or self.peer).sendto(d, self.dp_addr)
        return self.dp.rx_udp(self.si)

    def from_tun(self, *packets: bytes) -> int:
        for p in packets:
            self.tun.send(p)
        return self.dp.rx_tun(self.slot)

    def close(self) -> None:
        for s in (self.sock, self.peer, self.tun, self.tun_dp, *self.others):
            s.close()


def mppe_payload(datagram: bytes) -> bytes:
    """The information field of a data message the data plane sent; it must be a compressed datagram."""
    header, start, end = l2tp.decode_header(datagram)
    assert not header.is_control and end == len(datagram)
    frame = ppp.decode_frame(datagram[start:end])
    assert frame.protocol == ppp.Protocol.COMPRESSED
    return frame.payload


@dataclass
class Side:
    """One DataPlane with one session (ids ``tid``/``sid``) whose peer is the test's UDP socket ``wire`` and
    whose TUN (TAP on a bridged session) is a datagram socketpair: the test carries datagrams between two."""

    dp: _dp.DataPlane
    sock: socket.socket  # the data plane's UDP socket
    wire: socket.socket  # its peer as it sees it: the test's socket
    tun: socket.socket  # the test's end of the 'TUN'
    tun_dp: socket.socket
    si: int
    slot: int
    tid: int
    sid: int

    @classmethod
    def make(cls, tid: int, sid: int, peer_tid: int, peer_sid: int, **session_kw) -> Side:
        dp = _dp.DataPlane(batch=16, max_sessions=8)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        wire = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (sock, wire):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        tun, tun_dp = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        tun.setblocking(False)
        tun_dp.setblocking(False)
        si = dp.add_socket(sock.fileno())
        slot = dp.add_session(tid, sid, peer_tid, peer_sid, "127.0.0.1", wire.getsockname()[1], si,
                              tun_dp.fileno(), **session_kw)
        return cls(dp, sock, wire, tun, tun_dp, si, slot, tid, sid)

    def close(self) -> None:
        for s in (self.sock, self.wire, self.tun, self.tun_dp):
            s.close()

    def transmit(self, packets: list[bytes]) -> list[bytes]:
        """Packets (Ethernet frames when bridged) into the TUN, rx_tun, and the datagrams the data plane sent
        (in order)."""
        out = []
        for i in range(0, len(packets), 8):  # the socketpair queues a few datagrams only
            for p in packets[i : i + 8]:
                self.tun.send(p)
            assert self.dp.rx_tun(self.slot) == len(packets[i : i + 8])
            out += drain(self.wire)
        assert len(out) == len(packets)
        return out

    def receive(self, datagrams: list[bytes]) -> list[bytes]:
        """Datagrams from the peer (as if from ``wire``), rx_udp, and what reached the TUN."""
        got = []
        for i in range(0, len(datagrams), 32):
            for d in datagrams[i : i + 32]:
                self.wire.sendto(d, self.sock.getsockname())
            self.dp.rx_udp(self.si)
            got += drain(self.tun)
        return got

    def stats(self) -> dict:
        return self.dp.session_stats(self.tid, self.sid)

    def mppe(self) -> dict:
        return self.stats()["mppe"]
