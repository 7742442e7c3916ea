# cython: language_level=3
"""C-level API of the data plane (fastl2tp._dp): per-packet parsers and builders, and the batch.

Conventions: every per-packet function is ``noexcept nogil``, works on a pointer and a length, never
reads outside ``[p, p + n)``, allocates nothing, and reports failure as a ``dp_reason`` (each reason
has a counter). ``fastl2tp.wire`` holds the pure-Python twin of each parser (the test oracle).
"""

from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from posix.uio cimport iovec

from fastl2tp._rc4 cimport mppe_keys
from fastl2tp.includes.linux cimport mmsghdr, sockaddr_storage, socklen_t

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
    # The DataPlane's own reasons (after the parse): per session where the session is known.
    DP_NO_SESSION                 # data message for a (tunnel id, session id) we do not have
    DP_PEER_MISMATCH              # data message for a session from another address/port than its peer
    DP_BAD_IP                     # IP version nibble does not match the PPP protocol (rx) / not 4 or 6 (TUN)
    DP_TOO_BIG                    # datagram or TUN packet larger than a slot (truncated), or header overflow
    DP_TUN_WRITE                  # write() to the session's TUN fd failed
    DP_UDP_EAGAIN                 # sendmmsg/sendmsg would block (socket buffer full)
    DP_UDP_SEND                   # sendmmsg/sendmsg failed for a message (any other errno)
    DP_UDP_RECV                   # recvmmsg reported a pending socket error (ICMP unreachable, ...)
    DP_PUNT_FULL                  # punt queue full: Python did not drain take_punted() in time
    DP_NO_TUN                     # IP packet for a session whose TUN fd is not set yet (-1)
    # MPPE (RFC 3078), on sessions with set_mppe()
    DP_MPPE_SHORT                 # 0x00FD frame without a whole MPPE header and one encrypted octet
    DP_MPPE_BAD_HEADER            # D (encrypted) bit clear, C (MPPC compressed) bit set, or stateless without A
    DP_MPPE_BAD_COUNT             # coherency count impossible: repeated, late, or further ahead than we follow
    DP_MPPE_DECRYPT               # decrypted inner protocol not plausible (wrong key / desynchronised / garbage)
    DP_MPPE_DISCARD               # stateful: discarded while waiting for the flushed packet after a loss
    DP_MPPE_UNENCRYPTED           # plain IP (0x0021/0x0057; 0x0031 when bridged) on a session that requires MPPE
    # BCP bridged frames (RFC 3518 §4), on bridged sessions and bundles
    DP_ETH_SHORT                  # frame read from a TAP fd shorter than an Ethernet header (14 octets)
    DP_BCP_UNSUPPORTED            # bridged frame with the I (LAN-ID) flag or a MAC type other than IEEE 802.3
    DP_BCP_BAD                    # bridged frame malformed: pads/LAN FCS past its end, LAN frame under 14 octets
    DP_BRIDGED_IP                 # IPv4/IPv6 on a bridged session or bundle (its fd carries Ethernet frames)
    # Multilink PPP (RFC 1990), on member sessions and bundles
    DP_MP_SHORT                   # MP fragment (0x003D) shorter than the MP header of the bundle's rx format
    DP_MP_NO_LINK                 # bundle packet (or a reassembled non-IP packet) with no member link left
    DP_NREASONS                   # number of reasons; keep last

cdef enum:
    DP_REASON_SLOTS = 48          # counter array size (>= DP_NREASONS; checked at import)

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

# --- BCP bridged frames (RFC 3518 §4; twin of fastl2tp.wire.bcp.decode_bridged_frame) ---------------------

cdef enum:
    PPP_BRIDGED = 0x0031          # BCP bridged LAN traffic
    BCP_HDR = 2                   # flags, MAC type (IEEE 802.3 has no pad octet): what we send is 00 01 + frame
    BCP_FLAG_F = 0x80             # LAN FCS present
    BCP_FLAG_I = 0x40             # LAN-ID present (RFC 1638; never negotiated: refused)
    BCP_FLAG_Z = 0x20             # 802.3 tinygram: restore the zero pad to ETH_MIN
    BCP_PADS = 0x0F               # pad octets at the end
    BCP_MAC_8023 = 1
    BCP_FCS_LEN = 4
    ETH_HDR = 14                  # destination, source, type/length
    ETH_MIN = 60                  # IEEE 802.3 minimum frame without FCS

