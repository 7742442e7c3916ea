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
- BCP bridged sessions and bundles (RFC 3518, protocol 0x0031): ``bcp_decode`` (twin of
  ``fastl2tp.wire.bcp.decode_bridged_frame``), ``00 01`` + frame on transmit, also under MPPE.
- Multilink PPP bundles (RFC 1990): ``mp_plan``/``mp_put_header`` cut packets as ``fastl2tp.wire.mp.fragment``
  does, ``dp_mp_rx`` reassembles exactly as ``fastl2tp.wire.mp.Reassembler`` (same rules and counters), in
  fixed memory per bundle; ``rx_bundle`` and the member links' receive path run inside the same bursts.

The C-level declarations are in ``_dp.pxd``. The ``def`` functions at the end are the Python-visible
wrappers used by tests (the oracle comparisons) and benchmarks; nothing per packet goes through them.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree
from libc.errno cimport (
    EAGAIN, ECONNREFUSED, EHOSTUNREACH, EINTR, ENETDOWN, ENETUNREACH, ENOBUFS, errno,
)
from libc.math cimport llround
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
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
    ("ETH_SHORT", DP_ETH_SHORT),
    ("BCP_UNSUPPORTED", DP_BCP_UNSUPPORTED),
    ("BCP_BAD", DP_BCP_BAD),
    ("BRIDGED_IP", DP_BRIDGED_IP),
    ("MP_SHORT", DP_MP_SHORT),
    ("MP_NO_LINK", DP_MP_NO_LINK),
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
    _MAX_BUNDLES = 1 << 16
    _MAX_MP_FRAGMENTS = 8192      # reassembly buffer entries per bundle
    _MIN_MRRU = 64
    _MP_MIN_CAP = 64              # bundle messages per sendmmsg flush, at least
    _MP_HEADROOM = L2TP_MAX_DATA_HDR + 4 + MP_LONG_HDR + 2 + BCP_HDR    # L2TP, PPP, MP, protocol, 00 01


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


cdef inline void _bdrop(uint64_t* global_drops, dp_bundle* b, dp_reason r) noexcept nogil:
    global_drops[<int>r] += 1
    b.drops[<int>r] += 1


# --- the fd side of a session or a bundle -----------------------------------------------------------------------
#
# A session's TUN/TAP fd (rx_tun, rx_one) and a bundle's (rx_bundle, bundle_deliver) are read and written the same
# way. These are those shared steps. Each returns a dp_reason, and its caller counts the drop or the packet on its
# own session or bundle (dp_session and dp_bundle have their own counters); only a TCP MSS clamp is counted here,
# in the two counters passed: the session's or bundle's and the DataPlane's.

cdef inline ssize_t _fd_read(int fd, uint8_t* p, size_t room, int* err) noexcept nogil:
    """read() one packet from ``fd`` into ``p[:room]``, again on EINTR. Its length, or 0 when the fd is drained:
    EAGAIN, end of file, or another error (its errno stored in ``*err``)."""
    cdef ssize_t r
    cdef int e
    while True:
        r = read(fd, p, room)
        if r >= 0:
            return r
        e = errno
        if e != EINTR:
            if e != EAGAIN:
                err[0] = e
            return 0


cdef inline void _clamp(uint8_t* ip, size_t n, bint v6, uint16_t mss, uint64_t* clamped,
                        uint64_t* all_clamped) noexcept nogil:
    """Clamp the TCP MSS of a SYN in IP packet ``ip[:n]`` to ``mss`` (0: off; IPv6: mss - 20); count a rewrite."""
    if mss != 0 and tcp_clamp_mss(ip, n, mss - _MSS_V6_LESS if v6 else mss):
        clamped[0] += 1
        all_clamped[0] += 1


cdef inline dp_reason _fd_payload(uint8_t* buf, size_t hr, size_t n, size_t room, bint bridged, uint16_t mss,
                                  uint64_t* clamped, uint64_t* all_clamped, uint16_t* proto,
                                  size_t* start) noexcept nogil:
    """The PPP payload of the packet read into ``buf + hr`` (``n`` octets, ``room`` offered to read()). A
    ``bridged`` fd's Ethernet frame: 0x0031, with 00 01 (RFC 3518 §4: no flags, IEEE 802.3) written in front. Else
    an IP packet: 0x0021/0x0057 by its version nibble, TCP MSS clamped (``_clamp``). DP_OK with ``*proto`` and
    the payload at ``buf[*start:hr + n]``, or why the packet is dropped."""
    cdef uint8_t ver
    if n >= room:                           # may have been truncated: never forward a partial packet
        return DP_TOO_BIG
    if bridged:
        if n < ETH_HDR:
            return DP_ETH_SHORT
        start[0] = hr - BCP_HDR
        buf[hr - BCP_HDR] = 0
        buf[hr - BCP_HDR + 1] = BCP_MAC_8023
        proto[0] = PPP_BRIDGED
        return DP_OK
    ver = buf[hr] >> 4
    if ver == 4:
        proto[0] = _PPP_IPV4
    elif ver == 6:
        proto[0] = _PPP_IPV6
    else:
        return DP_BAD_IP
    _clamp(buf + hr, n, ver == 6, mss, clamped, all_clamped)
    start[0] = hr
    return DP_OK


cdef inline dp_reason _fd_write(int fd, uint16_t proto, uint8_t* info, size_t ilen, size_t room, bint bridged,
                                uint16_t mss, uint64_t* clamped, uint64_t* all_clamped, size_t* written) noexcept nogil:
    """Write a received packet to the session's or bundle's ``fd``: its PPP information ``info[:ilen]`` (``room``
    octets writable from ``info``), ``proto`` 0x0021/0x0057 or, on a ``bridged`` fd, 0x0031 (callers punt the rest).
    IP: the version nibble must match, then TCP MSS clamped (``_clamp``); IP on a bridged fd: BRIDGED_IP. Bridged:
    decoded in place (``bcp_decode``). DP_OK with the octets written in ``*written``, or why the packet is dropped."""
    cdef size_t eoff, elen               # bcp_decode's own: ``written`` is not passed on (a register on the IP path)
    cdef dp_reason r
    if proto == PPP_BRIDGED:
        r = bcp_decode(info, ilen, room, &eoff, &elen)
        if r != DP_OK:
            return r
        if fd < 0:
            return DP_NO_TUN
        info += eoff
        ilen = elen
    else:
        if bridged:
            return DP_BRIDGED_IP
        if ilen == 0 or (info[0] >> 4) != (4 if proto == _PPP_IPV4 else 6):
            return DP_BAD_IP
        if fd < 0:
            return DP_NO_TUN
        _clamp(info, ilen, proto == _PPP_IPV6, mss, clamped, all_clamped)
    if write(fd, info, ilen) < 0:
        return DP_TUN_WRITE
    written[0] = ilen
    return DP_OK


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


cdef inline bint _inner_ok(const uint8_t* p, size_t n, bint strict, bint bridged) noexcept nogil:
    """Is ``p[:n]`` a plausible decrypted payload? Loose: a protocol field MPPE carries (0x0021..0x00FA,
    odd low octet; one octet with PFC). Strict (used when the answer decides a resynchronisation): IPv4 or
    IPv6 with the matching IP version nibble (about 1 in 2000 for random bytes), and on a ``bridged``
    session also a bridged Ethernet frame: 0x0031, flags without I, MAC type 1 (rarer still)."""
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
    if proto == PPP_BRIDGED and bridged:
        return n >= hl + BCP_HDR and not (p[hl] & BCP_FLAG_I) and p[hl + 1] == BCP_MAC_8023
    return False


cdef inline void _keys_head(mppe_keys* dst, const mppe_keys* src) noexcept nogil:
    """Copy the key material without the 1 KiB RC4 state (every user re-keys it)."""
    memcpy(dst.start_key, src.start_key, MPPE_MAX_KEY_LEN)
    memcpy(dst.session_key, src.session_key, MPPE_MAX_KEY_LEN)
    dst.key_len = src.key_len
    dst.bits = src.bits


cdef inline bint _probe(const rc4_state* st, const uint8_t* data, size_t pn, bint strict,
                        bint bridged) noexcept nogil:
    """Decrypt the first ``pn`` (<= 4) octets with a copy of ``st`` and judge them."""
    cdef rc4_state t
    cdef uint8_t peek[4]
    memcpy(&t, st, sizeof(rc4_state))
    rc4_crypt(&t, data, peek, pn)
    return _inner_ok(peek, pn, strict, bridged)


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


cdef dp_reason mppe_decrypt(dp_mppe* m, uint8_t* p, size_t n, bint* want_reset, bint bridged) noexcept nogil:
    """Check and decrypt the MPPE payload ``p[0:n]`` (header + ciphertext) in place. DP_OK: the inner frame
    (protocol + information) is ``p[2:n]`` and passed ``_inner_ok``. ``want_reset``: punt a ccp-reset.
    ``bridged``: the session carries bridged frames, which commit the receive state as IP packets do."""
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
        if not _inner_ok(data, dn, True, bridged):
            # Not IP (nor a bridged frame on a bridged session). The next count's non-IP frame (BCP, ...) is delivered but moves nothing: only an IP
            # packet commits the count and key, so forged bytes cannot push the receiver ahead.
            if d == 1 and _inner_ok(data, dn, False, bridged):
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
        if not _inner_ok(data, dn, False, bridged):
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
    pn = dn if dn < 4 else 4
    if (count & 0xFF) == 0xFF:
        mppe_change_key(&cand)          # a flag packet: a key change in every reading
        strict = d != 1
        if _probe(&cand.rc4, data, pn, strict, bridged):
            choice = 1
    else:
        _keys_head(&alt, &cand)
        mppe_rekey_rc4(&cand)           # the RFC / BSD reading: same key, RC4 re-initialised
        mppe_change_key(&alt)           # the pppd reading: a key change
        if _probe(&cand.rc4, data, pn, True, bridged):
            choice = 1
        elif _probe(&alt.rc4, data, pn, True, bridged):
            choice = 2
        elif _probe(&cand.rc4, data, pn, False, bridged):
            choice = 1
        elif _probe(&alt.rc4, data, pn, False, bridged):
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


