# cython: language_level=3
"""Data plane (Cython): per-packet L2TP/PPP work, a batch at a time, without Python objects.

This first part holds the per-packet building blocks and the batch skeleton:

- ``l2tp_parse``: the L2TP header parser (twin of ``fastl2tp.wire.l2tp.decode_header``),
- ``ppp_parse``: the PPP header of a data message (ACFC/PFC),
- ``l2tp_build_data``: L2TP data header + PPP header written in front of a payload (headroom),
- ``tcp_clamp_mss``: MSS clamping on TCP SYNs, IPv4 and IPv6, incremental checksum (RFC 1624),
- ``PacketBatch``: preallocated slots + iovec/mmsghdr arrays; ``parse()`` runs ``with nogil``,
- ``DataPlane``: the per-packet engine. Sessions in a C table (open-addressing hash on our tunnel and
  session ids), UDP sockets and TUN fds registered by Python; ``rx_udp`` (recvmmsg -> parse -> lookup ->
  peer check -> PPP demux -> MSS clamp -> write to TUN, control and PPP control frames punted) and
  ``rx_tun`` (read bursts -> MSS clamp -> header written in the headroom -> one sendmmsg) each run a
  whole burst ``with nogil``; ``take_punted()`` turns the punted items into Python objects afterwards.

The C-level declarations are in ``_dp.pxd``. The ``def`` functions at the end are the Python-visible
wrappers used by tests (the oracle comparisons) and benchmarks; nothing per packet goes through them.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree
from libc.errno cimport (
    EAGAIN, ECONNREFUSED, EHOSTUNREACH, EINTR, ENETDOWN, ENETUNREACH, ENOBUFS, errno,
)
from libc.stdint cimport int16_t, int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.uio cimport iovec
from posix.unistd cimport read, write

from fastl2tp._rc4 cimport (
    MPPE_MAX_KEY_LEN, mppe_change_key, mppe_keys, mppe_keys_init, mppe_next_session_key, mppe_rekey_rc4, rc4_crypt, rc4_state,
)
from fastl2tp.includes.linux cimport (
    AF_INET, AF_INET6, MSG_DONTWAIT, MSG_TRUNC, getsockname, htons, mmsghdr, msghdr, ntohs, recvmmsg,
    sendmmsg, sendmsg, sockaddr, sockaddr_in, sockaddr_in6, sockaddr_storage, socklen_t,
)

cdef extern from "assert.h" nogil:
    void c_assert "assert"(bint)   # compiled out unless FASTL2TP_DEBUG=1 (NDEBUG)

import os as _os
import socket as _socket
from enum import IntEnum


cdef inline uint16_t _be16(const uint8_t* p) noexcept nogil:
    return <uint16_t>((<uint16_t>p[0] << 8) | p[1])


cdef inline void _put16(uint8_t* p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>v


# --- L2TP header -----------------------------------------------------------------------------------------

cdef dp_reason l2tp_parse(const uint8_t* p, size_t n, l2tp_hdr* h) noexcept nogil:
    # The checks follow wire.l2tp.decode_header in the same order, so that each failure has the same
    # reason as the oracle's DecodeError.
    cdef uint16_t flags
    cdef bint ctrl
    cdef size_t pos = 2
    cdef size_t end
    h.err_pos = 0
    if n < 6:
        h.reason = DP_SHORT
        return DP_SHORT
    flags = _be16(p)
    h.flags = flags
    if (flags & L2TP_VERSION_MASK) != L2TP_VERSION:
        h.reason = DP_BAD_VERSION
        h.err_pos = 1
        return DP_BAD_VERSION
    ctrl = (flags & L2TP_FLAG_T) != 0
    if flags & L2TP_FLAG_L:
        h.length = _be16(p + 2)        # n >= 6: always there
        pos = 4
    elif ctrl:
        h.reason = DP_CTRL_NO_L
        return DP_CTRL_NO_L
    if n < pos + 4:
        h.reason = DP_TRUNC_IDS
        h.err_pos = <uint32_t>pos
        return DP_TRUNC_IDS
    h.tunnel_id = _be16(p + pos)
    h.session_id = _be16(p + pos + 2)
    pos += 4
    if flags & L2TP_FLAG_S:
        if n < pos + 4:
            h.reason = DP_TRUNC_NS
            h.err_pos = <uint32_t>pos
            return DP_TRUNC_NS
        h.ns = _be16(p + pos)
        h.nr = _be16(p + pos + 2)
        pos += 4
    elif ctrl:
        h.reason = DP_CTRL_NO_S
        return DP_CTRL_NO_S
    if flags & L2TP_FLAG_O:
        if ctrl:
            h.reason = DP_CTRL_WITH_O
            return DP_CTRL_WITH_O
        if n < pos + 2:
            h.reason = DP_TRUNC_OFFSET
            h.err_pos = <uint32_t>pos
            return DP_TRUNC_OFFSET
        h.offset_size = _be16(p + pos)
        pos += 2 + <size_t>h.offset_size
    if ctrl and (flags & L2TP_FLAG_P):
        h.reason = DP_CTRL_WITH_P
        return DP_CTRL_WITH_P
    end = n
    if flags & L2TP_FLAG_L:
        if h.length > n:
            h.reason = DP_BAD_LENGTH
            h.err_pos = 2
            return DP_BAD_LENGTH
        end = h.length
    if pos > end:
        h.reason = DP_OFFSET_PAST_END
        h.err_pos = <uint32_t>pos
        return DP_OFFSET_PAST_END
    h.payload_start = <uint32_t>pos
    h.payload_end = <uint32_t>end
    h.reason = DP_OK
    return DP_OK


# --- PPP header ----------------------------------------------------------------------------------------------

cdef dp_reason ppp_parse(const uint8_t* p, size_t n, ppp_hdr* h) noexcept nogil:
    # Address/Control FF 03 unless ACFC; then a protocol of 1 byte (PFC: odd first byte) or 2 bytes
    # (even first byte, odd second byte). RFC 1661 §2: "the least significant bit of the least
    # significant octet is 1, and of the most significant octet 0".
    cdef size_t pos = 0
    cdef uint8_t b0
    if n >= 2 and p[0] == 0xFF and p[1] == 0x03:
        pos = 2
    if pos >= n:
        h.reason = DP_PPP_SHORT
        return DP_PPP_SHORT
    b0 = p[pos]
    if b0 & 1:
        h.proto = b0
        h.hdr_len = <uint16_t>(pos + 1)
    else:
        if pos + 2 > n:
            h.reason = DP_PPP_SHORT
            return DP_PPP_SHORT
        if not (p[pos + 1] & 1):
            h.reason = DP_PPP_BAD_PROTO
            return DP_PPP_BAD_PROTO
        h.proto = _be16(p + pos)
        h.hdr_len = <uint16_t>(pos + 2)
    h.reason = DP_OK
    return DP_OK


# --- building a data message ----------------------------------------------------------------------------

cdef Py_ssize_t l2tp_build_data(uint8_t* buf, size_t payload_off, size_t payload_len,
                                const l2tp_tx* tx) noexcept nogil:
    cdef uint16_t flags = L2TP_VERSION
    cdef size_t l2tp_len = 6
    cdef size_t ppp_len = 0
    cdef size_t total
    cdef uint8_t* p
    cdef uint8_t* q
    if tx.flags & TX_LENGTH:
        flags |= L2TP_FLAG_L
        l2tp_len += 2
    if tx.flags & TX_SEQ:
        flags |= L2TP_FLAG_S
        l2tp_len += 4
    if not (tx.flags & TX_NO_PPP):
        ppp_len = 0 if (tx.flags & TX_ACFC) else 2
        ppp_len += 1 if ((tx.flags & TX_PFC) and tx.ppp_proto < 0x100) else 2
    total = l2tp_len + ppp_len + payload_len
    if l2tp_len + ppp_len > payload_off or ((tx.flags & TX_LENGTH) and total > 0xFFFF):
        return -1
    p = buf + payload_off - l2tp_len - ppp_len
    q = p
    _put16(q, flags)
    q += 2
    if tx.flags & TX_LENGTH:
        _put16(q, <uint16_t>total)
        q += 2
    _put16(q, tx.tunnel_id)
    _put16(q + 2, tx.session_id)
    q += 4
    if tx.flags & TX_SEQ:
        _put16(q, tx.ns)
        _put16(q + 2, tx.nr)
        q += 4
    if ppp_len:
        if not (tx.flags & TX_ACFC):
            q[0] = 0xFF
            q[1] = 0x03
            q += 2
        if (tx.flags & TX_PFC) and tx.ppp_proto < 0x100:
            q[0] = <uint8_t>tx.ppp_proto
            q += 1
        else:
            _put16(q, tx.ppp_proto)
            q += 2
    c_assert(q == buf + payload_off)
    return <Py_ssize_t>(p - buf)


# --- TCP MSS clamping ----------------------------------------------------------------------------------------

cdef enum:
    _IPPROTO_HOPOPTS = 0
    _IPPROTO_TCP = 6
    _IPPROTO_ROUTING = 43
    _IPPROTO_FRAGMENT = 44
    _IPPROTO_AH = 51
    _IPPROTO_DSTOPTS = 60
    _TCP_SYN = 0x02
    _TCPOPT_EOL = 0
    _TCPOPT_NOP = 1
    _TCPOPT_MSS = 2


cdef inline uint16_t _csum_replace16(uint16_t csum, uint16_t old, uint16_t new) noexcept nogil:
    # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), one's complement sums
    cdef uint32_t s = (<uint32_t>(~csum & 0xFFFF)) + (<uint32_t>(~old & 0xFFFF)) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return <uint16_t>(~s & 0xFFFF)


cdef inline uint16_t _swap16(uint16_t v) noexcept nogil:
    return <uint16_t>((v >> 8) | (v << 8))


cdef int tcp_clamp_mss(uint8_t* pkt, size_t n, uint16_t mss) noexcept nogil:
    cdef size_t off, ihl, tot, hlen, tcplen, doff, o, olen
    cdef uint8_t nh
    cdef uint8_t* tcp
    cdef uint16_t old, m_old, m_new
    if n < 20:
        return 0
    if (pkt[0] >> 4) == 4:
        ihl = <size_t>(pkt[0] & 0x0F) * 4
        tot = _be16(pkt + 2)
        if ihl < 20 or tot < ihl or tot > n:
            return 0
        n = tot                                 # ignore link padding
        if pkt[9] != _IPPROTO_TCP or (_be16(pkt + 6) & 0x1FFF) != 0:
            return 0                            # not TCP, or not the first fragment
        off = ihl
    elif (pkt[0] >> 4) == 6:
        if n < 40:
            return 0
        tot = 40 + <size_t>_be16(pkt + 4)
        if tot == 40 or tot > n:                # jumbogram / truncated
            return 0
        n = tot
        nh = pkt[6]
        off = 40
        while nh != _IPPROTO_TCP:
            if off + 8 > n:
                return 0
            if nh == _IPPROTO_HOPOPTS or nh == _IPPROTO_ROUTING or nh == _IPPROTO_DSTOPTS:
                hlen = (<size_t>pkt[off + 1] + 1) * 8
            elif nh == _IPPROTO_FRAGMENT:
                if (_be16(pkt + off + 2) & 0xFFF8) != 0:
                    return 0                    # not the first fragment
                hlen = 8
            elif nh == _IPPROTO_AH:
                hlen = (<size_t>pkt[off + 1] + 2) * 4
            else:
                return 0                        # not TCP (or ESP, No Next Header, ...)
            nh = pkt[off]
            off += hlen
    else:
        return 0
    if off + 20 > n:
        return 0
    tcp = pkt + off
    tcplen = n - off
    if not (tcp[13] & _TCP_SYN):
        return 0
    doff = <size_t>(tcp[12] >> 4) * 4
    if doff < 20 or doff > tcplen:
        return 0
    o = 20
    while o < doff:
        if tcp[o] == _TCPOPT_EOL:
            return 0
        if tcp[o] == _TCPOPT_NOP:
            o += 1
            continue
        if o + 2 > doff:
            return 0
        olen = tcp[o + 1]
        if olen < 2 or o + olen > doff:
            return 0
        if tcp[o] == _TCPOPT_MSS and olen == 4:
            old = _be16(tcp + o + 2)
            if old <= mss:
                return 0
            _put16(tcp + o + 2, mss)
            # The checksum sums 16-bit words from the start of the TCP header; a value at an odd
            # offset straddles two words, which is the same as its byte-swapped value at an even one.
            if o & 1:
                m_old = _swap16(old)
                m_new = _swap16(mss)
            else:
                m_old = old
                m_new = mss
            _put16(tcp + 16, _csum_replace16(_be16(tcp + 16), m_old, m_new))
            return 1
        o += olen
    return 0


# --- the batch -------------------------------------------------------------------------------------------------

cdef class PacketBatch:
    """``capacity`` slots of ``slot_size`` bytes in one arena, datagrams at offset ``headroom``.

    ``parse()`` parses every slot's L2TP header (and, for data messages, the PPP header) with the GIL
    released and counts each failure by reason. ``recv(fd)`` fills the batch with one recvmmsg.
    """

    def __cinit__(self, Py_ssize_t capacity=64, Py_ssize_t slot_size=2048, Py_ssize_t headroom=64):
        cdef Py_ssize_t i
        if capacity < 1 or headroom < 0 or slot_size <= headroom or slot_size > 65536 + headroom:
            raise ValueError("need capacity >= 1 and headroom < slot_size <= 64 KiB + headroom")
        self.capacity = capacity
        self.slot_size = slot_size
        self.headroom = headroom
        self.count = 0
        self.arena = <uint8_t*>PyMem_RawCalloc(capacity, slot_size)
        self.lengths = <uint32_t*>PyMem_RawCalloc(capacity, sizeof(uint32_t))
        self.hdrs = <l2tp_hdr*>PyMem_RawCalloc(capacity, sizeof(l2tp_hdr))
        self.ppp = <ppp_hdr*>PyMem_RawCalloc(capacity, sizeof(ppp_hdr))
        self.iov = <iovec*>PyMem_RawCalloc(capacity, sizeof(iovec))
        self.msgs = <mmsghdr*>PyMem_RawCalloc(capacity, sizeof(mmsghdr))
        self.addrs = <sockaddr_storage*>PyMem_RawCalloc(capacity, sizeof(sockaddr_storage))
        if (self.arena == NULL or self.lengths == NULL or self.hdrs == NULL or self.ppp == NULL
                or self.iov == NULL or self.msgs == NULL or self.addrs == NULL):
            raise MemoryError()
        for i in range(capacity):
            self.iov[i].iov_base = self.arena + i * slot_size + headroom
            self.iov[i].iov_len = slot_size - headroom
            self.msgs[i].msg_hdr.msg_iov = &self.iov[i]
            self.msgs[i].msg_hdr.msg_iovlen = 1
            self.msgs[i].msg_hdr.msg_name = &self.addrs[i]
            self.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
        memset(self.drops, 0, sizeof(self.drops))

    def __dealloc__(self):
        PyMem_RawFree(self.arena)
        PyMem_RawFree(self.lengths)
        PyMem_RawFree(self.hdrs)
        PyMem_RawFree(self.ppp)
        PyMem_RawFree(self.iov)
        PyMem_RawFree(self.msgs)
        PyMem_RawFree(self.addrs)

    # -- filling -----------------------------------------------------------------------------------

    def fill(self, packets) -> None:
        """Copy a sequence of datagrams into slots 0..len-1 (tests and benchmarks)."""
        cdef Py_ssize_t n = len(packets)
        cdef Py_ssize_t i
        cdef const uint8_t[::1] data
        if n > self.capacity:
            raise ValueError(f"{n} packets for a batch of {self.capacity}")
        for i in range(n):
            data = packets[i]
            if data.shape[0] > self.slot_size - self.headroom:
                raise ValueError(f"packet {i} of {data.shape[0]} bytes does not fit a slot")
            if data.shape[0]:
                memcpy(self.arena + i * self.slot_size + self.headroom, &data[0], data.shape[0])
            self.lengths[i] = <uint32_t>data.shape[0]
        self.count = n

    def recv(self, int fd) -> int:
        """One non-blocking recvmmsg into the slots; returns the number received (0 when none)."""
        cdef int got
        cdef int err = 0
        cdef Py_ssize_t i
        with nogil:
            for i in range(self.capacity):
                self.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
                self.msgs[i].msg_hdr.msg_flags = 0
            got = recvmmsg(fd, self.msgs, <unsigned int>self.capacity, MSG_DONTWAIT, NULL)
            if got < 0:
                err = errno
            else:
                for i in range(got):
                    self.lengths[i] = self.msgs[i].msg_len
        if got < 0:
            self.count = 0
            if err == EAGAIN or err == EINTR:         # EWOULDBLOCK == EAGAIN on Linux
                return 0                        # nothing queued (or interrupted): try on the next wakeup
            raise OSError(err, "recvmmsg failed")
        self.count = got
        return got

    def packet(self, Py_ssize_t i) -> bytes:
        """The datagram in slot ``i``."""
        if not 0 <= i < self.count:
            raise IndexError(i)
        return PyBytes_FromStringAndSize(
            <char*>(self.arena + i * self.slot_size + self.headroom), self.lengths[i])

    # -- parsing -----------------------------------------------------------------------------------

    cdef Py_ssize_t parse_all(self) noexcept nogil:
        cdef Py_ssize_t i
        cdef Py_ssize_t ok = 0
        cdef const uint8_t* p
        cdef l2tp_hdr* h
        cdef dp_reason r
        for i in range(self.count):
            p = self.arena + i * self.slot_size + self.headroom
            h = &self.hdrs[i]
            r = l2tp_parse(p, self.lengths[i], h)
            if r != DP_OK:
                self.drops[<int>r] += 1
                continue
            if h.flags & L2TP_FLAG_T:
                self.control_packets += 1
                continue
            r = ppp_parse(p + h.payload_start, h.payload_end - h.payload_start, &self.ppp[i])
            if r != DP_OK:
                h.reason = <uint16_t>r
                self.drops[<int>r] += 1
                continue
            ok += 1
        self.data_packets += <uint64_t>ok
        return ok

    def parse(self) -> int:
        """Parse every filled slot (GIL released); returns the number of valid data messages."""
        cdef Py_ssize_t ok
        with nogil:
            ok = self.parse_all()
        return ok

    def result(self, Py_ssize_t i):
        """Slot ``i`` after ``parse()``: ``(reason, header tuple or None, ppp (proto, hdr_len) or None)``.

        The header tuple is ``parse_header``'s."""
        if not 0 <= i < self.count:
            raise IndexError(i)
        cdef l2tp_hdr* h = &self.hdrs[i]
        if h.reason != DP_OK and h.reason < DP_PPP_SHORT:
            return DropReason(h.reason), None, None
        hdr = _header_tuple(h)
        if h.flags & L2TP_FLAG_T:
            return DropReason.OK, hdr, None
        if h.reason != DP_OK:
            return DropReason(h.reason), hdr, None
        return DropReason.OK, hdr, (self.ppp[i].proto, self.ppp[i].hdr_len)

    def counters(self) -> dict:
        """Drops by reason name (every reason, zeros included), plus ``data`` and ``control``."""
        out = {"data": self.data_packets, "control": self.control_packets}
        for reason in DropReason:
            if reason != DropReason.OK:
                out[reason.name.lower()] = self.drops[<int>reason]
        return out

    def reset_counters(self) -> None:
        memset(self.drops, 0, sizeof(self.drops))
        self.data_packets = 0
        self.control_packets = 0