# Decode the information field ``p[:n]`` of a 0x0031 frame in place: DP_OK and the Ethernet frame at
# ``p[off[0] : off[0] + out_len[0]]``, or DP_BCP_UNSUPPORTED / DP_BCP_BAD. ``room`` is how many octets
# from ``p`` on may be written (a Z tinygram is zero-padded to 60 octets in place; never past ``room``).
cdef dp_reason bcp_decode(uint8_t* p, size_t n, size_t room, size_t* off, size_t* out_len) noexcept nogil

# --- Multilink PPP (RFC 1990; twin of fastl2tp.wire.mp) ---------------------------------------------------

cdef enum:
    PPP_MP = 0x003D
    MP_FLAG_B = 0x80              # first fragment of a packet
    MP_FLAG_E = 0x40              # last fragment
    MP_LONG_HDR = 4               # B, E, 6 reserved bits, 24-bit sequence number
    MP_SHORT_HDR = 2              # B, E, 2 reserved bits, 12-bit sequence number
    MP_MAX_LINKS = 8              # member links per bundle
    # the reassembly counters, in the order of fastl2tp.wire.mp.COUNTER_NAMES
    MPC_RECEIVED = 0
    MPC_DELIVERED
    MPC_LOST
    MPC_DISCARDED
    MPC_DROPPED_INCOMPLETE
    MPC_DUPLICATES
    MPC_LATE
    MPC_OVERFLOW
    MPC_TIMEOUTS
    MPC_TOO_LONG
    MPC_NULL
    MP_NCOUNTERS

ctypedef struct mp_frag:          # one buffered fragment (dense array entry)
    uint32_t seq
    uint32_t len
    uint8_t* data                 # its octets; NULL when longer than frag_cap (its packet is too long anyway)
    uint8_t flags                 # MP_FLAG_B | MP_FLAG_E

ctypedef struct mp_piece:         # one fragment of a reassembled packet (valid until the next call)
    const uint8_t* data
    uint32_t len

ctypedef struct mp_link_rx:       # per member link: the most recently received sequence number (§4.2)
    uint8_t member
    uint8_t has_last              # 0: nothing received at or after head ("None" in the oracle)
    uint32_t last

ctypedef struct dp_mp_rx:
    # The reassembler of one bundle: the C mirror of wire.mp.Reassembler (same state, rules and
    # counters). Fixed memory from mp_rx_init: cap = max_buffered + 1 fragment buffers of frag_cap
    # octets in one arena, a dense fragment array and an open-addressing hash on the sequence number.
    uint32_t mask                 # sequence space - 1
    uint32_t half                 # half the sequence space
    uint32_t head                 # the next sequence number to deliver
    uint32_t max_buffered
    uint32_t cap                  # entries: max_buffered + 1 (one insert before the overflow check)
    uint32_t n                    # fragments buffered
    uint32_t frag_cap             # octets kept per fragment
    uint32_t max_packet           # longest packet delivered (mrru + 2); 0 = no limit
    uint32_t hmask
    uint32_t hshift
    uint8_t blocked               # blocked_since is set (something is buffered)
    uint64_t blocked_since        # ns
    uint64_t timeout_ns
    mp_frag* frags                # [cap], dense
    uint32_t* hidx                # [hmask + 1]: index into frags + 1; 0 = empty
    uint8_t** free_bufs           # [cap] stack of free fragment buffers
    uint32_t n_free
    uint8_t* arena                # cap * frag_cap
    mp_piece* pieces              # [cap] the packets the last call completed, fragment by fragment
    uint32_t* out_end             # [cap] packet i is pieces[out_end[i-1] (0 for i = 0) : out_end[i]]
    uint32_t* out_len             # [cap] its length
    uint32_t n_pieces
    uint32_t n_out
    mp_link_rx links[MP_MAX_LINKS]
    uint64_t counters[MP_NCOUNTERS]

cdef int mp_rx_init(dp_mp_rx* r, bint short_seq, uint32_t max_buffered, uint64_t timeout_ns, uint32_t first_seq,
                    uint32_t max_packet, uint32_t frag_cap) except -1