# --- BCP bridged frames (RFC 3518 §4) ---------------------------------------------------------------------------

cdef dp_reason bcp_decode(uint8_t* p, size_t n, size_t room, size_t* off, size_t* out_len) noexcept nogil:
    # The checks of wire.bcp.decode_bridged_frame in its order; every MAC type but IEEE 802.3 (the only one
    # a TAP device carries) is unsupported, whatever the oracle would make of it.
    cdef uint8_t flags
    cdef size_t pads, length
    if n < BCP_HDR:
        return DP_BCP_BAD
    flags = p[0]
    if (flags & BCP_FLAG_I) or p[1] != BCP_MAC_8023:
        return DP_BCP_UNSUPPORTED
    pads = flags & BCP_PADS
    if n < BCP_HDR + pads:
        return DP_BCP_BAD
    length = n - pads - BCP_HDR
    if flags & BCP_FLAG_F:
        if length < BCP_FCS_LEN:
            return DP_BCP_BAD
        length -= BCP_FCS_LEN               # the LAN FCS is split off, not verified
    if (flags & BCP_FLAG_Z) and length < ETH_MIN:
        if room < BCP_HDR + ETH_MIN:
            return DP_BCP_BAD               # never happens with the data plane's buffers
        memset(p + BCP_HDR + length, 0, ETH_MIN - length)
        length = ETH_MIN
    if length < ETH_HDR:
        return DP_BCP_BAD
    off[0] = BCP_HDR
    out_len[0] = length
    return DP_OK


# --- Multilink PPP (RFC 1990) ------------------------------------------------------------------------------------
#
# Transmit: mp_plan cuts a packet (protocol field + information) the way wire.mp.fragment does; the data plane
# writes each fragment's MP header (mp_put_header) in front of its data, the first fragment in place in the
# TUN read slot, the others in copies (DataPlane.mpf).
#
# Receive: dp_mp_rx is wire.mp.Reassembler in C: the same state (head, the buffered fragments, per link the
# most recent sequence number or none, blocked_since), the same rules applied in the same order, the same
# counters. The buffered fragments sit in a dense array (scans: end of the packet at head, next buffered
# distance, drop-through) with an open-addressing hash on the sequence number (lookups), their octets in
# fixed buffers of one arena. A call leaves the packets it completed as lists of pieces pointing into
# buffers it freed: nothing reuses a buffer before the next call, whose single insert comes first.

cdef inline uint32_t mp_plan(size_t total, size_t room, size_t* base, size_t* extra) noexcept nogil:
    """``wire.mp.fragment``'s cut: n = max(1, ceil(total / room)) fragments, the first total % n one longer."""
    cdef size_t count = (total + room - 1) // room
    if count == 0:
        count = 1
    base[0] = total // count
    extra[0] = total % count
    return <uint32_t>count


cdef inline void mp_put_header(uint8_t* p, uint32_t seq, uint8_t flags, bint short_seq) noexcept nogil:
    if short_seq:
        p[0] = flags | <uint8_t>((seq >> 8) & 0x0F)
        p[1] = <uint8_t>seq
    else:
        p[0] = flags
        p[1] = <uint8_t>(seq >> 16)
        p[2] = <uint8_t>(seq >> 8)
        p[3] = <uint8_t>seq


