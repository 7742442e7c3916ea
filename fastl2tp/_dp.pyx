# cython: language_level=3
"""Data plane (Cython): per-packet L2TP/PPP work, a batch at a time, without Python objects.

This first part holds the per-packet building blocks and the batch skeleton:

- ``l2tp_parse``: the L2TP header parser (twin of ``fastl2tp.wire.l2tp.decode_header``),
- ``ppp_parse``: the PPP header of a data message (ACFC/PFC),
- ``l2tp_build_data``: L2TP data header + PPP header written in front of a payload (headroom),
- ``tcp_clamp_mss``: MSS clamping on TCP SYNs, IPv4 and IPv6, incremental checksum (RFC 1624),
- ``PacketBatch``: preallocated slots + iovec/mmsghdr arrays; ``parse()`` runs ``with nogil``.

The C-level declarations are in ``_dp.pxd``. The ``def`` functions at the end are the Python-visible
wrappers used by tests (the oracle comparisons) and benchmarks; nothing per packet goes through them.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from posix.uio cimport iovec

from fastl2tp.includes.linux cimport (
    MSG_DONTWAIT, mmsghdr, recvmmsg, sockaddr_storage, socklen_t,
)

cdef extern from "assert.h" nogil:
    void c_assert "assert"(bint)   # compiled out unless FASTL2TP_DEBUG=1 (NDEBUG)

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