cdef void mp_rx_free(dp_mp_rx* r) noexcept
# Each of these first forgets the previous call's output, then leaves the packets it completed in
# r.pieces / r.out_end / r.out_len / r.n_out (in sequence order).
cdef void mp_rx_receive(dp_mp_rx* r, int link, uint32_t seq, uint8_t flags, const uint8_t* data, size_t n,
                        uint64_t now) noexcept nogil
cdef void mp_rx_link_up(dp_mp_rx* r, int link) noexcept nogil
cdef void mp_rx_link_down(dp_mp_rx* r, int link, uint64_t now) noexcept nogil
cdef bint mp_rx_timer(dp_mp_rx* r, uint64_t now) noexcept nogil     # True: a gap was given up

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


# --- the per-packet engine ----------------------------------------------------------------------------------
#
# Pipeline (each stage a C call inside one ``with nogil`` burst; the table only changes with the GIL held):
#
#   rx_udp(sock): recvmmsg -> l2tp_parse -> T bit? punt control (copy + source address)
#                 -> hash lookup (our tunnel id, session id) -> peer address check -> [Ns tracking]
#                 -> ppp_parse -> DPS_MP (member link): 0x003D MP header -> dp_mp_rx reassembly -> each completed
#                    packet, and plain 0x0021/0x0057/0x0031 frames: bundle_deliver (IP / bridged to the bundle's
#                    fd, anything else punted with the link's ids)
#                 -> DPS_MPPE: 0x00FD mppe_decrypt in place (inner protocol; ccp-reset punt on stateful loss),
#                    plain IP (and bridged frames when bridged) dropped if required
#                 -> 0x0021/0x0057: version check, MSS clamp, write(tun_fd)   (bridged session: BRIDGED_IP)
#                 -> 0x0031 on a bridged session: bcp_decode in place, write(tun_fd)  | other protocol: punt PPP
#   rx_tun(slot): read(tun_fd) into slot + headroom -> version nibble -> MSS clamp  (bridged: 00 01 in front)
#                 -> DPS_MPPE: inner protocol + mppe_encrypt in place, MPPE header in the headroom
#                 -> l2tp_build_data in place -> one sendmmsg
#   rx_bundle(id): read(bundle fd) -> as rx_tun (IP or bridged) -> protocol field in front -> mrru check
#                 -> one link and it fits: plain frame | else mp_plan: first fragment in place, the others copied
#                    into mpf; MP header + l2tp_build_data per fragment with its link's template
#                 -> sendmmsg per run of messages on one socket (each to its link's peer)

cdef enum:
    DP_MAX_SOCKETS = 64           # UDP sockets one DataPlane reads and sends on
    # dp_session.flags
    DPS_USED = 0x0001             # slot holds a session
    DPS_TX_SEQ = 0x0002           # send Ns/Nr (the peer asked for sequencing, RFC 2661 §5.4)
    DPS_TX_LENGTH = 0x0004        # send the Length field
    DPS_MSS = 0x0008              # clamp TCP MSS on SYNs both ways (dp_session.mss)
    DPS_RX_SEQ = 0x0010           # the peer sends Ns (seen on receive): rx_ns_next is valid
    DPS_BRIDGED = 0x0020          # BCP: tun_fd is a TAP fd of Ethernet frames, carried as 0x0031 (00 01 + frame)
    DPS_MPPE = 0x0100             # MPPE on: dp_mppe state in dp_session.ext (set_mppe / clear_mppe)
    DPS_MP = 0x0200               # member link of an MP bundle: dp_session.bundle, dp_session.mp_link
    # dp_bundle.flags
    DPB_USED = 0x0001
    DPB_BRIDGED = 0x0002          # the bundle's fd is a TAP fd (Ethernet frames as 0x0031)
    DPB_RX_SHORT = 0x0004         # the peer sends 12-bit sequence numbers (we asked for SSNHF)
    DPB_TX_SHORT = 0x0008         # we send 12-bit sequence numbers (the peer asked)
    DPB_MSS = 0x0010              # clamp TCP MSS on SYNs both ways (dp_bundle.mss)
    # dp_punt.kind
    DP_PUNT_CONTROL = 1
    DP_PUNT_PPP = 2
    DP_PUNT_CCP_RESET = 3         # stateful MPPE lost sync: Python sends a CCP Reset-Request (no bytes)
    # MPPE header (RFC 3078 §3): flag bits of the first octet, 12-bit coherency count
    MPPE_BIT_A = 0x80             # flushed: the sender re-keyed its RC4 state before this packet
    MPPE_BIT_B = 0x40             # MPPC only (history reset)
    MPPE_BIT_C = 0x20             # MPPC only (compressed): never negotiated by us
    MPPE_BIT_D = 0x10             # encrypted
    MPPE_CCOUNT_MASK = 0x0FFF
    MPPE_HDR = 2                  # the MPPE header
    MPPE_OVERHEAD = 4             # MPPE header + the (encrypted) inner protocol field: the MTU loss
    MPPE_MAX_JUMP = 2048          # stateless: counts further ahead than this are late packets, not losses
    MPPE_RESET_EVERY = 64         # stateful: while discarding, punt another reset every N packets