cdef inline uint32_t mp_parse_header(const uint8_t* p, bint short_seq, uint8_t* flags) noexcept nogil:
    """The sequence number of the MP header at ``p`` (the caller checked its length); reserved bits ignored."""
    flags[0] = p[0] & (MP_FLAG_B | MP_FLAG_E)
    if short_seq:
        return ((<uint32_t>p[0] & 0x0F) << 8) | p[1]
    return (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef enum:
    _RUN_GAP = 0
    _RUN_NEW_BEGIN = 1
    _RUN_COMPLETE = 2


cdef int mp_rx_init(dp_mp_rx* r, bint short_seq, uint32_t max_buffered, uint64_t timeout_ns, uint32_t first_seq,
                    uint32_t max_packet, uint32_t frag_cap) except -1:
    cdef uint32_t i
    cdef uint32_t hsize = 16
    cdef uint32_t bits = 4
    memset(r, 0, sizeof(dp_mp_rx))
    r.mask = (1U << 12) - 1 if short_seq else (1U << 24) - 1
    r.half = (r.mask + 1) >> 1
    r.head = first_seq & r.mask
    r.max_buffered = max_buffered
    r.cap = max_buffered + 1
    r.frag_cap = frag_cap
    r.max_packet = max_packet
    r.timeout_ns = timeout_ns
    while hsize < 2 * r.cap:
        hsize <<= 1
        bits += 1
    r.hmask = hsize - 1
    r.hshift = 32 - bits
    r.frags = <mp_frag*>PyMem_RawCalloc(r.cap, sizeof(mp_frag))
    r.hidx = <uint32_t*>PyMem_RawCalloc(hsize, sizeof(uint32_t))
    r.free_bufs = <uint8_t**>PyMem_RawCalloc(r.cap, sizeof(uint8_t*))
    r.arena = <uint8_t*>PyMem_RawCalloc(r.cap, frag_cap if frag_cap else 1)
    r.pieces = <mp_piece*>PyMem_RawCalloc(r.cap, sizeof(mp_piece))
    r.out_end = <uint32_t*>PyMem_RawCalloc(r.cap, sizeof(uint32_t))
    r.out_len = <uint32_t*>PyMem_RawCalloc(r.cap, sizeof(uint32_t))
    if (r.frags == NULL or r.hidx == NULL or r.free_bufs == NULL or r.arena == NULL or r.pieces == NULL
            or r.out_end == NULL or r.out_len == NULL):
        mp_rx_free(r)
        raise MemoryError()
    for i in range(r.cap):
        r.free_bufs[i] = r.arena + <size_t>i * frag_cap
    r.n_free = r.cap
    return 0


cdef void mp_rx_free(dp_mp_rx* r) noexcept:
    PyMem_RawFree(r.frags)
    PyMem_RawFree(r.hidx)
    PyMem_RawFree(r.free_bufs)
    PyMem_RawFree(r.arena)
    PyMem_RawFree(r.pieces)
    PyMem_RawFree(r.out_end)
    PyMem_RawFree(r.out_len)
    memset(r, 0, sizeof(dp_mp_rx))


cdef inline uint32_t _mp_home(const dp_mp_rx* r, uint32_t seq) noexcept nogil:
    return <uint32_t>(seq * <uint32_t>2654435769U) >> r.hshift


cdef inline int _mp_hpos(const dp_mp_rx* r, uint32_t seq) noexcept nogil:
    """The hash cell of buffered ``seq``, or -1."""
    cdef uint32_t i = _mp_home(r, seq)
    while r.hidx[i] != 0:                   # terminates: the table is at most half full
        if r.frags[r.hidx[i] - 1].seq == seq:
            return <int>i
        i = (i + 1) & r.hmask
    return -1


cdef inline int _mp_find(const dp_mp_rx* r, uint32_t seq) noexcept nogil:
    """The index in r.frags of buffered ``seq``, or -1."""
    cdef int i = _mp_hpos(r, seq)
    return -1 if i < 0 else <int>r.hidx[i] - 1


cdef void _mp_insert(dp_mp_rx* r, uint32_t seq, uint8_t flags, const uint8_t* data, size_t n) noexcept nogil:
    cdef uint32_t d = r.n
    cdef uint32_t i
    cdef mp_frag* f = &r.frags[d]
    c_assert(r.n < r.cap and r.n_free > 0)
    f.seq = seq
    f.flags = flags
    f.len = <uint32_t>n
    if n <= r.frag_cap:
        r.n_free -= 1
        f.data = r.free_bufs[r.n_free]
        if n:
            memcpy(f.data, data, n)
    else:
        f.data = NULL                       # too long for any packet we deliver: kept as a length only
    r.n += 1
    i = _mp_home(r, seq)
    while r.hidx[i] != 0:
        i = (i + 1) & r.hmask
    r.hidx[i] = d + 1


cdef void _mp_remove(dp_mp_rx* r, uint32_t seq, bint collect) noexcept nogil:
    """Remove buffered ``seq`` (it must be buffered); ``collect``: append it to the output pieces."""
    cdef int pos = _mp_hpos(r, seq)
    cdef uint32_t i, j, k, d, last
    cdef bint stays
    cdef mp_frag* f
    c_assert(pos >= 0)
    i = <uint32_t>pos
    d = r.hidx[i] - 1
    f = &r.frags[d]
    if collect:
        r.pieces[r.n_pieces].data = f.data
        r.pieces[r.n_pieces].len = f.len
        r.n_pieces += 1
    if f.data != NULL:
        r.free_bufs[r.n_free] = f.data      # its octets stay until the next insert (the next call)
        r.n_free += 1
    # the hash cell: linear probing without tombstones (Knuth 6.4, Algorithm R, as DataPlane._table_delete)
    r.hidx[i] = 0
    j = i
    while True:
        j = (j + 1) & r.hmask
        if r.hidx[j] == 0:
            break
        k = _mp_home(r, r.frags[r.hidx[j] - 1].seq)
        if i <= j:
            stays = i < k and k <= j
        else:
            stays = i < k or k <= j
        if stays:
            continue
        r.hidx[i] = r.hidx[j]
        r.hidx[j] = 0
        i = j
    # the dense array: the last entry moves into the hole
    last = r.n - 1
    if d != last:
        r.frags[d] = r.frags[last]
        pos = _mp_hpos(r, r.frags[d].seq)
        r.hidx[pos] = d + 1
    r.n -= 1


cdef void _mp_advance(dp_mp_rx* r, uint32_t k) noexcept nogil:
    cdef int l
    r.head = (r.head + k) & r.mask
    for l in range(MP_MAX_LINKS):
        if r.links[l].member and r.links[l].has_last and ((r.links[l].last - r.head) & r.mask) >= r.half:
            r.links[l].has_last = 0


cdef bint _mp_m_distance(const dp_mp_rx* r, uint32_t* m) noexcept nogil:
    """M as a distance from head; False when M is undefined (no link, or a link without a sequence number)."""
    cdef int l
    cdef bint any_link = False
    cdef uint32_t d
    cdef uint32_t best = 0xFFFFFFFFU
    for l in range(MP_MAX_LINKS):
        if r.links[l].member:
            if not r.links[l].has_last:
                return False
            any_link = True
            d = (r.links[l].last - r.head) & r.mask
            if d < best:
                best = d
    m[0] = best
    return any_link


cdef int64_t _mp_next_buffered_distance(const dp_mp_rx* r) noexcept nogil:
    cdef uint32_t i, d
    cdef int64_t best = -1
    for i in range(r.n):
        d = (r.frags[i].seq - r.head) & r.mask
        if best < 0 or d < best:
            best = d
    return best


cdef int _mp_run(const dp_mp_rx* r, uint32_t* k_out) noexcept nogil:
    cdef uint32_t k = 0
    cdef int d
    while True:
        d = _mp_find(r, (r.head + k) & r.mask)
        if d < 0:
            k_out[0] = k
            return _RUN_GAP
        if k > 0 and (r.frags[d].flags & MP_FLAG_B):
            k_out[0] = k
            return _RUN_NEW_BEGIN
        k += 1
        if r.frags[d].flags & MP_FLAG_E:
            k_out[0] = k
            return _RUN_COMPLETE


cdef void _mp_take(dp_mp_rx* r, uint32_t k, bint collect) noexcept nogil:
    cdef uint32_t i
    for i in range(k):
        _mp_remove(r, (r.head + i) & r.mask, collect)
    _mp_advance(r, k)


cdef void _mp_deliver(dp_mp_rx* r, uint32_t first_piece) noexcept nogil:
    cdef uint32_t i
    cdef size_t total = 0
    cdef bint big = False
    for i in range(first_piece, r.n_pieces):
        total += r.pieces[i].len
        if r.pieces[i].data == NULL:
            big = True
    if total == 0:
        r.counters[<int>MPC_NULL] += 1
        r.n_pieces = first_piece
    elif big or (r.max_packet and total > r.max_packet):
        r.counters[<int>MPC_TOO_LONG] += 1
        r.n_pieces = first_piece
    else:
        r.counters[<int>MPC_DELIVERED] += 1
        r.out_end[r.n_out] = r.n_pieces
        r.out_len[r.n_out] = <uint32_t>total
        r.n_out += 1


cdef void _mp_drop_packet(dp_mp_rx* r, uint32_t k) noexcept nogil:
    _mp_take(r, k, False)
    r.counters[<int>MPC_DROPPED_INCOMPLETE] += 1
    r.counters[<int>MPC_DISCARDED] += k


cdef int64_t _mp_end_distance(const dp_mp_rx* r) noexcept nogil:
    cdef uint32_t i, d
    cdef int64_t cand
    cdef int64_t best = -1
    for i in range(r.n):
        d = (r.frags[i].seq - r.head) & r.mask
        if (r.frags[i].flags & MP_FLAG_B) and d > 0:
            cand = d - 1
        elif r.frags[i].flags & MP_FLAG_E:
            cand = d
        else:
            continue
        if best < 0 or cand < best:
            best = cand
    return best


cdef void _mp_drop_through(dp_mp_rx* r, uint32_t e) noexcept nogil:
    # The oracle walks every sequence number from head through e; here only the buffered fragments are
    # visited (e may be millions away), the others are the lost ones.
    cdef uint32_t i = 0
    cdef uint32_t removed = 0
    if _mp_find(r, r.head) >= 0:
        r.counters[<int>MPC_DROPPED_INCOMPLETE] += 1
    while i < r.n:
        if ((r.frags[i].seq - r.head) & r.mask) <= e:
            _mp_remove(r, r.frags[i].seq, False)    # the last entry moves into i: look at i again
            removed += 1
        else:
            i += 1
    r.counters[<int>MPC_DISCARDED] += removed
    r.counters[<int>MPC_LOST] += <uint64_t>e + 1 - removed
    _mp_advance(r, e + 1)


cdef void _mp_process(dp_mp_rx* r) noexcept nogil:
    cdef int d, how
    cdef uint32_t k, m, first
    cdef int64_t e
    while r.n:
        d = _mp_find(r, r.head)
        if d >= 0:
            if not (r.frags[d].flags & MP_FLAG_B):     # rule 2
                _mp_take(r, 1, False)
                r.counters[<int>MPC_DISCARDED] += 1
                continue
            how = _mp_run(r, &k)                        # rule 1
            if how == _RUN_COMPLETE:
                first = r.n_pieces
                _mp_take(r, k, True)
                _mp_deliver(r, first)
                continue
            if how == _RUN_NEW_BEGIN:
                _mp_drop_packet(r, k)
                continue
        if not _mp_m_distance(r, &m):                   # rule 3
            return
        e = _mp_end_distance(r)
        if e < 0 or m <= e:
            return
        _mp_drop_through(r, <uint32_t>e)


cdef void _mp_give_up(dp_mp_rx* r) noexcept nogil:
    cdef uint32_t k
    cdef int64_t nd
    if _mp_find(r, r.head) >= 0:
        _mp_run(r, &k)
        _mp_drop_packet(r, k)
    nd = _mp_next_buffered_distance(r)
    if nd > 0:
        r.counters[<int>MPC_LOST] += <uint64_t>nd
        _mp_advance(r, <uint32_t>nd)


cdef inline void _mp_rearm(dp_mp_rx* r, uint32_t head_before, uint64_t now) noexcept nogil:
    if r.n == 0:
        r.blocked = 0
    elif not r.blocked or r.head != head_before:
        r.blocked = 1
        r.blocked_since = now


cdef void mp_rx_receive(dp_mp_rx* r, int link, uint32_t seq, uint8_t flags, const uint8_t* data, size_t n,
                        uint64_t now) noexcept nogil:
    cdef uint32_t head_before
    r.n_out = 0
    r.n_pieces = 0
    seq &= r.mask
    r.counters[<int>MPC_RECEIVED] += 1
    if ((seq - r.head) & r.mask) >= r.half:
        r.counters[<int>MPC_LATE] += 1
        return
    r.links[link].member = 1
    r.links[link].has_last = 1
    r.links[link].last = seq
    head_before = r.head
    if _mp_find(r, seq) >= 0:
        r.counters[<int>MPC_DUPLICATES] += 1
    else:
        _mp_insert(r, seq, flags, data, n)
    _mp_process(r)
    while r.n > r.max_buffered:
        r.counters[<int>MPC_OVERFLOW] += 1
        _mp_give_up(r)
        _mp_process(r)
    _mp_rearm(r, head_before, now)


cdef void mp_rx_link_up(dp_mp_rx* r, int link) noexcept nogil:
    if not r.links[link].member:
        r.links[link].member = 1
        r.links[link].has_last = 0


cdef void mp_rx_link_down(dp_mp_rx* r, int link, uint64_t now) noexcept nogil:
    cdef uint32_t head_before = r.head
    r.n_out = 0
    r.n_pieces = 0
    r.links[link].member = 0
    r.links[link].has_last = 0
    _mp_process(r)
    _mp_rearm(r, head_before, now)


cdef bint mp_rx_timer(dp_mp_rx* r, uint64_t now) noexcept nogil:
    r.n_out = 0
    r.n_pieces = 0
    if not r.blocked or r.blocked_since + r.timeout_ns > now:
        return False
    r.counters[<int>MPC_TIMEOUTS] += 1
    _mp_give_up(r)
    _mp_process(r)
    r.blocked = 1 if r.n else 0
    r.blocked_since = now
    return True


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
    punt_slots=1024, punt_bytes=256 KiB, max_bundles=4096)``. Python opens every fd (UDP sockets, TUN devices) and keeps
    owning it: the data plane never closes one. One thread drives a DataPlane (the event loop's):
    while a burst runs, calls that change the table raise ``RuntimeError``.

    - ``slot_size`` bounds a datagram (receive) and a TUN packet plus ``headroom`` (send); larger ones are
      dropped as ``TOO_BIG``.
    - ``max_bursts`` caps the recvmmsg (or TUN read) batches per ``rx_udp``/``rx_tun`` call, so that one
      busy socket cannot starve the loop.
    - Punted items wait in a bounded queue (``punt_slots`` items, ``punt_bytes`` bytes); when Python does
      not drain it, further punts are dropped as ``PUNT_FULL``.
    - ``max_bundles`` bounds the MP bundles (``add_bundle``); each takes its reassembly memory when added.

    Bridged sessions and bundles (BCP, RFC 3518) carry the Ethernet frames of a TAP fd as PPP protocol
    0x0031 (``00 01`` + frame: IEEE 802.3, no LAN FCS, no pads). MP bundles (RFC 1990): see ``add_bundle``.
    """

    def __cinit__(self, Py_ssize_t batch=64, Py_ssize_t headroom=64, Py_ssize_t max_sessions=65536, *,
                  Py_ssize_t slot_size=2048, int max_bursts=8, Py_ssize_t punt_slots=1024,
                  Py_ssize_t punt_bytes=262144, Py_ssize_t max_bundles=4096):
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
        if not 0 <= max_bundles <= _MAX_BUNDLES:
            raise ValueError(f"max_bundles must be 0..{_MAX_BUNDLES}")
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
        self.max_bundles = max_bundles
        self.bundles = <dp_bundle*>PyMem_RawCalloc(max_bundles if max_bundles else 1, sizeof(dp_bundle))
        # the fragment copies and send vector of bundles: allocated by the first add_bundle
        self.mp_cap = batch * 4 if batch * 4 > _MP_MIN_CAP else _MP_MIN_CAP
        if (self.table == NULL or self.sess == NULL or self.free_slots == NULL or self.punts == NULL
                or self.punt_arena == NULL or self.scratch == NULL or self.bundles == NULL):
            raise MemoryError()
        _slots_alloc(&self.rx, batch, slot_size, 0, True)
        _slots_alloc(&self.tx, batch, slot_size, headroom, False)

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.sess != NULL:
            for i in range(self.high_water):
                if self.sess[i].flags & DPS_USED:
                    self._free_ext(&self.sess[i])
        if self.bundles != NULL:
            for i in range(self.bundle_high):
                if self.bundles[i].flags & DPB_USED:
                    mp_rx_free(&self.bundles[i].rx)
        PyMem_RawFree(self.bundles)
        _slots_free(&self.mpf)
        PyMem_RawFree(self.mpm)
        PyMem_RawFree(self.mp_join)
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
                    bint tx_length=False, int mss=0, bint bridged=False) -> int:
        """Add a session keyed by our (tunnel id, session id); returns its slot (for ``rx_tun``).

        The peer's ids go into every data header we send; data messages are accepted only from
        ``(peer_ip, peer_port)``. ``tx_seq``: send Ns/Nr (the peer asked for sequencing);
        ``tun_fd`` may be -1 while the interface does not exist yet (PPP still negotiating): IP packets
        are then dropped as NO_TUN until ``update_session(tun_fd=...)``.
        ``tx_length``: send the Length field; ``mss``: TCP MSS clamp on SYNs both ways (0 = off), the
        IPv4 value (interface MTU - 40); IPv6 SYNs are clamped to ``mss - 20`` (MTU - 60).
        ``bridged`` (BCP): ``tun_fd`` is a TAP fd (IFF_TAP|IFF_NO_PI); each frame read from it (at least 14
        octets, else ETH_SHORT) goes out as protocol 0x0031 with ``00 01`` in front; received 0x0031 frames
        are decoded (RFC 3518 §4: FCS split off, pads stripped, tinygrams zero-padded to 60 octets; a LAN-ID
        or a MAC type other than IEEE 802.3 is BCP_UNSUPPORTED, a malformed frame BCP_BAD) and written to it;
        IPv4/IPv6 from the peer is dropped (BRIDGED_IP). A session that is not bridged punts 0x0031.
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
        if bridged:
            self._check_headroom(True, False)
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
        s.bundle = -1
        if bridged:
            s.flags |= DPS_BRIDGED
        self._set_flags(s, tx_seq, tx_length, mss)
        self._table_insert(s.key, slot)
        self.n_sessions += 1
        return slot

    def update_session(self, int tunnel_id, int session_id, *, peer_ip=None, peer_port=None,
                       peer_tunnel_id=None, peer_session_id=None, sock_index=None, tun_fd=None,
                       tx_seq=None, tx_length=None, mss=None, bridged=None) -> None:
        """Change what is given (None = keep): peer address/ids, socket, TUN fd, flags, MSS clamp, bridged
        (the fd then is a TAP fd, see ``add_session``). Counters and the Ns state are kept. A member of an
        MP bundle keeps its settings, but its own TUN fd and bridged flag are not used while it is one."""
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
        if bridged:
            self._check_headroom(True, (s.flags & DPS_MPPE) != 0)
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
        if bridged is not None:
            if bridged:
                s.flags |= DPS_BRIDGED
            else:
                s.flags &= ~DPS_BRIDGED
        self._set_flags(s, tx_seq, tx_length, mss)

    cdef int _check_headroom(self, bint bridged, bint mppe) except -1:
        cdef Py_ssize_t need = L2TP_MAX_DATA_HDR + 4 + (BCP_HDR if bridged else 0) + (MPPE_OVERHEAD if mppe else 0)
        if self.headroom < need:
            what = "MPPE on a bridged session" if bridged and mppe else ("MPPE" if mppe else "a bridged session")
            raise ValueError(f"{what} needs a headroom of at least {need}")
        return 0

    def remove_session(self, int tunnel_id, int session_id) -> None:
        """Forget a session (``KeyError`` when unknown); its slot may be reused by the next add. A member of
        an MP bundle leaves it first (as ``bundle_remove_link``)."""
        cdef dp_session* s
        cdef uint32_t slot
        self._not_busy()
        s = self._session(tunnel_id, session_id)
        if s.flags & DPS_MP:
            self._unlink(&self.bundles[s.bundle], s.mp_link, True)
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
        if s.flags & DPS_MP:
            raise ValueError("MPPE over a multilink bundle is not supported")
        self._check_headroom((s.flags & DPS_BRIDGED) != 0, True)
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
        cdef size_t flen, wlen
        cdef uint8_t* info
        cdef Py_ssize_t punts_before
        cdef uint16_t proto
        cdef size_t hl
        cdef dp_mppe* m
        cdef bint want_reset
        cdef bint bridged
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
        if s.flags & DPS_MP:
            # a member link: MP fragments to the bundle's reassembler, plain data frames to the bundle
            self.rx_member(s, si, frame, flen, proto, hl, p + self.rx.slot_size, now)
            return
        bridged = (s.flags & DPS_BRIDGED) != 0
        if s.flags & DPS_MPPE:
            m = <dp_mppe*>s.ext
            if proto == _PPP_MPPE:
                want_reset = False
                r = mppe_decrypt(m, frame + hl, flen - hl, &want_reset, bridged)
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
            elif m.required and (proto == _PPP_IPV4 or proto == _PPP_IPV6 or (bridged and proto == PPP_BRIDGED)):
                _sdrop(self.drops, s, DP_MPPE_UNENCRYPTED, 1)
                return
        if proto == _PPP_IPV4 or proto == _PPP_IPV6 or (proto == PPP_BRIDGED and bridged):
            info = frame + hl
            r = _fd_write(s.tun_fd, proto, info, flen - hl, <size_t>(p + self.rx.slot_size - info), bridged,
                          s.mss if s.flags & DPS_MSS else 0, &s.mss_clamped, &self.c_mss_clamped, &wlen)
            if r != DP_OK:
                _sdrop(self.drops, s, r, 1)
                return
            s.rx_packets += 1
            s.rx_bytes += wlen
            s.last_rx_ns = now
            self.c_rx_ip += 1
            if proto == PPP_BRIDGED:
                self.c_bcp_rx += 1
            return
        # LCP, authentication, NCPs (BCP too), CCP, compressed datagrams without MPPE, decrypted non-IP frames
        # (protocol + information), bridged frames on a session that is not bridged, anything unknown: to Python
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
            if s.flags & DPS_BRIDGED:
                self.c_bcp_tx += <uint64_t>r
            sent += r

    cdef Py_ssize_t rx_tun_burst(self, dp_session* s) noexcept nogil:
        cdef dp_slots* v = &self.tx
        cdef size_t hr = v.headroom
        cdef size_t room = v.slot_size - v.headroom
        cdef Py_ssize_t total = 0
        cdef Py_ssize_t n, off
        cdef ssize_t r
        cdef int burst
        cdef bint drained = False
        cdef uint8_t* buf
        cdef size_t pstart, plen
        cdef dp_reason rr
        cdef bint bridged = (s.flags & DPS_BRIDGED) != 0
        cdef uint16_t mss = s.mss if s.flags & DPS_MSS else 0
        cdef dp_mppe* m = <dp_mppe*>s.ext if s.flags & DPS_MPPE else NULL
        for burst in range(self.max_bursts):
            n = 0
            while n < self.batch:
                buf = v.arena + n * v.slot_size
                r = _fd_read(s.tun_fd, buf + hr, room, &self.err)
                if r == 0:
                    drained = True
                    break
                total += 1
                rr = _fd_payload(buf, hr, <size_t>r, room, bridged, mss, &s.mss_clamped, &self.c_mss_clamped,
                                 &s.tx.ppp_proto, &pstart)
                if rr != DP_OK:
                    _sdrop(self.drops, s, rr, 1)
                    continue
                plen = hr + <size_t>r - pstart
                if m != NULL:
                    # inner protocol + payload encrypted in place, MPPE header in front, then 0x00FD
                    _put16(buf + pstart - 2, s.tx.ppp_proto)
                    mppe_encrypt(m, buf + pstart - MPPE_OVERHEAD, plen + 2)
                    s.tx.ppp_proto = _PPP_MPPE
                    off = l2tp_build_data(buf, pstart - MPPE_OVERHEAD, plen + MPPE_OVERHEAD, &s.tx)
                    self.c_mppe_tx += 1
                else:
                    off = l2tp_build_data(buf, pstart, plen, &s.tx)
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

    # -- MP bundles (RFC 1990) ------------------------------------------------------------------------------------

    def add_bundle(self, int fd, *, int mrru, bint rx_short_seq, bint tx_short_seq, bint bridged=False,
                   int mss=0, int max_fragments=256, double timeout=1.0, peer_mrru=None) -> int:
        """Add an MP bundle whose packets go to and come from ``fd`` (its TUN fd, or a TAP fd when
        ``bridged``; -1 while there is no interface yet: IP to it is then NO_TUN); returns its id (>= 0).

        ``mrru`` (64..65535, ours): a reassembled packet longer than ``mrru + 2`` (protocol field) is dropped
        (``too_long``); a packet read from ``fd`` whose information field is longer than ``peer_mrru``
        (default: ``mrru``) is dropped (TOO_BIG); packets read are also bounded by the slot
        (``slot_size - headroom``). ``rx_short_seq``: the peer sends 12-bit sequence numbers (we asked for
        SSNHF), ``tx_short_seq``: we send them (the peer asked); else 24-bit. Our first fragment is 0, and
        the peer's first is expected to be 0. ``mss``: TCP MSS clamp both ways (0 = off) as for sessions.
        ``max_fragments`` (1..8192) bounds the reassembly buffer, ``timeout`` (seconds) is its stall timeout
        (``expire_bundles``). Memory: one arena of ``(max_fragments + 1) * min(mrru + 2, slot_size)`` octets
        (a buffer per entry, as large as the largest fragment that can arrive; a longer fragment is kept as
        a length only, its packet being too long anyway), allocated here, never grown."""
        cdef Py_ssize_t i
        cdef Py_ssize_t bid = -1
        cdef dp_bundle* b
        cdef uint8_t* join
        self._not_busy()
        if fd < -1:
            raise ValueError("fd: an open fd, or -1 for no interface yet")
        if not _MIN_MRRU <= mrru <= 0xFFFF:
            raise ValueError(f"mrru {mrru}: {_MIN_MRRU}..65535")
        if peer_mrru is not None and not _MIN_MRRU <= peer_mrru <= 0xFFFF:
            raise ValueError(f"peer_mrru {peer_mrru}: {_MIN_MRRU}..65535")
        _check_mss(mss)
        if not 1 <= max_fragments <= _MAX_MP_FRAGMENTS:
            raise ValueError(f"max_fragments must be 1..{_MAX_MP_FRAGMENTS}")
        if not 0 < timeout <= 3600:
            raise ValueError("timeout must be > 0 and at most 3600 s")
        if self.headroom < _MP_HEADROOM:
            raise ValueError(f"MP bundles need a headroom of at least {_MP_HEADROOM}")
        for i in range(self.bundle_high):
            if not (self.bundles[i].flags & DPB_USED):
                bid = i
                break
        if bid < 0:
            if self.bundle_high >= self.max_bundles:
                raise ValueError(f"bundle table full ({self.max_bundles})")
            bid = self.bundle_high
        if self.mpm == NULL:
            self.mpm = <dp_mp_msg*>PyMem_RawCalloc(self.mp_cap, sizeof(dp_mp_msg))
            if self.mpm == NULL:
                raise MemoryError()
            try:
                _slots_alloc(&self.mpf, self.mp_cap, self.slot_size + 8, self.headroom, False)
            except MemoryError:
                _slots_free(&self.mpf)
                PyMem_RawFree(self.mpm)
                self.mpm = NULL
                raise
        if self.mp_join_size < mrru + 2 + 128:          # the join buffer: the largest mrru + 2, Z padding room
            join = <uint8_t*>PyMem_RawCalloc(mrru + 2 + 128, 1)
            if join == NULL:
                raise MemoryError()
            PyMem_RawFree(self.mp_join)
            self.mp_join = join
            self.mp_join_size = mrru + 2 + 128
        b = &self.bundles[bid]
        memset(b, 0, sizeof(dp_bundle))
        mp_rx_init(&b.rx, rx_short_seq, <uint32_t>max_fragments, _s_to_ns(timeout), 0, <uint32_t>mrru + 2,
                   <uint32_t>min(mrru + 2, self.slot_size))
        b.flags = DPB_USED
        if bridged:
            b.flags |= DPB_BRIDGED
        if rx_short_seq:
            b.flags |= DPB_RX_SHORT
        if tx_short_seq:
            b.flags |= DPB_TX_SHORT
        if mss:
            b.flags |= DPB_MSS
            b.mss = <uint16_t>mss
        b.fd = fd
        b.mrru = <uint32_t>mrru
        b.tx_mrru = <uint32_t>(mrru if peer_mrru is None else peer_mrru)
        if bid == self.bundle_high:
            self.bundle_high += 1
        self.n_bundles += 1
        return bid

    cdef dp_bundle* _bundle(self, int bundle_id) except NULL:
        if not 0 <= bundle_id < self.bundle_high or not (self.bundles[bundle_id].flags & DPB_USED):
            raise KeyError(f"no bundle {bundle_id}")
        return &self.bundles[bundle_id]

    def update_bundle(self, int bundle_id, *, fd=None, mss=None) -> None:
        """Change the bundle's fd (-1: none) or its MSS clamp (0 = off); None = keep."""
        cdef dp_bundle* b
        self._not_busy()
        b = self._bundle(bundle_id)
        if fd is not None and fd < -1:
            raise ValueError("fd: an open fd, or -1 for no interface yet")
        if mss is not None:
            _check_mss(mss)
        if fd is not None:
            b.fd = fd
        if mss is not None:
            b.mss = <uint16_t>mss
            if mss:
                b.flags |= DPB_MSS
            else:
                b.flags &= ~DPB_MSS

    def remove_bundle(self, int bundle_id) -> None:
        """Forget a bundle: its member sessions become plain sessions again (TUN fd -1, until
        ``update_session(tun_fd=...)``); buffered fragments are dropped."""
        cdef dp_bundle* b
        cdef uint32_t li
        self._not_busy()
        b = self._bundle(bundle_id)
        for li in range(<uint32_t>MP_MAX_LINKS):
            if b.link_used[li]:
                self._unlink(b, li, False)
        mp_rx_free(&b.rx)
        memset(b, 0, sizeof(dp_bundle))
        self.n_bundles -= 1
        while self.bundle_high and not (self.bundles[self.bundle_high - 1].flags & DPB_USED):
            self.bundle_high -= 1

    cdef int _check_link_mtu(self, dp_bundle* b, uint32_t mtu) except -1:
        cdef uint32_t hlen = MP_SHORT_HDR if b.flags & DPB_TX_SHORT else MP_LONG_HDR
        cdef uint32_t low = mtu
        cdef size_t longest = <size_t>(self.slot_size - self.headroom) + 4    # protocol + 00 01 + frame
        cdef size_t count
        if b.n_links and b.min_mtu < low:
            low = b.min_mtu
        count = (longest + low - hlen - 1) // (low - hlen)
        if <Py_ssize_t>count > self.mp_cap:
            raise ValueError(f"mtu {low}: a packet could need {count} fragments, more than {self.mp_cap} "
                             f"(a larger batch allows more)")
        return 0

    def bundle_add_link(self, int bundle_id, int tunnel_id, int session_id, *, int mtu) -> None:
        """Make session (tunnel_id, session_id) a member link of the bundle. ``mtu``: the link's PPP MTU (what
        the peer's MRU allows): MP header + fragment data <= mtu; fragments are cut for the smallest mtu of
        the bundle's links. The session's own TUN fd is set to -1: the bundle's fd is the interface. At most
        8 links; a session is in at most one bundle; MPPE over MP is not supported (ValueError)."""
        cdef dp_bundle* b
        cdef dp_session* s
        cdef uint32_t li
        cdef uint32_t hlen
        self._not_busy()
        b = self._bundle(bundle_id)
        s = self._session(tunnel_id, session_id)
        hlen = MP_SHORT_HDR if b.flags & DPB_TX_SHORT else MP_LONG_HDR
        if s.flags & DPS_MP:
            raise ValueError(f"session ({tunnel_id}, {session_id}) is already a link of bundle {s.bundle}")
        if s.flags & DPS_MPPE:
            raise ValueError("MPPE over a multilink bundle is not supported")
        if b.n_links >= MP_MAX_LINKS:
            raise ValueError(f"bundle {bundle_id} has {MP_MAX_LINKS} links already (the most)")
        if not <int>hlen < mtu <= 0xFFFF:
            raise ValueError(f"mtu {mtu}: {hlen + 1}..65535")
        self._check_link_mtu(b, <uint32_t>mtu)
        for li in range(<uint32_t>MP_MAX_LINKS):
            if not b.link_used[li]:
                break
        b.link_used[li] = 1
        b.link_slot[li] = <uint32_t>(s - self.sess)
        b.link_mtu[li] = <uint32_t>mtu
        b.tx_order[b.n_links] = li
        if b.n_links == 0 or <uint32_t>mtu < b.min_mtu:
            b.min_mtu = <uint32_t>mtu
        b.n_links += 1
        s.flags |= DPS_MP
        s.bundle = bundle_id
        s.mp_link = li
        s.tun_fd = -1
        mp_rx_link_up(&b.rx, <int>li)

    def bundle_remove_link(self, int bundle_id, int tunnel_id, int session_id) -> None:
        """The session leaves the bundle (and becomes a plain session with TUN fd -1). The reassembler no
        longer waits for it (RFC 1990 §4.2: M over the remaining links), which may complete packets: they
        are delivered at once (non-IP ones punted with the ids of the first remaining link)."""
        cdef dp_bundle* b
        cdef dp_session* s
        self._not_busy()
        b = self._bundle(bundle_id)
        s = self._session(tunnel_id, session_id)
        if not (s.flags & DPS_MP) or s.bundle != bundle_id:
            raise KeyError(f"session ({tunnel_id}, {session_id}) is not a link of bundle {bundle_id}")
        self._unlink(b, s.mp_link, True)

    cdef void _unlink(self, dp_bundle* b, uint32_t li, bint process) noexcept:
        cdef dp_session* s = &self.sess[b.link_slot[li]]
        cdef uint32_t i, j = 0
        cdef uint64_t now
        s.flags &= ~DPS_MP
        s.bundle = -1
        s.tun_fd = -1
        b.link_used[li] = 0
        for i in range(b.n_links):
            if b.tx_order[i] != li:
                b.tx_order[j] = b.tx_order[i]
                j += 1
        b.n_links = j
        b.min_mtu = 0
        for i in range(b.n_links):
            if b.min_mtu == 0 or b.link_mtu[b.tx_order[i]] < b.min_mtu:
                b.min_mtu = b.link_mtu[b.tx_order[i]]
        if process:
            now = _now_ns()
            mp_rx_link_down(&b.rx, <int>li, now)
            if b.rx.n_out:
                self.mp_deliver_out(b, NULL, now)
        else:
            b.rx.links[li].member = 0
            b.rx.links[li].has_last = 0

    def rx_bundle(self, int bundle_id) -> int:
        """Drain the bundle's fd as ``rx_tun`` does for a session (read bursts, then sendmmsg) and send each
        packet over the member links: with one link and a packet that fits its mtu (2 + payload <= mtu) as
        a plain PPP frame; else cut into MP fragments as ``wire.mp.fragment`` does (smallest mtu of the
        links, consecutive sequence numbers, fragment i on link (seq + i) % n_links in joining order), each
        an L2TP data message of its link's session (0x003D), grouped per socket for sendmmsg. Returns the
        packets read. ``OSError`` when the read fails other than with EAGAIN."""
        cdef Py_ssize_t n
        cdef dp_bundle* b
        self._not_busy()
        b = self._bundle(bundle_id)
        if b.fd < 0:
            raise ValueError(f"bundle {bundle_id} has no fd yet")
        self.busy = True
        self.err = 0
        with nogil:
            n = self.rx_bundle_burst(b)
        self.busy = False
        if self.err:
            raise OSError(self.err, _os.strerror(self.err))
        return n

    def expire_bundles(self) -> int:
        """Apply the reassembly stall timeout of every bundle (CLOCK_MONOTONIC, as the bursts): a bundle whose
        head has not moved for its ``timeout`` gives up the gap blocking it (one per call, as
        ``wire.mp.Reassembler.handle_timer``), and the packets this completes are delivered. Python calls
        it about once a second. Returns the gaps given up."""
        cdef Py_ssize_t i
        cdef Py_ssize_t gaps = 0
        cdef uint64_t now
        cdef dp_bundle* b
        self._not_busy()
        self.busy = True
        with nogil:
            now = _now_ns()
            for i in range(self.bundle_high):
                b = &self.bundles[i]
                if b.flags & DPB_USED and b.rx.blocked and mp_rx_timer(&b.rx, now):
                    gaps += 1
                    if b.rx.n_out:
                        self.mp_deliver_out(b, NULL, now)
        self.busy = False
        return gaps

    def bundle_traffic(self, int bundle_id) -> tuple:
        """(rx_packets, rx_bytes, tx_packets, tx_bytes, last_rx_ns, last_tx_ns) of a bundle, as
        ``session_traffic``: packets delivered to / read from its fd and sent, payload lengths."""
        cdef dp_bundle* b = self._bundle(bundle_id)
        return (b.rx_packets, b.rx_bytes, b.tx_packets, b.tx_bytes, b.last_rx_ns, b.last_tx_ns)

    def bundle_stats(self, int bundle_id) -> dict:
        """Settings and counters of a bundle. ``links``: [(tunnel_id, session_id)] in round-robin order, with
        ``mtus`` alongside; ``reassembly``: the reassembler's counters under ``wire.mp.COUNTER_NAMES``;
        ``drops``: every reason (zeros included; per-link drops are in the sessions' stats)."""
        cdef dp_bundle* b = self._bundle(bundle_id)
        cdef uint32_t i
        cdef dp_session* s
        links = []
        mtus = []
        for i in range(b.n_links):
            s = &self.sess[b.link_slot[b.tx_order[i]]]
            links.append((s.key >> 16, s.key & 0xFFFF))
            mtus.append(b.link_mtu[b.tx_order[i]])
        drops = {}
        for reason in DropReason:
            if reason != DropReason.OK:
                drops[reason.name.lower()] = b.drops[<int>reason]
        return {
            "bundle_id": bundle_id,
            "fd": b.fd,
            "links": links,
            "mtus": mtus,
            "mrru": b.mrru,
            "peer_mrru": b.tx_mrru,
            "rx_short_seq": bool(b.flags & DPB_RX_SHORT),
            "tx_short_seq": bool(b.flags & DPB_TX_SHORT),
            "bridged": bool(b.flags & DPB_BRIDGED),
            "mss": b.mss if b.flags & DPB_MSS else 0,
            "max_fragments": b.rx.max_buffered,
            "timeout": b.rx.timeout_ns / 1e9,
            "tx_seq": b.tx_seq,
            "head": b.rx.head,
            "buffered": b.rx.n,
            "rx_packets": b.rx_packets,
            "rx_bytes": b.rx_bytes,
            "tx_packets": b.tx_packets,
            "tx_bytes": b.tx_bytes,
            "last_rx_ns": b.last_rx_ns,
            "last_tx_ns": b.last_tx_ns,
            "fragments_rx": b.frags_rx,
            "fragments_tx": b.frags_tx,
            "plain_rx": b.plain_rx,
            "plain_tx": b.plain_tx,
            "mss_clamped": b.mss_clamped,
            "reassembly": _mp_counters(&b.rx),
            "drops": drops,
        }

    def bundle_ids(self) -> list:
        """The ids of the bundles in use."""
        return [i for i in range(self.bundle_high) if self.bundles[i].flags & DPB_USED]

    # -- MP receive (inside rx_udp bursts) ---------------------------------------------------------------------

    cdef void rx_member(self, dp_session* s, int si, uint8_t* frame, size_t flen, uint16_t proto, size_t hl,
                        uint8_t* end, uint64_t now) noexcept nogil:
        cdef dp_bundle* b = &self.bundles[s.bundle]
        cdef uint8_t* info = frame + hl
        cdef size_t ilen = flen - hl
        cdef bint short_seq = (b.flags & DPB_RX_SHORT) != 0
        cdef size_t mh = MP_SHORT_HDR if short_seq else MP_LONG_HDR
        cdef uint32_t seq
        cdef uint8_t fl
        cdef Py_ssize_t punts_before
        if proto == PPP_MP:
            if ilen < mh:
                _sdrop(self.drops, s, DP_MP_SHORT, 1)
                return
            seq = mp_parse_header(info, short_seq, &fl)
            s.rx_packets += 1
            s.rx_bytes += ilen
            s.last_rx_ns = now
            b.frags_rx += 1
            self.c_mp_frags_rx += 1
            mp_rx_receive(&b.rx, <int>s.mp_link, seq, fl, info + mh, ilen - mh, now)
            if b.rx.n_out:
                self.mp_deliver_out(b, s, now)
            return
        if proto == _PPP_IPV4 or proto == _PPP_IPV6 or proto == PPP_BRIDGED:
            # RFC 1990 §3: a packet may also travel on a member link without an MP header
            s.rx_packets += 1
            s.rx_bytes += ilen
            s.last_rx_ns = now
            b.plain_rx += 1
            self.bundle_deliver(b, s, proto, frame, flen, hl, end, now)
            return
        punts_before = self.n_punts
        self.punt(DP_PUNT_PPP, si, <uint16_t>(s.key >> 16), <uint16_t>s.key, frame, flen, NULL)
        if self.n_punts == punts_before:
            s.drops[<int>DP_PUNT_FULL] += 1
            return
        s.rx_punted += 1
        self.c_rx_ppp += 1

    cdef void mp_deliver_out(self, dp_bundle* b, dp_session* ls, uint64_t now) noexcept nogil:
        """Join and deliver the packets the reassembler completed; ``ls``: the link they completed on (NULL:
        a link-down or timeout: the first remaining link, for punts)."""
        cdef dp_mp_rx* r = &b.rx
        cdef uint32_t i, j
        cdef uint32_t start = 0
        cdef size_t n
        cdef uint8_t* p = self.mp_join
        cdef uint16_t proto
        cdef size_t hl
        if ls == NULL and b.n_links:
            ls = &self.sess[b.link_slot[b.tx_order[0]]]
        for i in range(r.n_out):
            n = 0
            c_assert(r.out_len[i] + 64 <= <size_t>self.mp_join_size)
            for j in range(start, r.out_end[i]):
                memcpy(p + n, r.pieces[j].data, r.pieces[j].len)
                n += r.pieces[j].len
            start = r.out_end[i]
            self.c_mp_reassembled += 1
            # the protocol field: PFC (RFC 1661 §6.6) as the peer chose
            if p[0] & 1:
                proto = p[0]
                hl = 1
            elif n < 2:
                _bdrop(self.drops, b, DP_PPP_SHORT)
                continue
            elif not (p[1] & 1):
                _bdrop(self.drops, b, DP_PPP_BAD_PROTO)
                continue
            else:
                proto = _be16(p)
                hl = 2
            self.bundle_deliver(b, ls, proto, p, n, hl, p + self.mp_join_size, now)
        r.n_out = 0
        r.n_pieces = 0

    cdef void bundle_deliver(self, dp_bundle* b, dp_session* ls, uint16_t proto, uint8_t* frame, size_t flen,
                             size_t hl, uint8_t* end, uint64_t now) noexcept nogil:
        """A bundle packet (``frame``: [FF 03] protocol information; the information at ``frame + hl``): IP or
        bridged frames to the bundle's fd, anything else punted with the ids of link ``ls``."""
        cdef uint8_t* info = frame + hl
        cdef bint bridged = (b.flags & DPB_BRIDGED) != 0
        cdef size_t wlen
        cdef dp_reason rr
        cdef Py_ssize_t punts_before
        if proto == _PPP_IPV4 or proto == _PPP_IPV6 or (proto == PPP_BRIDGED and bridged):
            rr = _fd_write(b.fd, proto, info, flen - hl, <size_t>(end - info), bridged,
                           b.mss if b.flags & DPB_MSS else 0, &b.mss_clamped, &self.c_mss_clamped, &wlen)
            if rr != DP_OK:
                _bdrop(self.drops, b, rr)
                return
            b.rx_packets += 1
            b.rx_bytes += wlen
            b.last_rx_ns = now
            self.c_rx_ip += 1
            if proto == PPP_BRIDGED:
                self.c_bcp_rx += 1
            return
        # NCPs (IPCP, IPv6CP, BCP, CCP) inside MP, bridged frames on a bundle that is not bridged, anything else
        if ls == NULL:
            _bdrop(self.drops, b, DP_MP_NO_LINK)
            return
        punts_before = self.n_punts
        self.punt(DP_PUNT_PPP, ls.sock_index, <uint16_t>(ls.key >> 16), <uint16_t>ls.key, frame, flen, NULL)
        if self.n_punts == punts_before:
            b.drops[<int>DP_PUNT_FULL] += 1
            return
        ls.rx_punted += 1
        self.c_rx_ppp += 1

    # -- MP transmit: bundle fd -> fragments -> sendmmsg per socket ----------------------------------------------

    cdef Py_ssize_t rx_bundle_burst(self, dp_bundle* b) noexcept nogil:
        cdef dp_slots* v = &self.tx
        cdef size_t hr = v.headroom
        cdef size_t room = v.slot_size - v.headroom
        cdef Py_ssize_t total = 0
        cdef Py_ssize_t n
        cdef ssize_t r
        cdef int burst
        cdef bint drained = False
        cdef uint8_t* buf
        cdef uint16_t proto
        cdef size_t pstart, plen
        cdef dp_reason rr
        cdef bint bridged = (b.flags & DPB_BRIDGED) != 0
        cdef uint16_t mss = b.mss if b.flags & DPB_MSS else 0
        self.mp_nmsg = 0
        self.mp_ncopy = 0
        for burst in range(self.max_bursts):
            n = 0
            while n < self.batch:
                buf = v.arena + n * v.slot_size
                r = _fd_read(b.fd, buf + hr, room, &self.err)
                if r == 0:
                    drained = True
                    break
                total += 1
                rr = _fd_payload(buf, hr, <size_t>r, room, bridged, mss, &b.mss_clamped, &self.c_mss_clamped,
                                 &proto, &pstart)
                if rr != DP_OK:
                    _bdrop(self.drops, b, rr)
                    continue
                plen = hr + <size_t>r - pstart
                if plen > b.tx_mrru:
                    _bdrop(self.drops, b, DP_TOO_BIG)
                    continue
                if b.n_links == 0:
                    _bdrop(self.drops, b, DP_MP_NO_LINK)
                    continue
                # the bundle-level PPP packet: protocol field + information, in place
                _put16(buf + pstart - 2, proto)
                if self.mp_queue(b, buf, pstart - 2, plen + 2, <uint32_t>r):
                    n += 1
            self.mp_flush()
            if drained:
                break
        self.c_tun_reads += <uint64_t>total
        return total

    cdef bint mp_queue(self, dp_bundle* b, uint8_t* buf, size_t off, size_t plen, uint32_t pkt_bytes) noexcept nogil:
        """Queue the messages of the bundle packet ``buf[off:off+plen]`` (protocol + information; headroom in
        front). The first (or only) message stays in place, the other fragments are copied into mpf."""
        cdef bint short_seq = (b.flags & DPB_TX_SHORT) != 0
        cdef size_t hlen = MP_SHORT_HDR if short_seq else MP_LONG_HDR
        cdef uint32_t mask = (1U << 12) - 1 if short_seq else (1U << 24) - 1
        cdef size_t hr = self.headroom
        cdef size_t base, extra, size, doff
        cdef size_t pos = 0
        cdef uint32_t count, i, li
        cdef dp_session* ls
        cdef uint8_t* p
        cdef Py_ssize_t o
        cdef bint ok = True
        if b.n_links == 1 and plen <= b.link_mtu[b.tx_order[0]]:
            # one link and the packet fits: a plain PPP frame (RFC 1990 §3 allows it), no sequence number
            if self.mp_nmsg + 1 > self.mp_cap:
                self.mp_flush()
            ls = &self.sess[b.link_slot[b.tx_order[0]]]
            ls.tx.ppp_proto = _be16(buf + off)
            o = l2tp_build_data(buf, off + 2, plen - 2, &ls.tx)
            if o < 0:
                _bdrop(self.drops, b, DP_TOO_BIG)
                return False
            if ls.tx.flags & TX_SEQ:
                ls.tx.ns += 1
            self.mp_add_msg(ls, b, buf + o, off + plen - <size_t>o, <uint32_t>(plen - 2), pkt_bytes, True, False)
            b.plain_tx += 1
            return True
        count = mp_plan(plen, b.min_mtu - hlen, &base, &extra)
        c_assert(<Py_ssize_t>count <= self.mp_cap)
        if self.mp_nmsg + count > self.mp_cap or self.mp_ncopy + count - 1 > self.mp_cap:
            self.mp_flush()
        for i in range(count):
            size = base + (1 if i < extra else 0)
            li = b.tx_order[(b.tx_seq + i) % b.n_links]
            ls = &self.sess[b.link_slot[li]]
            if i == 0:
                p = buf
                doff = off                      # the first fragment stays in place
            else:
                p = self.mpf.arena + <size_t>self.mp_ncopy * self.mpf.slot_size
                self.mp_ncopy += 1
                doff = hr
                memcpy(p + doff, buf + off + pos, size)
            mp_put_header(p + doff - hlen, (b.tx_seq + i) & mask,
                          (MP_FLAG_B if i == 0 else 0) | (MP_FLAG_E if i == count - 1 else 0), short_seq)
            ls.tx.ppp_proto = PPP_MP
            o = l2tp_build_data(p, doff - hlen, hlen + size, &ls.tx)
            pos += size
            if o < 0:                           # cannot happen (headroom checked by add_bundle)
                ok = False
                continue
            if ls.tx.flags & TX_SEQ:
                ls.tx.ns += 1
            self.mp_add_msg(ls, b, p + o, doff + size - <size_t>o, <uint32_t>(hlen + size), pkt_bytes,
                            i == count - 1, True)
        b.tx_seq = (b.tx_seq + count) & mask
        if not ok:
            _bdrop(self.drops, b, DP_TOO_BIG)
        return True

    cdef void mp_add_msg(self, dp_session* ls, dp_bundle* b, uint8_t* p, size_t n, uint32_t info_len,
                         uint32_t pkt_bytes, bint last, bint frag) noexcept nogil:
        cdef Py_ssize_t i = self.mp_nmsg
        cdef dp_mp_msg* m = &self.mpm[i]
        self.mpf.iov[i].iov_base = p
        self.mpf.iov[i].iov_len = n
        self.mpf.msgs[i].msg_hdr.msg_name = &ls.peer
        self.mpf.msgs[i].msg_hdr.msg_namelen = ls.peer_len
        m.slot = <uint32_t>(ls - self.sess)
        m.bundle = <int32_t>(b - self.bundles)
        m.info_len = info_len
        m.pkt_bytes = pkt_bytes
        m.last = last
        m.frag = frag
        self.mp_nmsg += 1

    cdef void mp_flush(self) noexcept nogil:
        """Send the queued bundle messages: one sendmmsg per run of consecutive messages on the same socket
        (each message to its own link's peer), errors counted on the link as in ``send_burst``."""
        cdef Py_ssize_t i = 0
        cdef Py_ssize_t j, k, sent
        cdef int fd, r, e
        cdef uint64_t now = _now_ns()
        cdef dp_mp_msg* m
        cdef dp_session* s
        cdef dp_bundle* b
        while i < self.mp_nmsg:
            fd = self.socks[self.sess[self.mpm[i].slot].sock_index].fd
            j = i + 1
            while j < self.mp_nmsg and self.socks[self.sess[self.mpm[j].slot].sock_index].fd == fd:
                j += 1
            sent = i
            while sent < j:
                r = sendmmsg(fd, self.mpf.msgs + sent, <unsigned int>(j - sent), MSG_DONTWAIT)
                if r < 0:
                    e = errno
                    if e == EINTR:
                        continue
                    if e == EAGAIN or e == ENOBUFS:
                        for k in range(sent, j):
                            _sdrop(self.drops, &self.sess[self.mpm[k].slot], DP_UDP_EAGAIN, 1)
                        break
                    _sdrop(self.drops, &self.sess[self.mpm[sent].slot], DP_UDP_SEND, 1)
                    sent += 1
                    continue
                if r == 0:
                    for k in range(sent, j):
                        _sdrop(self.drops, &self.sess[self.mpm[k].slot], DP_UDP_SEND, 1)
                    break
                for k in range(sent, sent + r):
                    m = &self.mpm[k]
                    s = &self.sess[m.slot]
                    s.tx_packets += 1
                    s.tx_bytes += m.info_len
                    s.last_tx_ns = now
                    b = &self.bundles[m.bundle]
                    if m.frag:
                        b.frags_tx += 1
                        self.c_mp_frags_tx += 1
                    if m.last:
                        b.tx_packets += 1
                        b.tx_bytes += m.pkt_bytes
                        b.last_tx_ns = now
                        self.c_tx_ip += 1
                        if b.flags & DPB_BRIDGED:
                            self.c_bcp_tx += 1
                sent += r
            i = j
        self.mp_nmsg = 0
        self.mp_ncopy = 0

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
            "bridged": bool(s.flags & DPS_BRIDGED),
            "bundle": s.bundle if s.flags & DPS_MP else None,
        }

    def counters(self) -> dict:
        """Global counters: traffic (``rx_datagrams``, ``rx_ip``, ``rx_control``, ``rx_ppp``,
        ``tun_reads``, ``tx_ip``, ``tx_ppp``, ``mss_clamped``, ``mppe_tx``, ``mppe_rx``, ``ccp_resets``,
        ``mp_fragments_tx``, ``mp_fragments_rx``, ``mp_reassembled``, ``bcp_tx``, ``bcp_rx``) and drops by
        reason name (every reason). ``rx_ip``/``tx_ip``/``tun_reads`` count what sessions and bundles write to
        and read from their TUN/TAP fds (bridged frames included, also counted in ``bcp_rx``/``bcp_tx``)."""
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
            "mp_fragments_tx": self.c_mp_frags_tx,
            "mp_fragments_rx": self.c_mp_frags_rx,
            "mp_reassembled": self.c_mp_reassembled,
            "bcp_tx": self.c_bcp_tx,
            "bcp_rx": self.c_bcp_rx,
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