# --- Python-visible wrappers -----------------------------------------------------------------------------

DropReason = IntEnum("DropReason", [
    ("OK", DP_OK),
    ("SHORT", DP_SHORT),
    ("BAD_VERSION", DP_BAD_VERSION),
    ("CTRL_NO_L", DP_CTRL_NO_L),
    ("TRUNC_IDS", DP_TRUNC_IDS),
    ("TRUNC_NS", DP_TRUNC_NS),
    ("CTRL_NO_S", DP_CTRL_NO_S),
    ("CTRL_WITH_O", DP_CTRL_WITH_O),
    ("TRUNC_OFFSET", DP_TRUNC_OFFSET),
    ("CTRL_WITH_P", DP_CTRL_WITH_P),
    ("BAD_LENGTH", DP_BAD_LENGTH),
    ("OFFSET_PAST_END", DP_OFFSET_PAST_END),
    ("PPP_SHORT", DP_PPP_SHORT),
    ("PPP_BAD_PROTO", DP_PPP_BAD_PROTO),
    ("NO_SESSION", DP_NO_SESSION),
    ("PEER_MISMATCH", DP_PEER_MISMATCH),
    ("BAD_IP", DP_BAD_IP),
    ("TOO_BIG", DP_TOO_BIG),
    ("TUN_WRITE", DP_TUN_WRITE),
    ("UDP_EAGAIN", DP_UDP_EAGAIN),
    ("UDP_SEND", DP_UDP_SEND),
    ("UDP_RECV", DP_UDP_RECV),
    ("PUNT_FULL", DP_PUNT_FULL),
    ("NO_TUN", DP_NO_TUN),
    ("MPPE_SHORT", DP_MPPE_SHORT),
    ("MPPE_BAD_HEADER", DP_MPPE_BAD_HEADER),
    ("MPPE_BAD_COUNT", DP_MPPE_BAD_COUNT),
    ("MPPE_DECRYPT", DP_MPPE_DECRYPT),
    ("MPPE_DISCARD", DP_MPPE_DISCARD),
    ("MPPE_UNENCRYPTED", DP_MPPE_UNENCRYPTED),
], module=__name__)
DropReason.__doc__ = "Why the data plane dropped a packet (one counter each); OK is not a drop."
NUM_REASONS = DP_NREASONS
if <int>DP_NREASONS > <int>DP_REASON_SLOTS:
    raise ImportError("fastl2tp._dp: DP_REASON_SLOTS is smaller than the number of drop reasons")