ctypedef struct dp_mppe:          # per-session MPPE state (dp_session.ext), both directions
    mppe_keys tx                  # our send key: session key + running RC4
    mppe_keys rx                  # the peer's send key (our receive key)
    uint16_t tx_ccount            # coherency count of the next packet we send
    uint16_t rx_ccount            # count of the last packet accepted (0xFFF before the first)
    uint8_t stateless             # RFC 3078 H bit negotiated: key change before every packet
    uint8_t required              # plain IP on the session is dropped (DP_MPPE_UNENCRYPTED)
    uint8_t tx_flush              # a CCP Reset-Request arrived: flush (re-key, A bit) on the next packet
    uint8_t rx_discard            # stateful: a loss was seen, waiting for a packet with the A bit
    uint32_t rx_discarded         # packets discarded in the current discard period
    uint64_t tx_packets           # packets encrypted / decrypted and accepted
    uint64_t rx_packets
    uint64_t rx_resyncs           # resynchronisations: stateless count jumps, stateful flushed packets after a loss
    uint64_t rx_lost              # coherency counts skipped by those resynchronisations
    uint64_t reset_requests       # ccp-reset punts (stateful losses)
    uint64_t resets_received      # mppe_reset_received() calls (the peer's Reset-Requests)
    uint64_t rx_flush_rekey       # stateful flushed packets decrypted after a key change (pppd's reading)
    uint64_t rx_flush_reinit      # ... after re-initialising RC4 with the same key (RFC / BSD reading)

ctypedef struct dp_slots:         # ``count`` slots of ``slot_size`` bytes; packet i at arena + i*slot_size + headroom
    uint8_t* arena
    iovec* iov
    mmsghdr* msgs                 # msgs[i] -> iov[i] (and addrs[i] when addrs is not NULL)
    sockaddr_storage* addrs       # source addresses (receive side) or NULL (send side: the session's peer)
    uint32_t* lens                # packet length per slot
    size_t count
    size_t slot_size
    size_t headroom

ctypedef struct dp_socket:
    int fd                        # -1: free
    int family                    # AF_INET or AF_INET6 (getsockname at add_socket)

ctypedef struct dp_session:
    # -- read on every packet (first cache lines) --
    uint32_t key                  # (our tunnel id << 16) | our session id
    uint32_t flags                # DPS_*
    int tun_fd                    # not owned: Python opens and closes it; -1 = no interface yet
    int sock_index                # index into DataPlane.socks for sending
    uint16_t mss                  # IPv4 clamp value when DPS_MSS (IPv6: mss - 20)
    uint16_t rx_ns_next           # next expected Ns when DPS_RX_SEQ
    socklen_t peer_len
    l2tp_tx tx                    # header template: peer ids, TX_* flags, next Ns
    uint64_t rx_packets           # IP packets written to the TUN fd, and their bytes (IP length)
    uint64_t rx_bytes
    uint64_t tx_packets           # IP packets read from the TUN fd and sent, and their bytes (IP length)
    uint64_t tx_bytes
    uint64_t last_rx_ns           # CLOCK_MONOTONIC ns of the burst that last delivered/sent an IP packet
    uint64_t last_tx_ns           # (time.monotonic_ns() reads the same clock)
    sockaddr_storage peer         # the peer's address in the socket's family (v4-mapped on AF_INET6)
    # -- colder --
    uint64_t rx_punted            # PPP frames punted to Python (LCP, NCPs, auth, CCP, ...)
    uint64_t tx_ppp               # PPP frames sent by send_ppp
    uint64_t rx_seq_out_of_order  # Ns older than expected (delivered anyway: no reorder buffer)
    uint64_t mss_clamped
    void* ext                     # per-session MPPE state (dp_mppe) with DPS_MPPE
    int32_t bundle                # with DPS_MP: the bundle's id (index into DataPlane.bundles)
    uint32_t mp_link              # with DPS_MP: the link's index in the bundle (its reassembler link id)
    uint64_t drops[DP_REASON_SLOTS]