# --- MP and BCP for tests and benchmarks ------------------------------------------------------------------------

MP_COUNTER_NAMES = (
    "received", "delivered", "lost_fragments", "discarded_fragments", "dropped_incomplete", "duplicates",
    "late", "overflow", "timeouts", "too_long", "null_fragments",
)   # the order of the MPC_* indices: fastl2tp.wire.mp.COUNTER_NAMES (checked by the tests)


cdef inline uint64_t _s_to_ns(double t) except? 0:
    if not t >= 0:
        raise ValueError(f"time {t} must be >= 0")
    return <uint64_t>llround(t * 1e9)


cdef list _mp_out_list(const dp_mp_rx* r):
    cdef uint32_t i, j
    cdef uint32_t start = 0
    cdef bytearray buf
    cdef Py_ssize_t pos
    out = []
    for i in range(r.n_out):
        buf = bytearray(r.out_len[i])
        pos = 0
        for j in range(start, r.out_end[i]):
            if r.pieces[j].len:
                memcpy(<uint8_t*>PyByteArray_AS_STRING(buf) + pos, r.pieces[j].data, r.pieces[j].len)
            pos += r.pieces[j].len
        start = r.out_end[i]
        out.append(bytes(buf))
    return out


cdef dict _mp_counters(const dp_mp_rx* r):
    return {name: r.counters[i] for i, name in enumerate(MP_COUNTER_NAMES)}


