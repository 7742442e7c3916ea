# cython: language_level=3
"""C-level API of the data plane (fastl2tp._dp): per-packet parsers and builders, and the batch.

Conventions: every per-packet function is ``noexcept nogil``, works on a pointer and a length, never
reads outside ``[p, p + n)``, allocates nothing, and reports failure as a ``dp_reason`` (each reason
has a counter). ``fastl2tp.wire`` holds the pure-Python twin of each parser (the test oracle).
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from posix.uio cimport iovec

from fastl2tp.includes.linux cimport mmsghdr, sockaddr_storage

# --- L2TP header (RFC 2661 §3.1) ----------------------------------------------------------------------

cdef enum:
    L2TP_FLAG_T = 0x8000          # control message
    L2TP_FLAG_L = 0x4000          # Length present
    L2TP_FLAG_S = 0x0800          # Ns/Nr present
    L2TP_FLAG_O = 0x0200          # Offset Size present
    L2TP_FLAG_P = 0x0100          # priority
    L2TP_VERSION_MASK = 0x000F
    L2TP_VERSION = 2
    L2TP_MAX_DATA_HDR = 12        # flags, length, ids, Ns/Nr (we never send an offset)

# Why a packet was not handed on. The parse reasons map one-to-one onto the DecodeErrors of
# fastl2tp.wire.l2tp.decode_header, in the order that function checks them.
ctypedef enum dp_reason:
    DP_OK = 0
    DP_SHORT                      # shorter than the 6-byte minimum header
    DP_BAD_VERSION                # Ver is not 2 (UnsupportedVersion)
    DP_CTRL_NO_L                  # control message without L
    DP_TRUNC_IDS                  # ends inside tunnel/session id
    DP_TRUNC_NS                   # ends inside Ns/Nr
    DP_CTRL_NO_S                  # control message without S
    DP_CTRL_WITH_O                # control message with O
    DP_TRUNC_OFFSET               # ends inside Offset Size
    DP_CTRL_WITH_P                # control message with P
    DP_BAD_LENGTH                 # Length larger than the datagram
    DP_OFFSET_PAST_END            # header (offset padding) runs past Length / the datagram
    DP_PPP_SHORT                  # data message whose PPP header is truncated
    DP_PPP_BAD_PROTO              # PPP protocol field not valid (even low byte / odd high byte)
    DP_NREASONS                   # number of reasons; keep last

cdef enum:
    DP_REASON_SLOTS = 32          # counter array size (>= DP_NREASONS; checked at import)

ctypedef struct l2tp_hdr:
    uint16_t flags                # the first 16-bit word as sent (T, L, S, O, P bits, Ver)
    uint16_t length               # valid with L
    uint16_t tunnel_id
    uint16_t session_id
    uint16_t ns                   # valid with S
    uint16_t nr
    uint16_t offset_size          # valid with O
    uint16_t reason               # dp_reason
    uint32_t payload_start        # offset of the payload (after offset padding)
    uint32_t payload_end          # Length if L, else the datagram length
    uint32_t err_pos              # where the parse failed (for the error message)

# Parse the header of one datagram into ``h``; returns h.reason (DP_OK on success).
cdef dp_reason l2tp_parse(const uint8_t* p, size_t n, l2tp_hdr* h) noexcept nogil

# --- PPP header in a data message (RFC 1661 §2, ACFC/PFC of RFC 1661 §6.5-6.6) --------------------------

ctypedef struct ppp_hdr:
    uint16_t proto
    uint16_t hdr_len              # bytes before the PPP information field: 1..4
    uint16_t reason               # DP_OK, DP_PPP_SHORT or DP_PPP_BAD_PROTO

cdef dp_reason ppp_parse(const uint8_t* p, size_t n, ppp_hdr* h) noexcept nogil

# --- building a data message in place -------------------------------------------------------------------

cdef enum:
    TX_LENGTH = 0x01              # send the Length field (L bit)
    TX_SEQ = 0x02                 # send Ns/Nr (S bit)
    TX_ACFC = 0x04                # omit FF 03
    TX_PFC = 0x08                 # one-byte protocol when it is < 0x100
    TX_NO_PPP = 0x10              # the payload already is a whole PPP frame: write no PPP header

ctypedef struct l2tp_tx:
    uint16_t tunnel_id            # the peer's ids
    uint16_t session_id
    uint16_t ns
    uint16_t nr
    uint16_t ppp_proto
    uint16_t flags                # TX_*

# Write L2TP data header + PPP header immediately before ``buf[payload_off:payload_off+payload_len]``.
# Returns the offset in ``buf`` where the message starts, or -1 when the headroom (payload_off) is too
# small or the message too long for the Length field.
cdef Py_ssize_t l2tp_build_data(uint8_t* buf, size_t payload_off, size_t payload_len,
                                const l2tp_tx* tx) noexcept nogil

# --- TCP MSS clamping (IPv4 and IPv6, RFC 1624 incremental checksum) -------------------------------------

# If ``pkt`` is a TCP SYN (or SYN-ACK) whose MSS option exceeds ``mss``, rewrite it and fix the TCP
# checksum; returns 1 then, else 0 (not TCP, not SYN, no MSS, small enough, fragment, malformed).
cdef int tcp_clamp_mss(uint8_t* pkt, size_t n, uint16_t mss) noexcept nogil

# --- the batch ----------------------------------------------------------------------------------------------

cdef class PacketBatch:
    """N packet slots in one arena; slot i holds a datagram at ``arena + i*slot_size + headroom``.

    The iovec/mmsghdr arrays already point at the slots, so recvmmsg fills the batch directly and
    sendmmsg can send it after headers are written into the headroom."""
    cdef readonly Py_ssize_t capacity
    cdef readonly Py_ssize_t slot_size
    cdef readonly Py_ssize_t headroom
    cdef readonly Py_ssize_t count            # slots holding a packet
    cdef uint8_t* arena
    cdef uint32_t* lengths                    # datagram length per slot
    cdef l2tp_hdr* hdrs                       # parse results per slot
    cdef ppp_hdr* ppp
    cdef iovec* iov
    cdef mmsghdr* msgs
    cdef sockaddr_storage* addrs
    cdef uint64_t drops[DP_REASON_SLOTS]       # per reason; drops[DP_OK] is unused
    cdef readonly uint64_t data_packets       # parsed data messages (L2TP + PPP headers valid)
    cdef readonly uint64_t control_packets    # control messages (to be punted to Python)

    cdef Py_ssize_t parse_all(self) noexcept nogil