ctypedef struct dp_bundle:        # one MP bundle (RFC 1990): its interface, member links, reassembler
    uint32_t flags                # DPB_*
    int fd                        # the bundle's TUN (or TAP) fd, not owned; -1 = no interface yet
    uint16_t mss
    uint32_t mrru                 # ours: longest reassembled packet delivered (its information field; + 2)
    uint32_t tx_mrru              # the peer's: longest information field we send (longer: TOO_BIG)
    uint32_t tx_seq               # sequence number of our next fragment
    uint32_t n_links
    uint32_t link_used[MP_MAX_LINKS]
    uint32_t link_slot[MP_MAX_LINKS]  # session slot of link i
    uint32_t link_mtu[MP_MAX_LINKS]   # MP header + fragment data <= mtu (the peer's MRU on that link)
    uint32_t tx_order[MP_MAX_LINKS]   # the used link indices in the order they joined: round-robin order
    uint32_t min_mtu
    uint64_t rx_packets           # packets written to fd (payload length: IP packet / Ethernet frame)
    uint64_t rx_bytes
    uint64_t tx_packets           # packets read from fd whose last fragment (or plain frame) was sent
    uint64_t tx_bytes
    uint64_t last_rx_ns
    uint64_t last_tx_ns
    uint64_t frags_rx             # MP fragments received / sent on the member links
    uint64_t frags_tx
    uint64_t plain_rx             # plain (no MP header) IP/bridged frames received on a member link
    uint64_t plain_tx             # packets sent without an MP header (one link, packet fits its mtu)
    uint64_t mss_clamped
    uint64_t drops[DP_REASON_SLOTS]
    dp_mp_rx rx

ctypedef struct dp_mp_msg:        # one message of a bundle's send vector (DataPlane.mpf)
    uint32_t slot                 # the member session that carries it
    uint32_t info_len             # its PPP information field (counted by the session)
    uint32_t pkt_bytes            # the bundle packet's payload length, on its last message
    int32_t bundle
    uint8_t last                  # the packet's last fragment (or a plain frame)
    uint8_t frag                  # an MP fragment (not a plain frame)

ctypedef struct dp_hent:          # one open-addressing hash entry
    uint32_t key
    uint32_t slot1                # session slot + 1; 0 = empty

ctypedef struct dp_punt:          # one punted item; its bytes are in DataPlane.punt_arena
    uint8_t kind                  # DP_PUNT_*
    int sock_index
    uint16_t tunnel_id            # ours (PPP punts)
    uint16_t session_id
    uint32_t offset
    uint32_t length
    sockaddr_storage addr         # source address (control punts)