cdef class MpReassembler:
    """The data plane's C reassembler (``dp_mp_rx``) behind the API of ``fastl2tp.wire.mp.Reassembler``, for
    the differential tests: ``MpReassembler(short_seq, max_buffered, timeout_s, *, first_seq=0, mrru=None,
    frag_cap=65536)``. Link ids are 0..7 (a bundle's link indices); ``receive`` takes the information field
    of a 0x003D frame (MP header + fragment data) and parses the header with the C parser. ``mrru`` None:
    no length limit, and a fragment longer than ``frag_cap`` is refused (ValueError)."""

    cdef dp_mp_rx r
    cdef readonly bint short_seq

    def __cinit__(self, bint short_seq, int max_buffered, double timeout_s, *, int first_seq=0, mrru=None,
                  int frag_cap=65536):
        cdef uint32_t space = (1U << 12) if short_seq else (1U << 24)
        if not 1 <= max_buffered <= 65536:
            raise ValueError("max_buffered must be 1..65536")
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        if not 0 <= first_seq < <int>space:
            raise ValueError(f"first_seq {first_seq} out of range")
        if mrru is not None and not 1 <= mrru <= 65535:
            raise ValueError("mrru must be 1..65535")
        if not 0 <= frag_cap <= 1 << 20:
            raise ValueError("frag_cap must be 0..1 MiB")
        self.short_seq = short_seq
        mp_rx_init(&self.r, short_seq, <uint32_t>max_buffered, _s_to_ns(timeout_s), <uint32_t>first_seq,
                   0 if mrru is None else <uint32_t>mrru + 2,
                   <uint32_t>frag_cap if mrru is None else <uint32_t>mrru + 2)

    def __dealloc__(self):
        mp_rx_free(&self.r)

    cdef int _link(self, int link) except -1:
        if not 0 <= link < MP_MAX_LINKS:
            raise ValueError(f"link {link}: 0..{MP_MAX_LINKS - 1}")
        return link

    def receive(self, int link, data, double now) -> list:
        cdef const uint8_t[::1] v = data
        cdef size_t n = v.shape[0]
        cdef size_t hlen = MP_SHORT_HDR if self.short_seq else MP_LONG_HDR
        cdef uint8_t flags
        cdef uint32_t seq
        self._link(link)
        if n < hlen:
            raise ValueError(DropReason.MP_SHORT.name)
        if self.r.max_packet == 0 and n - hlen > self.r.frag_cap:
            raise ValueError(f"fragment of {n - hlen} octets, more than frag_cap {self.r.frag_cap}")
        seq = mp_parse_header(&v[0], self.short_seq, &flags)
        mp_rx_receive(&self.r, link, seq, flags, &v[0] + hlen, n - hlen, _s_to_ns(now))
        return _mp_out_list(&self.r)

    def link_up(self, int link) -> None:
        mp_rx_link_up(&self.r, self._link(link))

    def link_down(self, int link, double now) -> list:
        mp_rx_link_down(&self.r, self._link(link), _s_to_ns(now))
        return _mp_out_list(&self.r)

    def handle_timer(self, double now) -> list:
        mp_rx_timer(&self.r, _s_to_ns(now))
        return _mp_out_list(&self.r)

    def get_timer(self):
        """The stall deadline in seconds, or None (as the oracle's ``get_timer``)."""
        if not self.r.blocked:
            return None
        return (self.r.blocked_since + self.r.timeout_ns) / 1e9

    @property
    def head(self) -> int:
        return self.r.head

    @property
    def buffered(self) -> list:
        """The buffered sequence numbers, sorted."""
        return sorted(self.r.frags[i].seq for i in range(self.r.n))

    @property
    def links(self) -> dict:
        """Member link -> most recent sequence number or None (the oracle's ``links``)."""
        return {l: (self.r.links[l].last if self.r.links[l].has_last else None)
                for l in range(MP_MAX_LINKS) if self.r.links[l].member}

    @property
    def counters(self) -> dict:
        return _mp_counters(&self.r)