TX_FLAGS = {"length": TX_LENGTH, "seq": TX_SEQ, "acfc": TX_ACFC, "pfc": TX_PFC, "no_ppp": TX_NO_PPP}


cdef tuple _header_tuple(const l2tp_hdr* h):
    cdef uint16_t f = h.flags
    return (
        (f & L2TP_FLAG_T) != 0,
        h.tunnel_id,
        h.session_id,
        h.ns if f & L2TP_FLAG_S else None,
        h.nr if f & L2TP_FLAG_S else None,
        h.length if f & L2TP_FLAG_L else None,
        h.offset_size if f & L2TP_FLAG_O else None,
        (f & L2TP_FLAG_P) != 0,
        h.payload_start,
        h.payload_end,
    )


cdef object _decode_error(const l2tp_hdr* h, size_t n):
    """The exception wire.l2tp.decode_header raises for the same input (same type, text, offset, field)."""
    from fastl2tp.errors import DecodeError
    from fastl2tp.wire.l2tp import UnsupportedVersion
    cdef int r = h.reason
    if r == DP_BAD_VERSION:
        return UnsupportedVersion(h.flags & L2TP_VERSION_MASK)
    if r == DP_SHORT:
        return DecodeError("datagram shorter than an L2TP header", offset=0, field="header")
    if r == DP_CTRL_NO_L:
        return DecodeError("control message without the L bit", offset=0, field="flags")
    if r == DP_TRUNC_IDS:
        return DecodeError("truncated tunnel/session id", offset=h.err_pos, field="tunnel_id")
    if r == DP_TRUNC_NS:
        return DecodeError("truncated Ns/Nr", offset=h.err_pos, field="ns")
    if r == DP_CTRL_NO_S:
        return DecodeError("control message without the S bit", offset=0, field="flags")
    if r == DP_CTRL_WITH_O:
        return DecodeError("control message with the O bit", offset=0, field="flags")
    if r == DP_TRUNC_OFFSET:
        return DecodeError("truncated offset size", offset=h.err_pos, field="offset_size")
    if r == DP_CTRL_WITH_P:
        return DecodeError("control message with the P bit", offset=0, field="flags")
    if r == DP_BAD_LENGTH:
        return DecodeError(f"length field {h.length} exceeds datagram of {n} bytes", offset=2, field="length")
    if r == DP_OFFSET_PAST_END:
        return DecodeError("header runs past the end of the message", offset=h.err_pos, field="offset_pad")
    return AssertionError(f"no error for reason {r}")


def parse_header(const uint8_t[::1] data not None) -> tuple:
    """Parse one L2TP header with the C parser.

    Returns ``(is_control, tunnel_id, session_id, ns, nr, length, offset_size, priority,
    payload_start, payload_end)`` — the fields of ``wire.l2tp.Header`` and the two offsets that
    ``decode_header`` returns — or raises the same ``DecodeError``/``UnsupportedVersion`` it raises.
    """
    cdef l2tp_hdr h
    cdef size_t n = data.shape[0]
    cdef const uint8_t* p = &data[0] if n else <const uint8_t*>b""
    if l2tp_parse(p, n, &h) != DP_OK:
        raise _decode_error(&h, n)
    return _header_tuple(&h)


def parse_reason(const uint8_t[::1] data not None) -> int:
    """The ``DropReason`` value the parser gives ``data`` (``DropReason.OK`` when it parses)."""
    cdef l2tp_hdr h
    cdef size_t n = data.shape[0]
    cdef const uint8_t* p = &data[0] if n else <const uint8_t*>b""
    return DropReason(l2tp_parse(p, n, &h))


def parse_ppp(const uint8_t[::1] data not None) -> tuple:
    """Parse a PPP header: ``(protocol, header_length)``; ``ValueError`` naming the drop reason."""
    cdef ppp_hdr h
    cdef size_t n = data.shape[0]
    cdef const uint8_t* p = &data[0] if n else <const uint8_t*>b""
    if ppp_parse(p, n, &h) != DP_OK:
        raise ValueError(DropReason(h.reason).name)
    return h.proto, h.hdr_len


def build_data_header(const uint8_t[::1] payload not None, int tunnel_id, int session_id, *,
                      bint length=False, ns=None, nr=None, int ppp_proto=0x0021,
                      bint acfc=False, bint pfc=False, bint no_ppp=False,
                      Py_ssize_t headroom=L2TP_MAX_DATA_HDR + 4) -> bytes:
    """Build a whole L2TP data message around ``payload`` with the C builder (in a buffer with
    ``headroom`` bytes in front of the payload, as the data plane does). ``ns``/``nr`` given means
    the S bit; ``ValueError`` when the headroom is too small or the message too long for Length."""
    cdef l2tp_tx tx
    cdef Py_ssize_t n = payload.shape[0]
    cdef Py_ssize_t start
    if not (0 <= tunnel_id <= 0xFFFF and 0 <= session_id <= 0xFFFF and 0 <= ppp_proto <= 0xFFFF):
        raise ValueError("ids and protocol are 16-bit")
    if headroom < 0:
        raise ValueError("negative headroom")
    tx.tunnel_id = tunnel_id
    tx.session_id = session_id
    tx.ppp_proto = ppp_proto
    tx.ns = 0
    tx.nr = 0
    tx.flags = 0
    if length:
        tx.flags |= TX_LENGTH
    if ns is not None or nr is not None:
        tx.flags |= TX_SEQ
        tx.ns = ns or 0
        tx.nr = nr or 0
    if acfc:
        tx.flags |= TX_ACFC
    if pfc:
        tx.flags |= TX_PFC
    if no_ppp:
        tx.flags |= TX_NO_PPP
    buf = bytearray(headroom + n)
    cdef uint8_t[::1] view = buf
    if n:
        memcpy(&view[headroom], &payload[0], n)
    start = l2tp_build_data(&view[0] if headroom + n else NULL, headroom, n, &tx)
    if start < 0:
        raise ValueError("headroom too small or message too long for the Length field")
    return bytes(buf[start:])


def clamp_mss(uint8_t[::1] packet not None, int mss) -> bool:
    """Clamp the MSS option of an IPv4/IPv6 TCP SYN in ``packet`` (a writable buffer, e.g. a
    bytearray) to ``mss``, fixing the TCP checksum; True when the packet was changed."""
    if not 0 <= mss <= 0xFFFF:
        raise ValueError("mss is 16-bit")
    if packet.shape[0] == 0:
        return False
    return tcp_clamp_mss(&packet[0], packet.shape[0], <uint16_t>mss) == 1



# --- the per-packet engine ----------------------------------------------------------------------------------

cdef enum:
    _PPP_IPV4 = 0x0021
    _PPP_IPV6 = 0x0057
    _MAX_SESSIONS = 1 << 20
    _MAX_BATCH = 1024
    _MIN_MSS = 40                 # IPv6 clamps to mss - 20: keep that positive (real values are ~1400)
    _MSS_V6_LESS = 20             # IPv6 header is 20 bytes longer than IPv4's: MSS(v6) = MSS(v4) - 20


cdef inline uint64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


cdef inline uint32_t _key(uint16_t tunnel_id, uint16_t session_id) noexcept nogil:
    return (<uint32_t>tunnel_id << 16) | session_id


cdef inline uint32_t _home(uint32_t key, uint32_t shift) noexcept nogil:
    # Fibonacci hashing: the top bits of key * 2^32/phi. Ids are often small consecutive numbers, and
    # the multiply spreads them over the whole table.
    return <uint32_t>(key * <uint32_t>2654435769U) >> shift


cdef inline bint _same_peer(sockaddr_storage* a, sockaddr_storage* b) noexcept nogil:
    """Same family, address and port (IPv6: flow label ignored; scope compared when ours has one)."""
    cdef sockaddr_in* a4
    cdef sockaddr_in* b4
    cdef sockaddr_in6* a6
    cdef sockaddr_in6* b6
    if a.ss_family != b.ss_family:
        return False
    if a.ss_family == AF_INET:
        a4 = <sockaddr_in*>a
        b4 = <sockaddr_in*>b
        return a4.sin_port == b4.sin_port and a4.sin_addr.s_addr == b4.sin_addr.s_addr
    if a.ss_family == AF_INET6:
        a6 = <sockaddr_in6*>a
        b6 = <sockaddr_in6*>b
        return (a6.sin6_port == b6.sin6_port
                and memcmp(&a6.sin6_addr, &b6.sin6_addr, 16) == 0
                and (a6.sin6_scope_id == 0 or a6.sin6_scope_id == b6.sin6_scope_id))
    return False


cdef inline void _sdrop(uint64_t* global_drops, dp_session* s, dp_reason r, uint64_t k) noexcept nogil:
    global_drops[<int>r] += k
    s.drops[<int>r] += k


# --- MPPE (RFC 3078) in the data path -------------------------------------------------------------------------
#
# Sender (rx_tun): the coherency count runs 0, 1, ... mod 4096. Stateless: a key change before every
# packet and the A (flushed) bit on every packet. Stateful: a key change before each "flag" packet (low
# octet of the count 0xFF), with the A bit on it (pppd's receiver requires it; the BSD/RFC receivers accept
# it). After a CCP Reset-Request (mppe_reset_received) the next packet is flushed, and we send it as the
# next flag packet: the count jumps ahead to the next xFF. RFC 3078 is read two ways for a flush: re-init
# RC4 with the same session key (the RFC's text, BSD's ng_mppc, mpd) or change the key (pppd/Linux); on a
# flag packet both readings do the same key change, so every receiver follows us.
#
# Receiver (rx_udp): decryption in place in the receive slot. The count, keys and RC4 state are committed
# only when the decrypted inner protocol is plausible, so a forged or damaged packet cannot move the key
# state (MPPE has no integrity check: a plausible inner protocol is the only evidence of the right key).
# A flushed stateful packet that is not a flag packet is decrypted in whichever of the two readings above
# gives a plausible inner protocol.

cdef enum:
    _PPP_MPPE = 0x00FD            # PPP Compressed Datagram (RFC 1962), MPPE's protocol