cdef class DataPlane:
    cdef readonly Py_ssize_t batch
    cdef readonly Py_ssize_t headroom
    cdef readonly Py_ssize_t max_sessions
    cdef readonly Py_ssize_t slot_size
    cdef public int max_bursts                # recvmmsg / TUN bursts per rx_udp / rx_tun call
    cdef dp_slots rx                          # recvmmsg slots (no headroom)
    cdef dp_slots tx                          # TUN read slots (with headroom) + sendmmsg vectors
    cdef dp_socket socks[DP_MAX_SOCKETS]
    cdef dp_session* sess                     # max_sessions slots
    cdef uint32_t* free_slots                 # stack of freed slots
    cdef Py_ssize_t n_free
    cdef Py_ssize_t high_water                # slots [0, high_water) have been used at least once
    cdef Py_ssize_t n_sessions
    cdef dp_hent* table
    cdef uint32_t table_mask
    cdef uint32_t table_shift
    cdef dp_punt* punts
    cdef Py_ssize_t punt_cap
    cdef Py_ssize_t n_punts
    cdef uint8_t* punt_arena
    cdef Py_ssize_t punt_arena_size
    cdef Py_ssize_t punt_used
    cdef uint8_t* scratch                     # send_ppp buffer (headroom + slot)
    cdef bint busy                            # inside a nogil burst: table changes refused
    cdef int err                              # errno that ends a burst with an OSError
    cdef uint64_t drops[DP_REASON_SLOTS]
    cdef uint64_t c_rx_datagrams, c_rx_ip, c_rx_control, c_rx_ppp, c_tun_reads
    cdef uint64_t c_tx_ip, c_tx_ppp, c_mss_clamped
    cdef uint64_t c_mppe_tx, c_mppe_rx, c_ccp_resets
    cdef uint64_t c_mp_frags_tx, c_mp_frags_rx, c_mp_reassembled, c_bcp_tx, c_bcp_rx
    # MP bundles
    cdef readonly Py_ssize_t max_bundles
    cdef dp_bundle* bundles                   # max_bundles entries (reassembler memory from add_bundle)
    cdef Py_ssize_t bundle_high               # entries [0, bundle_high) have been used
    cdef Py_ssize_t n_bundles
    cdef uint8_t* mp_join                     # a reassembled packet is joined here (largest mrru + 2 + 128)
    cdef Py_ssize_t mp_join_size
    cdef dp_slots mpf                         # bundle sends: fragment copies + the sendmmsg vector
    cdef dp_mp_msg* mpm                       # per message of mpf
    cdef Py_ssize_t mp_cap                    # messages (and fragment copies) per flush
    cdef Py_ssize_t mp_nmsg
    cdef Py_ssize_t mp_ncopy

    cdef int _not_busy(self) except -1
    cdef dp_socket* _sock(self, int sock_index) except NULL
    cdef void _table_insert(self, uint32_t key, uint32_t slot)
    cdef void _table_delete(self, uint32_t key)
    cdef dp_session* _session(self, int tunnel_id, int session_id) except NULL
    cdef int _set_flags(self, dp_session* s, tx_seq, tx_length, mss) except -1
    cdef int _check_headroom(self, bint bridged, bint mppe) except -1
    cdef void _free_ext(self, dp_session* s) noexcept
    # the slot of our (tunnel id, session id), or -1
    cdef int lookup_slot(self, uint16_t tunnel_id, uint16_t session_id) noexcept nogil
    cdef Py_ssize_t rx_udp_burst(self, int si) noexcept nogil
    cdef void rx_one(self, int si, uint8_t* p, size_t n, const sockaddr_storage* src, int mflags,
                     uint64_t now) noexcept nogil
    cdef Py_ssize_t rx_tun_burst(self, dp_session* s) noexcept nogil
    cdef void send_burst(self, dp_session* s, Py_ssize_t n, uint64_t now) noexcept nogil
    cdef void punt(self, int kind, int si, uint16_t tid, uint16_t sid, const uint8_t* p, size_t n,
                   const sockaddr_storage* src) noexcept nogil
    # MP / BCP
    cdef dp_bundle* _bundle(self, int bundle_id) except NULL
    cdef int _check_link_mtu(self, dp_bundle* b, uint32_t mtu) except -1
    cdef void _unlink(self, dp_bundle* b, uint32_t li, bint process) noexcept
    cdef void rx_member(self, dp_session* s, int si, uint8_t* frame, size_t flen, uint16_t proto, size_t hl,
                        uint8_t* end, uint64_t now) noexcept nogil
    cdef void mp_deliver_out(self, dp_bundle* b, dp_session* ls, uint64_t now) noexcept nogil
    cdef void bundle_deliver(self, dp_bundle* b, dp_session* ls, uint16_t proto, uint8_t* frame, size_t flen,
                             size_t hl, uint8_t* end, uint64_t now) noexcept nogil
    cdef Py_ssize_t rx_bundle_burst(self, dp_bundle* b) noexcept nogil
    cdef bint mp_queue(self, dp_bundle* b, uint8_t* buf, size_t off, size_t plen, uint32_t pkt_bytes) noexcept nogil
    cdef void mp_add_msg(self, dp_session* ls, dp_bundle* b, uint8_t* p, size_t n, uint32_t info_len,
                         uint32_t pkt_bytes, bint last, bint frag) noexcept nogil
    cdef void mp_flush(self) noexcept nogil