def mp_fragment(packet, int next_seq, int mtu, int n_links, bint short_seq) -> list:
    """``wire.mp.fragment(packet, next_seq, mtu, n_links, short_seq)`` with the data plane's C cut and header
    writer: ``[(link_index, frame), ...]``, frames ``FF 03 00 3D`` + MP header + fragment data."""
    cdef const uint8_t[::1] v = packet
    cdef size_t n = v.shape[0]
    cdef size_t hlen = MP_SHORT_HDR if short_seq else MP_LONG_HDR
    cdef uint32_t mask = (1U << 12) - 1 if short_seq else (1U << 24) - 1
    cdef size_t base, extra, size
    cdef size_t pos = 0
    cdef uint32_t count, i
    cdef bytearray frame
    cdef uint8_t* f
    if not 0 <= next_seq <= <int>mask:
        raise ValueError(f"MP sequence number {next_seq} out of range")
    if n_links < 1:
        raise ValueError("a bundle has at least one link")
    if mtu <= <int>hlen:
        raise ValueError(f"MTU {mtu} leaves no room after the {hlen}-byte MP header")
    count = mp_plan(n, <size_t>mtu - hlen, &base, &extra)
    out = []
    for i in range(count):
        size = base + (1 if i < extra else 0)
        frame = bytearray(4 + hlen + size)
        f = <uint8_t*>PyByteArray_AS_STRING(frame)
        f[0] = 0xFF
        f[1] = 0x03
        _put16(f + 2, PPP_MP)
        mp_put_header(f + 4, (<uint32_t>next_seq + i) & mask,
                      (MP_FLAG_B if i == 0 else 0) | (MP_FLAG_E if i == count - 1 else 0), short_seq)
        if size:
            memcpy(f + 4 + hlen, &v[0] + pos, size)
        pos += size
        out.append(((next_seq + i) % n_links, bytes(frame)))
    return out