cdef inline bint _inner_ok(const uint8_t* p, size_t n, bint strict) noexcept nogil:
    """Is ``p[:n]`` a plausible decrypted payload? Loose: a protocol field MPPE carries (0x0021..0x00FA,
    odd low octet; one octet with PFC). Strict (used when the answer decides a resynchronisation): IPv4 or
    IPv6 with the matching IP version nibble (about 1 in 2000 for random bytes)."""
    cdef uint16_t proto
    cdef size_t hl
    if n == 0:
        return False
    if p[0] & 1:
        proto = p[0]
        hl = 1
    else:
        if n < 2 or p[0] != 0 or not (p[1] & 1):
            return False
        proto = p[1]
        hl = 2
    if proto < 0x21 or proto > 0xFA:
        return False
    if not strict:
        return True
    if n <= hl:
        return False
    if proto == _PPP_IPV4:
        return (p[hl] >> 4) == 4
    if proto == _PPP_IPV6:
        return (p[hl] >> 4) == 6
    return False


cdef inline void _keys_head(mppe_keys* dst, const mppe_keys* src) noexcept nogil:
    """Copy the key material without the 1 KiB RC4 state (every user re-keys it)."""
    memcpy(dst.start_key, src.start_key, MPPE_MAX_KEY_LEN)
    memcpy(dst.session_key, src.session_key, MPPE_MAX_KEY_LEN)
    dst.key_len = src.key_len
    dst.bits = src.bits


cdef inline bint _probe(const rc4_state* st, const uint8_t* data, size_t pn, bint strict) noexcept nogil:
    """Decrypt the first ``pn`` (<= 3) octets with a copy of ``st`` and judge them."""
    cdef rc4_state t
    cdef uint8_t peek[3]
    memcpy(&t, st, sizeof(rc4_state))
    rc4_crypt(&t, data, peek, pn)
    return _inner_ok(peek, pn, strict)


cdef void mppe_encrypt(dp_mppe* m, uint8_t* hdr, size_t n) noexcept nogil:
    """Write the MPPE header at ``hdr[0:2]`` and encrypt ``hdr[2:2+n]`` (inner protocol + packet) in place."""
    cdef uint16_t count = m.tx_ccount
    cdef uint8_t bits = MPPE_BIT_D
    if m.stateless:
        mppe_change_key(&m.tx)
        bits |= MPPE_BIT_A
    else:
        if m.tx_flush:
            count |= 0xFF               # flush as the next flag packet (see above)
            m.tx_flush = 0
        if (count & 0xFF) == 0xFF:
            mppe_change_key(&m.tx)
            bits |= MPPE_BIT_A
    rc4_crypt(&m.tx.rc4, hdr + MPPE_HDR, hdr + MPPE_HDR, n)
    hdr[0] = bits | <uint8_t>(count >> 8)
    hdr[1] = <uint8_t>count
    m.tx_ccount = (count + 1) & MPPE_CCOUNT_MASK
    m.tx_packets += 1


cdef inline dp_reason _mppe_lost_sync(dp_mppe* m, bint* want_reset) noexcept nogil:
    """Stateful: enter (or stay in) the discard state; ask for a reset on entry and every N discards."""
    if not m.rx_discard:
        m.rx_discard = 1
        m.rx_discarded = 0
        want_reset[0] = True
    else:
        m.rx_discarded += 1
        if m.rx_discarded % MPPE_RESET_EVERY == 0:
            want_reset[0] = True
    return DP_MPPE_DISCARD


cdef dp_reason mppe_decrypt(dp_mppe* m, uint8_t* p, size_t n, bint* want_reset) noexcept nogil:
    """Check and decrypt the MPPE payload ``p[0:n]`` (header + ciphertext) in place. DP_OK: the inner frame
    (protocol + information) is ``p[2:n]`` and passed ``_inner_ok``. ``want_reset``: punt a ccp-reset."""
    cdef uint8_t bits
    cdef uint16_t count, x
    cdef uint32_t d, i
    cdef uint8_t* data = p + MPPE_HDR
    cdef size_t dn, pn
    cdef mppe_keys cand
    cdef mppe_keys alt
    cdef int choice = 0
    cdef bint strict
    if n < MPPE_HDR + 1:
        return DP_MPPE_SHORT
    dn = n - MPPE_HDR
    bits = p[0] & 0xF0
    count = <uint16_t>(((<uint16_t>p[0] & 0x0F) << 8) | p[1])
    if not (bits & MPPE_BIT_D) or (bits & MPPE_BIT_C):
        return DP_MPPE_BAD_HEADER
    d = (<uint32_t>count - m.rx_ccount) & MPPE_CCOUNT_MASK
    # -- stateless (RFC 3078 §8.1): one key change per count advanced, from the committed key ---------------
    if m.stateless:
        if not (bits & MPPE_BIT_A):
            return DP_MPPE_BAD_HEADER
        if d == 0 or d > MPPE_MAX_JUMP:
            return DP_MPPE_BAD_COUNT     # repeated or late (reordered), or more than we follow
        _keys_head(&cand, &m.rx)
        for i in range(d - 1):
            mppe_next_session_key(&cand)
        mppe_change_key(&cand)
        rc4_crypt(&cand.rc4, data, data, dn)
        if not _inner_ok(data, dn, True):
            # Not IP. The next count's non-IP frame (BCP, ...) is delivered but moves nothing: only an IP
            # packet commits the count and key, so forged bytes cannot push the receiver ahead.
            if d == 1 and _inner_ok(data, dn, False):
                m.rx_packets += 1
                return DP_OK
            return DP_MPPE_DECRYPT
        memcpy(m.rx.session_key, cand.session_key, MPPE_MAX_KEY_LEN)
        m.rx_ccount = count
        if d > 1:
            m.rx_resyncs += 1
            m.rx_lost += d - 1
        m.rx_packets += 1
        return DP_OK
    # -- stateful (RFC 3078 §8.2), no flush: only the next count continues the RC4 stream -----------------
    if not (bits & MPPE_BIT_A):
        if m.rx_discard or d != 1:
            return _mppe_lost_sync(m, want_reset)
        if (count & 0xFF) == 0xFF:
            mppe_change_key(&m.rx)      # a flag packet from a sender that does not flag it (BSD, mpd)
        rc4_crypt(&m.rx.rc4, data, data, dn)
        m.rx_ccount = count
        if not _inner_ok(data, dn, False):
            _mppe_lost_sync(m, want_reset)   # in sequence but not decryptable: our RC4 state is off
            return DP_MPPE_DECRYPT
        m.rx_packets += 1
        return DP_OK
    # -- stateful, flushed: resynchronise on this packet --------------------------------------------------
    if d == 0:
        return DP_MPPE_BAD_COUNT
    _keys_head(&cand, &m.rx)
    x = m.rx_ccount
    for i in range(d - 1):              # the key changes of the flag packets we did not receive
        x = (x + 1) & MPPE_CCOUNT_MASK
        if (x & 0xFF) == 0xFF:
            mppe_next_session_key(&cand)
    pn = dn if dn < 3 else 3
    if (count & 0xFF) == 0xFF:
        mppe_change_key(&cand)          # a flag packet: a key change in every reading
        strict = d != 1
        if _probe(&cand.rc4, data, pn, strict):
            choice = 1
    else:
        _keys_head(&alt, &cand)
        mppe_rekey_rc4(&cand)           # the RFC / BSD reading: same key, RC4 re-initialised
        mppe_change_key(&alt)           # the pppd reading: a key change
        if _probe(&cand.rc4, data, pn, True):
            choice = 1
        elif _probe(&alt.rc4, data, pn, True):
            choice = 2
        elif _probe(&cand.rc4, data, pn, False):
            choice = 1
        elif _probe(&alt.rc4, data, pn, False):
            choice = 2
        if choice == 1:
            m.rx_flush_reinit += 1
        elif choice == 2:
            m.rx_flush_rekey += 1
            memcpy(&cand.rc4, &alt.rc4, sizeof(rc4_state))
            memcpy(cand.session_key, alt.session_key, MPPE_MAX_KEY_LEN)
    if choice == 0:
        _mppe_lost_sync(m, want_reset)
        return DP_MPPE_DECRYPT
    rc4_crypt(&cand.rc4, data, data, dn)
    if m.rx_discard or d != 1:
        m.rx_resyncs += 1
        m.rx_lost += d - 1
    memcpy(&m.rx, &cand, sizeof(mppe_keys))
    m.rx_ccount = count
    m.rx_discard = 0
    m.rx_packets += 1
    return DP_OK


cdef int _slots_alloc(dp_slots* v, size_t count, size_t slot_size, size_t headroom, bint with_addrs) except -1:
    cdef size_t i
    memset(v, 0, sizeof(dp_slots))
    v.count = count
    v.slot_size = slot_size
    v.headroom = headroom
    v.arena = <uint8_t*>PyMem_RawCalloc(count, slot_size)
    v.iov = <iovec*>PyMem_RawCalloc(count, sizeof(iovec))
    v.msgs = <mmsghdr*>PyMem_RawCalloc(count, sizeof(mmsghdr))
    v.lens = <uint32_t*>PyMem_RawCalloc(count, sizeof(uint32_t))
    if with_addrs:
        v.addrs = <sockaddr_storage*>PyMem_RawCalloc(count, sizeof(sockaddr_storage))
    if v.arena == NULL or v.iov == NULL or v.msgs == NULL or v.lens == NULL or (with_addrs and v.addrs == NULL):
        raise MemoryError()
    for i in range(count):
        v.iov[i].iov_base = v.arena + i * slot_size + headroom
        v.iov[i].iov_len = slot_size - headroom
        v.msgs[i].msg_hdr.msg_iov = &v.iov[i]
        v.msgs[i].msg_hdr.msg_iovlen = 1
        if with_addrs:
            v.msgs[i].msg_hdr.msg_name = &v.addrs[i]
            v.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
    return 0


cdef void _slots_free(dp_slots* v) noexcept:
    PyMem_RawFree(v.arena)
    PyMem_RawFree(v.iov)
    PyMem_RawFree(v.msgs)
    PyMem_RawFree(v.lens)
    PyMem_RawFree(v.addrs)
    memset(v, 0, sizeof(dp_slots))


cdef object _addr_tuple(const sockaddr_storage* a):
    """``(ip, port)`` as the socket module would give it (an AF_INET6 socket gives v4-mapped text)."""
    cdef const sockaddr_in* a4
    cdef const sockaddr_in6* a6
    if a.ss_family == AF_INET:
        a4 = <const sockaddr_in*>a
        return (_socket.inet_ntop(_socket.AF_INET, PyBytes_FromStringAndSize(<const char*>&a4.sin_addr, 4)),
                ntohs(a4.sin_port))
    if a.ss_family == AF_INET6:
        a6 = <const sockaddr_in6*>a
        return (_socket.inet_ntop(_socket.AF_INET6, PyBytes_FromStringAndSize(<const char*>&a6.sin6_addr, 16)),
                ntohs(a6.sin6_port))
    return None


cdef int _make_peer(int family, str ip, int port, sockaddr_storage* out, socklen_t* out_len) except -1:
    """The peer's address in the socket's family: an IPv4 peer on an AF_INET6 socket becomes v4-mapped."""
    cdef sockaddr_in* a4 = <sockaddr_in*>out
    cdef sockaddr_in6* a6 = <sockaddr_in6*>out
    cdef bytes packed
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"peer port {port} out of range")
    try:
        packed = _socket.inet_pton(_socket.AF_INET, ip)
    except (OSError, TypeError):
        try:
            packed = _socket.inet_pton(_socket.AF_INET6, ip)
        except (OSError, TypeError):
            raise ValueError(f"not an IP address: {ip!r}") from None
    memset(out, 0, sizeof(sockaddr_storage))
    if family == AF_INET:
        if len(packed) == 16:
            if packed[:12] != b"\0" * 10 + b"\xff\xff":
                raise ValueError(f"IPv6 peer {ip} on an IPv4 socket")
            packed = packed[12:]
        a4.sin_family = AF_INET
        a4.sin_port = htons(<unsigned short>port)
        memcpy(&a4.sin_addr, PyBytes_AS_STRING(packed), 4)
        out_len[0] = sizeof(sockaddr_in)
    else:
        if len(packed) == 4:
            packed = b"\0" * 10 + b"\xff\xff" + packed
        a6.sin6_family = AF_INET6
        a6.sin6_port = htons(<unsigned short>port)
        memcpy(&a6.sin6_addr, PyBytes_AS_STRING(packed), 16)
        out_len[0] = sizeof(sockaddr_in6)
    return 0


cdef inline int _check_mss(mss) except -1:
    if not (mss == 0 or _MIN_MSS <= mss <= 0xFFFF):
        raise ValueError(f"mss {mss}: 0 (off) or {_MIN_MSS}..65535")
    return 0


cdef inline int _check_id(name, int value) except -1:
    if not 0 < value <= 0xFFFF:
        raise ValueError(f"{name} {value} is not a 16-bit non-zero id")
    return 0