def decode_bridged(data) -> bytes:
    """Decode the information field of a 0x0031 frame with the data plane's C decoder: the Ethernet frame
    (a tinygram zero-padded to 60 octets), or ``ValueError`` naming the drop reason (``BCP_BAD``,
    ``BCP_UNSUPPORTED``)."""
    cdef const uint8_t[::1] v = data
    cdef size_t n = v.shape[0]
    cdef bytearray buf = bytearray(n + BCP_HDR + ETH_MIN)
    cdef uint8_t* p = <uint8_t*>PyByteArray_AS_STRING(buf)
    cdef size_t off, length
    cdef dp_reason r
    if n:
        memcpy(p, &v[0], n)
    r = bcp_decode(p, n, <size_t>len(buf), &off, &length)
    if r != DP_OK:
        raise ValueError(DropReason(r).name)
    return bytes(buf[off:off + length])


def _bench_mp(int n_packets, int packet_len=1500, int mtu=1450, bint short_seq=False, bint baseline=False) -> tuple:
    """Benchmark only (bench/test_bench_mp.py): ``n_packets`` packets of ``packet_len`` octets cut into MP
    fragments for ``mtu`` (MP header written, data copied), each fragment parsed and fed to a reassembler
    (two links, alternating) and every completed packet joined: all in C, GIL released. ``baseline``: the
    same octets only copied into the fragment buffers and back (no header, no reassembler). Returns
    ``(fragments, packets completed)``; the completed packets are checked against the originals."""
    cdef dp_mp_rx r
    cdef size_t hlen = MP_SHORT_HDR if short_seq else MP_LONG_HDR
    cdef uint32_t mask = (1U << 12) - 1 if short_seq else (1U << 24) - 1
    cdef size_t base, extra, size, pos, fsz
    cdef uint32_t count, j, k, seq = 0, pseq
    cdef uint32_t start
    cdef Py_ssize_t i
    cdef uint64_t frags = 0, done = 0, bad = 0
    cdef uint8_t flags
    cdef uint8_t* pkt
    cdef uint8_t* fb
    cdef uint8_t* out
    cdef uint8_t* f
    cdef size_t sizes[256]
    if not 1 <= packet_len <= 65535 or mtu <= <int>hlen + 1 or (packet_len + mtu - hlen - 1) // (mtu - hlen) > 256:
        raise ValueError("packet_len 1..65535 and at most 256 fragments")
    fsz = <size_t>mtu + 8
    pkt = <uint8_t*>PyMem_RawCalloc(packet_len, 1)
    fb = <uint8_t*>PyMem_RawCalloc(256, fsz)
    out = <uint8_t*>PyMem_RawCalloc(packet_len + 8, 1)
    if pkt == NULL or fb == NULL or out == NULL:
        PyMem_RawFree(pkt)
        PyMem_RawFree(fb)
        PyMem_RawFree(out)
        raise MemoryError()
    for i in range(packet_len):
        pkt[i] = <uint8_t>(i * 7 + 3)
    try:
        mp_rx_init(&r, short_seq, 64, 1000000000ULL, 0, <uint32_t>packet_len, <uint32_t>mtu)
    except BaseException:
        PyMem_RawFree(pkt)
        PyMem_RawFree(fb)
        PyMem_RawFree(out)
        raise
    with nogil:
        for i in range(n_packets):
            pkt[0] = <uint8_t>i
            count = mp_plan(<size_t>packet_len, <size_t>mtu - hlen, &base, &extra)
            pos = 0
            pseq = seq
            for j in range(count):
                size = base + (1 if j < extra else 0)
                sizes[j] = size
                f = fb + j * fsz
                if baseline:
                    memcpy(f, pkt + pos, size)
                else:
                    mp_put_header(f, seq, (MP_FLAG_B if j == 0 else 0) | (MP_FLAG_E if j == count - 1 else 0),
                                  short_seq)
                    memcpy(f + hlen, pkt + pos, size)
                pos += size
                seq = (seq + 1) & mask
            pos = 0
            for j in range(count):
                f = fb + j * fsz
                if baseline:
                    memcpy(out + pos, f, sizes[j])
                    pos += sizes[j]
                    if j == count - 1:
                        done += 1
                        if memcmp(out, pkt, pos) != 0:
                            bad += 1
                else:
                    pseq = mp_parse_header(f, short_seq, &flags)
                    mp_rx_receive(&r, <int>(j & 1), pseq, flags, f + hlen, sizes[j], 0)
                    start = 0
                    for k in range(r.n_out):
                        pos = 0
                        while start < r.out_end[k]:
                            memcpy(out + pos, r.pieces[start].data, r.pieces[start].len)
                            pos += r.pieces[start].len
                            start += 1
                        done += 1
                        if pos != <size_t>packet_len or memcmp(out, pkt, pos) != 0:
                            bad += 1
            frags += count
    mp_rx_free(&r)
    PyMem_RawFree(pkt)
    PyMem_RawFree(fb)
    PyMem_RawFree(out)
    if bad:
        raise AssertionError(f"{bad} packets came out wrong")
    return frags, done