cdef class DataPlane:
    """The per-packet engine: sessions in a C table, bursts of UDP and TUN I/O with the GIL released.

    ``DataPlane(batch=64, headroom=64, max_sessions=65536, *, slot_size=2048, max_bursts=8,
    punt_slots=1024, punt_bytes=256 KiB)``. Python opens every fd (UDP sockets, TUN devices) and keeps
    owning it: the data plane never closes one. One thread drives a DataPlane (the event loop's):
    while a burst runs, calls that change the table raise ``RuntimeError``.

    - ``slot_size`` bounds a datagram (receive) and a TUN packet plus ``headroom`` (send); larger ones are
      dropped as ``TOO_BIG``.
    - ``max_bursts`` caps the recvmmsg (or TUN read) batches per ``rx_udp``/``rx_tun`` call, so that one
      busy socket cannot starve the loop.
    - Punted items wait in a bounded queue (``punt_slots`` items, ``punt_bytes`` bytes); when Python does
      not drain it, further punts are dropped as ``PUNT_FULL``.
    """

    def __cinit__(self, Py_ssize_t batch=64, Py_ssize_t headroom=64, Py_ssize_t max_sessions=65536, *,
                  Py_ssize_t slot_size=2048, int max_bursts=8, Py_ssize_t punt_slots=1024,
                  Py_ssize_t punt_bytes=262144):
        cdef Py_ssize_t size = 16
        cdef uint32_t bits = 4
        cdef int i
        if not 1 <= batch <= _MAX_BATCH:
            raise ValueError(f"batch must be 1..{_MAX_BATCH}")
        if not L2TP_MAX_DATA_HDR + 4 <= headroom <= 1024:
            raise ValueError(f"headroom must be {L2TP_MAX_DATA_HDR + 4}..1024 (L2TP + PPP headers)")
        if not 1 <= max_sessions <= _MAX_SESSIONS:
            raise ValueError(f"max_sessions must be 1..{_MAX_SESSIONS}")
        if not headroom + 576 <= slot_size <= 65536 + headroom:
            raise ValueError("slot_size must hold headroom + 576 bytes and at most 64 KiB + headroom")
        if max_bursts < 1 or punt_slots < 1 or punt_bytes < slot_size:
            raise ValueError("max_bursts and punt_slots must be >= 1, punt_bytes >= slot_size")
        self.batch = batch
        self.headroom = headroom
        self.max_sessions = max_sessions
        self.slot_size = slot_size
        self.max_bursts = max_bursts
        for i in range(DP_MAX_SOCKETS):
            self.socks[i].fd = -1
            self.socks[i].family = 0
        memset(self.drops, 0, sizeof(self.drops))
        while size < 2 * max_sessions:          # load factor <= 1/2: short probe runs
            size <<= 1
            bits += 1
        self.table_mask = <uint32_t>(size - 1)
        self.table_shift = 32 - bits
        # calloc: untouched session pages stay virtual, so a large max_sessions costs address space only
        self.table = <dp_hent*>PyMem_RawCalloc(size, sizeof(dp_hent))
        self.sess = <dp_session*>PyMem_RawCalloc(max_sessions, sizeof(dp_session))
        self.free_slots = <uint32_t*>PyMem_RawCalloc(max_sessions, sizeof(uint32_t))
        self.punt_cap = punt_slots
        self.punts = <dp_punt*>PyMem_RawCalloc(punt_slots, sizeof(dp_punt))
        self.punt_arena_size = punt_bytes
        self.punt_arena = <uint8_t*>PyMem_RawCalloc(punt_bytes, 1)
        self.scratch = <uint8_t*>PyMem_RawCalloc(slot_size, 1)
        if (self.table == NULL or self.sess == NULL or self.free_slots == NULL or self.punts == NULL
                or self.punt_arena == NULL or self.scratch == NULL):
            raise MemoryError()
        _slots_alloc(&self.rx, batch, slot_size, 0, True)
        _slots_alloc(&self.tx, batch, slot_size, headroom, False)

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.sess != NULL:
            for i in range(self.high_water):
                if self.sess[i].flags & DPS_USED:
                    self._free_ext(&self.sess[i])
        _slots_free(&self.rx)
        _slots_free(&self.tx)
        PyMem_RawFree(self.table)
        PyMem_RawFree(self.sess)
        PyMem_RawFree(self.free_slots)
        PyMem_RawFree(self.punts)
        PyMem_RawFree(self.punt_arena)
        PyMem_RawFree(self.scratch)

    cdef int _not_busy(self) except -1:
        if self.busy:
            raise RuntimeError("DataPlane: table change during a burst (one thread drives a DataPlane)")
        return 0

    # -- sockets -------------------------------------------------------------------------------------

    def add_socket(self, int fd) -> int:
        """Register a bound UDP socket (AF_INET or AF_INET6, non-blocking not required: the data plane
        passes MSG_DONTWAIT); returns its ``sock_index``."""
        cdef sockaddr_storage ss
        cdef socklen_t ln = sizeof(ss)
        cdef int i
        cdef int free_i = -1
        self._not_busy()
        memset(&ss, 0, sizeof(ss))
        if getsockname(fd, <sockaddr*>&ss, &ln) != 0:
            raise OSError(errno, _os.strerror(errno))
        if ss.ss_family != AF_INET and ss.ss_family != AF_INET6:
            raise ValueError(f"fd {fd} is not an IPv4/IPv6 socket")
        for i in range(DP_MAX_SOCKETS):
            if self.socks[i].fd == fd:
                raise ValueError(f"fd {fd} is already registered as socket {i}")
            if self.socks[i].fd < 0 and free_i < 0:
                free_i = i
        if free_i < 0:
            raise ValueError(f"more than {DP_MAX_SOCKETS} sockets")
        self.socks[free_i].fd = fd
        self.socks[free_i].family = ss.ss_family
        return free_i

    def remove_socket(self, int sock_index) -> None:
        """Forget a socket; ``ValueError`` while a session still sends on it."""
        cdef Py_ssize_t i
        self._not_busy()
        self._sock(sock_index)
        for i in range(self.high_water):
            if self.sess[i].flags & DPS_USED and self.sess[i].sock_index == sock_index:
                raise ValueError(f"socket {sock_index} is used by a session")
        self.socks[sock_index].fd = -1
        self.socks[sock_index].family = 0

    cdef dp_socket* _sock(self, int sock_index) except NULL:
        if not 0 <= sock_index < DP_MAX_SOCKETS or self.socks[sock_index].fd < 0:
            raise ValueError(f"no socket {sock_index}")
        return &self.socks[sock_index]

    # -- the session table ------------------------------------------------------------------------------

    cdef int lookup_slot(self, uint16_t tunnel_id, uint16_t session_id) noexcept nogil:
        cdef uint32_t key = _key(tunnel_id, session_id)
        cdef uint32_t i = _home(key, self.table_shift)
        cdef dp_hent* e
        while True:                             # terminates: the table is never more than half full
            e = &self.table[i]
            if e.slot1 == 0:
                return -1
            if e.key == key:
                return <int>e.slot1 - 1
            i = (i + 1) & self.table_mask

    cdef void _table_insert(self, uint32_t key, uint32_t slot):
        cdef uint32_t i = _home(key, self.table_shift)
        while self.table[i].slot1 != 0:
            i = (i + 1) & self.table_mask
        self.table[i].key = key
        self.table[i].slot1 = slot + 1

    cdef void _table_delete(self, uint32_t key):
        # Linear probing without tombstones: after emptying a cell, move back every later entry of the
        # run whose home is not cyclically in (hole, entry] (Knuth 6.4, Algorithm R).
        cdef uint32_t i = _home(key, self.table_shift)
        cdef uint32_t j, k
        cdef bint stays
        while self.table[i].slot1 != 0 and self.table[i].key != key:
            i = (i + 1) & self.table_mask
        if self.table[i].slot1 == 0:
            return
        self.table[i].slot1 = 0
        j = i
        while True:
            j = (j + 1) & self.table_mask
            if self.table[j].slot1 == 0:
                return
            k = _home(self.table[j].key, self.table_shift)
            if i <= j:
                stays = i < k and k <= j        # home cyclically in (i, j]: the hole is not on its path
            else:
                stays = i < k or k <= j
            if stays:
                continue
            self.table[i] = self.table[j]
            self.table[j].slot1 = 0
            i = j

    cdef dp_session* _session(self, int tunnel_id, int session_id) except NULL:
        cdef int slot
        if not (0 <= tunnel_id <= 0xFFFF and 0 <= session_id <= 0xFFFF):
            raise KeyError((tunnel_id, session_id))
        slot = self.lookup_slot(<uint16_t>tunnel_id, <uint16_t>session_id)
        if slot < 0:
            raise KeyError((tunnel_id, session_id))
        return &self.sess[slot]

    cdef int _set_flags(self, dp_session* s, tx_seq, tx_length, mss) except -1:
        if mss is not None:
            _check_mss(mss)
            s.mss = <uint16_t>mss
            if mss:
                s.flags |= DPS_MSS
            else:
                s.flags &= ~DPS_MSS
        if tx_seq is not None:
            if tx_seq:
                s.flags |= DPS_TX_SEQ
                s.tx.flags |= TX_SEQ
            else:
                s.flags &= ~DPS_TX_SEQ
                s.tx.flags &= ~TX_SEQ
        if tx_length is not None:
            if tx_length:
                s.flags |= DPS_TX_LENGTH
                s.tx.flags |= TX_LENGTH
            else:
                s.flags &= ~DPS_TX_LENGTH
                s.tx.flags &= ~TX_LENGTH
        return 0

    def add_session(self, int tunnel_id, int session_id, int peer_tunnel_id, int peer_session_id,
                    str peer_ip, int peer_port, int sock_index, int tun_fd, *, bint tx_seq=False,
                    bint tx_length=False, int mss=0) -> int:
        """Add a session keyed by our (tunnel id, session id); returns its slot (for ``rx_tun``).

        The peer's ids go into every data header we send; data messages are accepted only from
        ``(peer_ip, peer_port)``. ``tx_seq``: send Ns/Nr (the peer asked for sequencing);
        ``tun_fd`` may be -1 while the interface does not exist yet (PPP still negotiating): IP packets
        are then dropped as NO_TUN until ``update_session(tun_fd=...)``.
        ``tx_length``: send the Length field; ``mss``: TCP MSS clamp on SYNs both ways (0 = off), the
        IPv4 value (interface MTU - 40); IPv6 SYNs are clamped to ``mss - 20`` (MTU - 60).
        """
        cdef sockaddr_storage peer
        cdef socklen_t peer_len = 0
        cdef dp_socket* sk
        cdef uint32_t slot
        cdef dp_session* s
        self._not_busy()
        _check_id("tunnel_id", tunnel_id)
        _check_id("session_id", session_id)
        _check_id("peer_tunnel_id", peer_tunnel_id)
        _check_id("peer_session_id", peer_session_id)
        sk = self._sock(sock_index)
        if tun_fd < -1:
            raise ValueError("tun_fd: an open fd, or -1 for no interface yet")
        _check_mss(mss)
        _make_peer(sk.family, peer_ip, peer_port, &peer, &peer_len)
        if self.lookup_slot(<uint16_t>tunnel_id, <uint16_t>session_id) >= 0:
            raise ValueError(f"session ({tunnel_id}, {session_id}) exists")
        if self.n_free:
            self.n_free -= 1
            slot = self.free_slots[self.n_free]
        elif self.high_water < self.max_sessions:
            slot = <uint32_t>self.high_water
            self.high_water += 1
        else:
            raise ValueError(f"session table full ({self.max_sessions})")
        s = &self.sess[slot]
        memset(s, 0, sizeof(dp_session))
        s.key = _key(<uint16_t>tunnel_id, <uint16_t>session_id)
        s.flags = DPS_USED
        s.tun_fd = tun_fd
        s.sock_index = sock_index
        s.peer = peer
        s.peer_len = peer_len
        s.tx.tunnel_id = <uint16_t>peer_tunnel_id
        s.tx.session_id = <uint16_t>peer_session_id
        self._set_flags(s, tx_seq, tx_length, mss)
        self._table_insert(s.key, slot)
        self.n_sessions += 1
        return slot

    def update_session(self, int tunnel_id, int session_id, *, peer_ip=None, peer_port=None,
                       peer_tunnel_id=None, peer_session_id=None, sock_index=None, tun_fd=None,
                       tx_seq=None, tx_length=None, mss=None) -> None:
        """Change what is given (None = keep): peer address/ids, socket, TUN fd, flags, MSS clamp.
        Counters and the Ns state are kept."""
        cdef dp_session* s
        cdef sockaddr_storage peer
        cdef socklen_t peer_len = 0
        cdef dp_socket* sk
        self._not_busy()
        s = self._session(tunnel_id, session_id)
        if peer_tunnel_id is not None:
            _check_id("peer_tunnel_id", peer_tunnel_id)
        if peer_session_id is not None:
            _check_id("peer_session_id", peer_session_id)
        if tun_fd is not None and tun_fd < -1:
            raise ValueError("tun_fd: an open fd, or -1 for no interface yet")
        if mss is not None:
            _check_mss(mss)
        new_sock = s.sock_index if sock_index is None else sock_index
        sk = self._sock(new_sock)
        ip, port = _addr_tuple(&s.peer)
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]
        _make_peer(sk.family, ip if peer_ip is None else peer_ip, port if peer_port is None else peer_port,
                   &peer, &peer_len)
        # everything validated: apply
        s.peer = peer
        s.peer_len = peer_len
        s.sock_index = new_sock
        if peer_tunnel_id is not None:
            s.tx.tunnel_id = <uint16_t>peer_tunnel_id
        if peer_session_id is not None:
            s.tx.session_id = <uint16_t>peer_session_id
        if tun_fd is not None:
            s.tun_fd = tun_fd
        self._set_flags(s, tx_seq, tx_length, mss)

    def remove_session(self, int tunnel_id, int session_id) -> None:
        """Forget a session (``KeyError`` when unknown); its slot may be reused by the next add."""
        cdef dp_session* s
        cdef uint32_t slot
        self._not_busy()
        s = self._session(tunnel_id, session_id)
        slot = <uint32_t>(s - self.sess)
        self._free_ext(s)
        self._table_delete(s.key)
        s.flags = 0
        self.free_slots[self.n_free] = slot
        self.n_free += 1
        self.n_sessions -= 1

    # -- MPPE ---------------------------------------------------------------------------------------------

    cdef void _free_ext(self, dp_session* s) noexcept:
        if s.ext != NULL:
            memset(s.ext, 0, sizeof(dp_mppe))         # no key material left in freed memory
            PyMem_RawFree(s.ext)
            s.ext = NULL
        s.flags &= ~DPS_MPPE

    def set_mppe(self, int tunnel_id, int session_id, *, send_key, recv_key, int bits, bint stateless,
                 bint required=True) -> None:
        """Encrypt and decrypt the session's IP packets with MPPE (RFC 3078) from now on.

        ``send_key``/``recv_key``: the MPPE start keys of our send and receive directions (RFC 3079
        GetAsymmetricStartKey, or MS-MPPE-Send-Key/Recv-Key), at least 8 octets for 40/56 bits and 16 for
        128; the initial session keys are derived from them (RFC 3079 §2-3). ``stateless``: the H bit was
        negotiated (key change before every packet); else stateful (every 256 packets, CCP resets on loss).
        ``required``: unencrypted IP from the peer is dropped (MPPE_UNENCRYPTED). Calling it again (CCP
        renegotiated) starts both directions afresh. The interface MTU should be 4 octets smaller
        (MPPE_OVERHEAD): MPPE adds its header and the inner protocol field."""
        cdef const uint8_t[::1] sk = send_key
        cdef const uint8_t[::1] rk = recv_key
        cdef dp_session* s
        cdef dp_mppe* m
        cdef Py_ssize_t key_len
        self._not_busy()
        s = self._session(tunnel_id, session_id)
        if bits == 128:
            key_len = 16
        elif bits == 40 or bits == 56:
            key_len = 8
        else:
            raise ValueError(f"MPPE key strength must be 40, 56 or 128 bits, not {bits}")
        if sk.shape[0] < key_len or rk.shape[0] < key_len:
            raise ValueError(f"{bits}-bit MPPE needs start keys of at least {key_len} octets")
        if self.headroom < L2TP_MAX_DATA_HDR + 4 + MPPE_OVERHEAD:
            raise ValueError(f"MPPE needs a headroom of at least {L2TP_MAX_DATA_HDR + 4 + MPPE_OVERHEAD}")
        m = <dp_mppe*>PyMem_RawCalloc(1, sizeof(dp_mppe))
        if m == NULL:
            raise MemoryError()
        mppe_keys_init(&m.tx, &sk[0], <uint32_t>bits)
        mppe_keys_init(&m.rx, &rk[0], <uint32_t>bits)
        m.tx_ccount = 0
        m.rx_ccount = MPPE_CCOUNT_MASK             # the first packet is count 0
        m.stateless = stateless
        m.required = required
        self._free_ext(s)
        s.ext = m
        s.flags |= DPS_MPPE

    def clear_mppe(self, int tunnel_id, int session_id) -> None:
        """Stop MPPE on the session (CCP down): IP packets go unencrypted again; keys are wiped."""
        self._not_busy()
        self._free_ext(self._session(tunnel_id, session_id))

    def mppe_reset_received(self, int tunnel_id, int session_id) -> bool:
        """The peer sent a CCP Reset-Request: the next packet we send is flushed (A bit, re-keyed) so that
        the peer's receiver resynchronises (stateful mode; stateless packets always are). False when the
        session has no MPPE."""
        cdef dp_session* s
        cdef dp_mppe* m
        self._not_busy()
        s = self._session(tunnel_id, session_id)
        if not (s.flags & DPS_MPPE):
            return False
        m = <dp_mppe*>s.ext
        m.resets_received += 1
        if not m.stateless:
            m.tx_flush = 1
        return True

    def lookup(self, int tunnel_id, int session_id):
        """The slot of our (tunnel id, session id), or None."""
        cdef int slot
        if not (0 <= tunnel_id <= 0xFFFF and 0 <= session_id <= 0xFFFF):
            return None
        slot = self.lookup_slot(<uint16_t>tunnel_id, <uint16_t>session_id)
        return None if slot < 0 else slot

    def sessions(self) -> int:
        """Number of sessions in the table."""
        return self.n_sessions

    # -- receive from UDP ------------------------------------------------------------------------------

    cdef void punt(self, int kind, int si, uint16_t tid, uint16_t sid, const uint8_t* p, size_t n,
                   const sockaddr_storage* src) noexcept nogil:
        cdef dp_punt* rec
        if self.n_punts >= self.punt_cap or <size_t>(self.punt_arena_size - self.punt_used) < n:
            self.drops[<int>DP_PUNT_FULL] += 1
            return
        rec = &self.punts[self.n_punts]
        rec.kind = <uint8_t>kind
        rec.sock_index = si
        rec.tunnel_id = tid
        rec.session_id = sid
        rec.offset = <uint32_t>self.punt_used
        rec.length = <uint32_t>n
        if src != NULL:
            memcpy(&rec.addr, src, sizeof(sockaddr_storage))
        if n:
            memcpy(self.punt_arena + self.punt_used, p, n)
        self.punt_used += <Py_ssize_t>n
        self.n_punts += 1

    cdef void rx_one(self, int si, uint8_t* p, size_t n, const sockaddr_storage* src, int mflags,
                     uint64_t now) noexcept nogil:
        cdef l2tp_hdr h
        cdef ppp_hdr ph
        cdef dp_reason r
        cdef int slot
        cdef dp_session* s
        cdef uint8_t* frame
        cdef size_t flen, iplen
        cdef uint8_t* ip
        cdef Py_ssize_t w
        cdef Py_ssize_t punts_before
        cdef uint16_t proto
        cdef size_t hl
        cdef dp_mppe* m
        cdef bint want_reset
        if mflags & MSG_TRUNC:
            self.drops[<int>DP_TOO_BIG] += 1
            return
        r = l2tp_parse(p, n, &h)
        if r != DP_OK:
            self.drops[<int>r] += 1
            return
        if h.flags & L2TP_FLAG_T:
            self.c_rx_control += 1
            self.punt(DP_PUNT_CONTROL, si, h.tunnel_id, h.session_id, p, n, src)
            return
        slot = self.lookup_slot(h.tunnel_id, h.session_id)
        if slot < 0:
            self.drops[<int>DP_NO_SESSION] += 1
            return
        s = &self.sess[slot]
        if not _same_peer(&s.peer, <sockaddr_storage*>src):
            _sdrop(self.drops, s, DP_PEER_MISMATCH, 1)
            return
        if h.flags & L2TP_FLAG_S:
            # RFC 2661 §5.4: we deliver in arrival order (no reorder queue) and count what came late.
            if s.flags & DPS_RX_SEQ and <int16_t>(h.ns - s.rx_ns_next) < 0:
                s.rx_seq_out_of_order += 1
            else:
                s.flags |= DPS_RX_SEQ
                s.rx_ns_next = <uint16_t>(h.ns + 1)
        frame = p + h.payload_start
        flen = h.payload_end - h.payload_start
        r = ppp_parse(frame, flen, &ph)
        if r != DP_OK:
            _sdrop(self.drops, s, r, 1)
            return
        proto = ph.proto
        hl = ph.hdr_len
        # hook (later): s.flags & DPS_MP and proto == 0x003D -> MP reassembly
        if s.flags & DPS_MPPE:
            m = <dp_mppe*>s.ext
            if proto == _PPP_MPPE:
                want_reset = False
                r = mppe_decrypt(m, frame + hl, flen - hl, &want_reset)
                if want_reset:
                    m.reset_requests += 1
                    self.c_ccp_resets += 1
                    punts_before = self.n_punts
                    self.punt(DP_PUNT_CCP_RESET, si, h.tunnel_id, h.session_id, NULL, 0, NULL)
                    if self.n_punts == punts_before:
                        s.drops[<int>DP_PUNT_FULL] += 1
                if r != DP_OK:
                    _sdrop(self.drops, s, r, 1)
                    return
                self.c_mppe_rx += 1
                # the decrypted inner frame: protocol (PFC or not; checked by mppe_decrypt) + information
                frame = frame + hl + MPPE_HDR
                flen = flen - hl - MPPE_HDR
                if frame[0] & 1:
                    proto = frame[0]
                    hl = 1
                else:
                    proto = frame[1]
                    hl = 2
            elif m.required and (proto == _PPP_IPV4 or proto == _PPP_IPV6):
                _sdrop(self.drops, s, DP_MPPE_UNENCRYPTED, 1)
                return
        if proto == _PPP_IPV4 or proto == _PPP_IPV6:
            ip = frame + hl
            iplen = flen - hl
            if iplen == 0 or (ip[0] >> 4) != (4 if proto == _PPP_IPV4 else 6):
                _sdrop(self.drops, s, DP_BAD_IP, 1)
                return
            if s.tun_fd < 0:
                _sdrop(self.drops, s, DP_NO_TUN, 1)
                return
            if s.flags & DPS_MSS and tcp_clamp_mss(
                    ip, iplen, s.mss if proto == _PPP_IPV4 else s.mss - _MSS_V6_LESS):
                s.mss_clamped += 1
                self.c_mss_clamped += 1
            w = write(s.tun_fd, ip, iplen)
            if w < 0:
                _sdrop(self.drops, s, DP_TUN_WRITE, 1)
                return
            s.rx_packets += 1
            s.rx_bytes += iplen
            s.last_rx_ns = now
            self.c_rx_ip += 1
            return
        # LCP, authentication, NCPs, CCP, compressed datagrams without MPPE, decrypted non-IP frames
        # (protocol + information), anything unknown: to Python
        punts_before = self.n_punts
        self.punt(DP_PUNT_PPP, si, h.tunnel_id, h.session_id, frame, flen, NULL)
        if self.n_punts == punts_before:
            s.drops[<int>DP_PUNT_FULL] += 1
            return
        s.rx_punted += 1
        self.c_rx_ppp += 1

    cdef Py_ssize_t rx_udp_burst(self, int si) noexcept nogil:
        cdef int fd = self.socks[si].fd
        cdef unsigned int cap = <unsigned int>self.batch
        cdef int got, e, burst
        cdef unsigned int i
        cdef Py_ssize_t total = 0
        cdef uint64_t now
        cdef dp_slots* v = &self.rx
        for burst in range(self.max_bursts):
            for i in range(cap):
                v.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
            got = recvmmsg(fd, v.msgs, cap, MSG_DONTWAIT, NULL)
            if got < 0:
                e = errno
                if e == EAGAIN:
                    break
                if e == EINTR:
                    continue
                if e == ECONNREFUSED or e == EHOSTUNREACH or e == ENETUNREACH or e == ENETDOWN:
                    self.drops[<int>DP_UDP_RECV] += 1     # a queued ICMP error, consumed by this call
                    continue
                self.err = e
                break
            now = _now_ns()
            for i in range(<unsigned int>got):
                self.rx_one(si, v.arena + i * v.slot_size, v.msgs[i].msg_len, &v.addrs[i],
                            v.msgs[i].msg_hdr.msg_flags, now)
            total += got
            self.c_rx_datagrams += <uint64_t>got
            if <unsigned int>got < cap:
                break                           # the queue is (very likely) empty: skip the EAGAIN call
        return total

    def rx_udp(self, int sock_index) -> int:
        """Drain socket ``sock_index``: recvmmsg bursts (MSG_DONTWAIT) until EAGAIN, a short burst or
        ``max_bursts``; every datagram handled with the GIL released. Returns the datagrams received.
        Control messages and PPP control frames are queued for ``take_punted()``. ``OSError`` for a
        socket error other than EAGAIN/EINTR and queued ICMP errors (those are counted as UDP_RECV)."""
        cdef Py_ssize_t n
        self._sock(sock_index)
        self._not_busy()
        self.busy = True
        self.err = 0
        with nogil:
            n = self.rx_udp_burst(sock_index)
        self.busy = False
        if self.err:
            raise OSError(self.err, _os.strerror(self.err))
        return n

    # -- receive from TUN, send to UDP ------------------------------------------------------------------------

    cdef void send_burst(self, dp_session* s, Py_ssize_t n, uint64_t now) noexcept nogil:
        cdef int fd = self.socks[s.sock_index].fd
        cdef dp_slots* v = &self.tx
        cdef Py_ssize_t i
        cdef Py_ssize_t sent = 0
        cdef int r, e
        for i in range(n):
            v.msgs[i].msg_hdr.msg_name = &s.peer
            v.msgs[i].msg_hdr.msg_namelen = s.peer_len
        while sent < n:
            r = sendmmsg(fd, v.msgs + sent, <unsigned int>(n - sent), MSG_DONTWAIT)
            if r < 0:
                e = errno
                if e == EINTR:
                    continue
                if e == EAGAIN or e == ENOBUFS:
                    _sdrop(self.drops, s, DP_UDP_EAGAIN, <uint64_t>(n - sent))
                    return
                _sdrop(self.drops, s, DP_UDP_SEND, 1)    # the first message failed: skip it
                sent += 1
                continue
            if r == 0:
                _sdrop(self.drops, s, DP_UDP_SEND, <uint64_t>(n - sent))
                return
            for i in range(sent, sent + r):
                s.tx_bytes += v.lens[i]
            s.tx_packets += <uint64_t>r
            s.last_tx_ns = now
            self.c_tx_ip += <uint64_t>r
            sent += r

    cdef Py_ssize_t rx_tun_burst(self, dp_session* s) noexcept nogil:
        cdef dp_slots* v = &self.tx
        cdef size_t hr = v.headroom
        cdef size_t room = v.slot_size - v.headroom
        cdef Py_ssize_t total = 0
        cdef Py_ssize_t n, off
        cdef ssize_t r
        cdef int burst, e
        cdef bint drained = False
        cdef uint8_t* buf
        cdef uint8_t ver
        cdef dp_mppe* m = <dp_mppe*>s.ext if s.flags & DPS_MPPE else NULL
        for burst in range(self.max_bursts):
            n = 0
            while n < self.batch:
                buf = v.arena + n * v.slot_size
                r = read(s.tun_fd, buf + hr, room)
                if r < 0:
                    e = errno
                    if e == EINTR:
                        continue
                    if e != EAGAIN:
                        self.err = e
                    drained = True
                    break
                if r == 0:
                    drained = True
                    break
                total += 1
                if <size_t>r >= room:           # may have been truncated: never forward a partial packet
                    _sdrop(self.drops, s, DP_TOO_BIG, 1)
                    continue
                ver = buf[hr] >> 4
                if ver == 4:
                    s.tx.ppp_proto = _PPP_IPV4
                elif ver == 6:
                    s.tx.ppp_proto = _PPP_IPV6
                else:
                    _sdrop(self.drops, s, DP_BAD_IP, 1)
                    continue
                if s.flags & DPS_MSS and tcp_clamp_mss(
                        buf + hr, <size_t>r, s.mss if ver == 4 else s.mss - _MSS_V6_LESS):
                    s.mss_clamped += 1
                    self.c_mss_clamped += 1
                # hook (later): DPS_MP -> fragment with MP headers across the bundle's links.
                if m != NULL:
                    # inner protocol + packet encrypted in place, MPPE header in front, then 0x00FD
                    _put16(buf + hr - 2, s.tx.ppp_proto)
                    mppe_encrypt(m, buf + hr - MPPE_OVERHEAD, <size_t>r + 2)
                    s.tx.ppp_proto = _PPP_MPPE
                    off = l2tp_build_data(buf, hr - MPPE_OVERHEAD, <size_t>r + MPPE_OVERHEAD, &s.tx)
                    self.c_mppe_tx += 1
                else:
                    off = l2tp_build_data(buf, hr, <size_t>r, &s.tx)
                if off < 0:
                    _sdrop(self.drops, s, DP_TOO_BIG, 1)
                    continue
                if s.tx.flags & TX_SEQ:
                    s.tx.ns += 1
                v.iov[n].iov_base = buf + off
                v.iov[n].iov_len = hr - <size_t>off + <size_t>r
                v.lens[n] = <uint32_t>r
                n += 1
            if n:
                self.send_burst(s, n, _now_ns())
            if drained:
                break
        self.c_tun_reads += <uint64_t>total
        return total

    def rx_tun(self, Py_ssize_t slot) -> int:
        """Drain the TUN fd of session ``slot``: read() until EAGAIN or a full batch, then one sendmmsg
        of the whole batch (up to ``max_bursts`` batches). Returns the packets read. ``OSError`` when
        the read fails other than with EAGAIN (e.g. the device is gone)."""
        cdef Py_ssize_t n
        cdef dp_session* s
        if not 0 <= slot < self.high_water or not (self.sess[slot].flags & DPS_USED):
            raise KeyError(f"no session in slot {slot}")
        self._not_busy()
        s = &self.sess[slot]
        if s.tun_fd < 0:
            raise ValueError(f"session in slot {slot} has no TUN fd yet")
        self.busy = True
        self.err = 0
        with nogil:
            n = self.rx_tun_burst(s)
        self.busy = False
        if self.err:
            raise OSError(self.err, _os.strerror(self.err))
        return n

    # -- control frames from and to Python ---------------------------------------------------------------------

    @property
    def punted(self) -> int:
        """Items waiting for ``take_punted()``."""
        return self.n_punts

    def take_punted(self) -> list:
        """The punted items since the last call, oldest first:
        ``("control", datagram, (ip, port), sock_index)`` for control messages (T bit) and
        ``("ppp", tunnel_id, session_id, ppp_frame)`` for PPP frames that are not IPv4/IPv6 (the frame as
        carried: FF 03 if the peer sent it, the protocol, the information field; for a decrypted MPPE
        packet, its inner protocol and information field), and ``("ccp-reset", tunnel_id, session_id)``
        when a stateful MPPE session lost packets: Python sends a CCP Reset-Request (RFC 1962 §2.3)."""
        cdef Py_ssize_t i
        cdef dp_punt* rec
        out = []
        for i in range(self.n_punts):
            rec = &self.punts[i]
            data = PyBytes_FromStringAndSize(<const char*>(self.punt_arena + rec.offset), rec.length)
            if rec.kind == DP_PUNT_CONTROL:
                out.append(("control", data, _addr_tuple(&rec.addr), rec.sock_index))
            elif rec.kind == DP_PUNT_CCP_RESET:
                out.append(("ccp-reset", rec.tunnel_id, rec.session_id))
            else:
                out.append(("ppp", rec.tunnel_id, rec.session_id, data))
        self.n_punts = 0
        self.punt_used = 0
        return out

    def send_ppp(self, int tunnel_id, int session_id, frame) -> bool:
        """Send a whole PPP frame (``FF 03``, protocol, information; as ``ppp.link`` builds them) to the
        session's peer in an L2TP data message (with Ns when sequencing is on). False when the socket
        buffer is full (counted as UDP_EAGAIN); ``OSError`` for other send errors (counted as UDP_SEND)."""
        cdef const uint8_t[::1] data = frame
        cdef dp_session* s = self._session(tunnel_id, session_id)
        cdef Py_ssize_t n = data.shape[0]
        cdef l2tp_tx tx
        cdef Py_ssize_t off
        cdef msghdr mh
        cdef iovec iov
        cdef ssize_t r
        cdef int e = 0
        cdef int fd = self.socks[s.sock_index].fd
        if n == 0 or n > self.slot_size - self.headroom:
            raise ValueError(f"PPP frame of {n} bytes (1..{self.slot_size - self.headroom})")
        memcpy(self.scratch + self.headroom, &data[0], n)
        tx = s.tx
        tx.flags |= TX_NO_PPP
        off = l2tp_build_data(self.scratch, self.headroom, n, &tx)
        if off < 0:
            raise ValueError("frame too long for the Length field")
        if tx.flags & TX_SEQ:
            s.tx.ns += 1
        iov.iov_base = self.scratch + off
        iov.iov_len = self.headroom - off + n
        memset(&mh, 0, sizeof(mh))
        mh.msg_name = &s.peer
        mh.msg_namelen = s.peer_len
        mh.msg_iov = &iov
        mh.msg_iovlen = 1
        with nogil:
            r = sendmsg(fd, &mh, MSG_DONTWAIT)
            if r < 0:
                e = errno
        if r < 0:
            if e == EAGAIN or e == ENOBUFS:
                _sdrop(self.drops, s, DP_UDP_EAGAIN, 1)
                return False
            _sdrop(self.drops, s, DP_UDP_SEND, 1)
            raise OSError(e, _os.strerror(e))
        s.tx_ppp += 1
        self.c_tx_ppp += 1
        return True

    # -- statistics -----------------------------------------------------------------------------------------------

    def session_traffic(self, int tunnel_id, int session_id) -> tuple:
        """(rx_packets, rx_bytes, tx_packets, tx_bytes, last_rx_ns, last_tx_ns) of one session: what
        print, monitor and metrics read for every session, without ``session_stats``' dicts."""
        cdef dp_session* s = self._session(tunnel_id, session_id)
        return (s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes, s.last_rx_ns, s.last_tx_ns)

    def session_stats(self, int tunnel_id, int session_id) -> dict:
        """Counters and settings of one session; times are CLOCK_MONOTONIC ns (``time.monotonic_ns()``),
        0 when nothing has passed yet. ``drops`` has every reason (zeros included)."""
        cdef dp_session* s = self._session(tunnel_id, session_id)
        drops = {}
        for reason in DropReason:
            if reason != DropReason.OK:
                drops[reason.name.lower()] = s.drops[<int>reason]
        return {
            "slot": <Py_ssize_t>(s - self.sess),
            "tunnel_id": tunnel_id,
            "session_id": session_id,
            "peer_tunnel_id": s.tx.tunnel_id,
            "peer_session_id": s.tx.session_id,
            "peer": _addr_tuple(&s.peer),
            "sock_index": s.sock_index,
            "tun_fd": s.tun_fd,
            "tx_seq": bool(s.flags & DPS_TX_SEQ),
            "tx_length": bool(s.flags & DPS_TX_LENGTH),
            "mss": s.mss if s.flags & DPS_MSS else 0,
            "rx_packets": s.rx_packets,
            "rx_bytes": s.rx_bytes,
            "tx_packets": s.tx_packets,
            "tx_bytes": s.tx_bytes,
            "rx_punted": s.rx_punted,
            "tx_ppp": s.tx_ppp,
            "rx_seq_out_of_order": s.rx_seq_out_of_order,
            "mss_clamped": s.mss_clamped,
            "tx_ns": s.tx.ns,
            "last_rx_ns": s.last_rx_ns,
            "last_tx_ns": s.last_tx_ns,
            "drops": drops,
            "mppe": _mppe_stats(<dp_mppe*>s.ext) if s.flags & DPS_MPPE else None,
        }

    def counters(self) -> dict:
        """Global counters: traffic (``rx_datagrams``, ``rx_ip``, ``rx_control``, ``rx_ppp``,
        ``tun_reads``, ``tx_ip``, ``tx_ppp``, ``mss_clamped``, ``mppe_tx``, ``mppe_rx``, ``ccp_resets``) and
        drops by reason name (every reason)."""
        out = {
            "rx_datagrams": self.c_rx_datagrams,
            "rx_ip": self.c_rx_ip,
            "rx_control": self.c_rx_control,
            "rx_ppp": self.c_rx_ppp,
            "tun_reads": self.c_tun_reads,
            "tx_ip": self.c_tx_ip,
            "tx_ppp": self.c_tx_ppp,
            "mss_clamped": self.c_mss_clamped,
            "mppe_tx": self.c_mppe_tx,
            "mppe_rx": self.c_mppe_rx,
            "ccp_resets": self.c_ccp_resets,
        }
        for reason in DropReason:
            if reason != DropReason.OK:
                out[reason.name.lower()] = self.drops[<int>reason]
        return out


cdef dict _mppe_stats(const dp_mppe* m):
    return {
        "bits": m.tx.bits,
        "stateless": bool(m.stateless),
        "required": bool(m.required),
        "tx_ccount": m.tx_ccount,
        "rx_ccount": m.rx_ccount,
        "rx_discard": bool(m.rx_discard),
        "tx_packets": m.tx_packets,
        "rx_packets": m.rx_packets,
        "rx_resyncs": m.rx_resyncs,
        "rx_lost": m.rx_lost,
        "reset_requests": m.reset_requests,
        "resets_received": m.resets_received,
        "rx_flush_rekey": m.rx_flush_rekey,
        "rx_flush_reinit": m.rx_flush_reinit,
    }


cdef class _BenchBaseline:
    """Benchmark baseline only (bench/test_bench_dp.py): the same system calls as the DataPlane with no
    L2TP work at all, so that DataPlane results can be read as ratios."""
    cdef dp_slots rx
    cdef dp_slots tx
    cdef sockaddr_storage dest
    cdef socklen_t dest_len
    cdef int max_bursts

    def __cinit__(self, Py_ssize_t batch=64, Py_ssize_t headroom=64, Py_ssize_t slot_size=2048,
                  int max_bursts=8):
        _slots_alloc(&self.rx, batch, slot_size, 0, True)
        _slots_alloc(&self.tx, batch, slot_size, headroom, False)
        self.max_bursts = max_bursts

    def __dealloc__(self):
        _slots_free(&self.rx)
        _slots_free(&self.tx)

    def set_dest(self, int family, str ip, int port) -> None:
        _make_peer(family, ip, port, &self.dest, &self.dest_len)

    def udp_to_fd(self, int sock_fd, int out_fd) -> int:
        """recvmmsg bursts, one write() of each whole datagram to ``out_fd``."""
        cdef int got, burst, i
        cdef Py_ssize_t total = 0
        with nogil:
            for burst in range(self.max_bursts):
                for i in range(<int>self.rx.count):
                    self.rx.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
                got = recvmmsg(sock_fd, self.rx.msgs, <unsigned int>self.rx.count, MSG_DONTWAIT, NULL)
                if got <= 0:
                    break
                for i in range(got):
                    write(out_fd, self.rx.arena + i * self.rx.slot_size, self.rx.msgs[i].msg_len)
                total += got
                if got < <int>self.rx.count:
                    break
        return total

    def fd_to_udp(self, int in_fd, int sock_fd) -> int:
        """read() bursts into slots, one sendmmsg of the packets as they are (no header)."""
        cdef int burst, n, sent, r
        cdef ssize_t got
        cdef Py_ssize_t total = 0
        cdef bint drained = False
        with nogil:
            for burst in range(self.max_bursts):
                n = 0
                while n < <int>self.tx.count:
                    got = read(in_fd, self.tx.iov[n].iov_base, self.tx.slot_size - self.tx.headroom)
                    if got <= 0:
                        drained = True
                        break
                    self.tx.iov[n].iov_len = <size_t>got
                    self.tx.msgs[n].msg_hdr.msg_name = &self.dest
                    self.tx.msgs[n].msg_hdr.msg_namelen = self.dest_len
                    n += 1
                total += n
                sent = 0
                while sent < n:
                    r = sendmmsg(sock_fd, self.tx.msgs + sent, <unsigned int>(n - sent), MSG_DONTWAIT)
                    if r <= 0:
                        break
                    sent += r
                for r in range(n):
                    self.tx.iov[r].iov_len = self.tx.slot_size - self.tx.headroom
                if drained:
                    break
        return total
