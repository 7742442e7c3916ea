# cython: language_level=3
"""C-level API of fastl2tp._rc4: RC4 (the MPPE cipher) and the MPPE key change.

Everything here is ``noexcept nogil`` and allocation-free, so the data plane (``_dp``) can run it inside
its batch loops. Another Cython module uses it with ``from fastl2tp cimport _rc4`` (the calls then go
through the module's exported function table: one indirect call per packet, not per byte).
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t

# --- RC4 ---------------------------------------------------------------------------------------------

ctypedef struct rc4_state:
    # The permutation, one value 0..255 per 32-bit cell: whole-word loads and stores avoid the
    # partial-register and store-forwarding stalls of byte cells (measured here: ~1.4x the throughput
    # of uint8_t cells, the same reason OpenSSL's C RC4 uses RC4_INT = unsigned int).
    uint32_t S[256]
    uint32_t i
    uint32_t j

cdef void rc4_init(rc4_state* st, const uint8_t* key, size_t keylen) noexcept nogil
cdef void rc4_crypt(rc4_state* st, const uint8_t* inp, uint8_t* out, size_t n) noexcept nogil

# --- SHA-1 (FIPS 180-4), only what MPPE needs ----------------------------------------------------------

ctypedef struct sha1_ctx:
    uint32_t h[5]
    uint64_t nbytes       # total bytes hashed so far
    uint8_t buf[64]       # partial block
    uint32_t buflen

cdef void sha1_init(sha1_ctx* c) noexcept nogil
cdef void sha1_update(sha1_ctx* c, const uint8_t* data, size_t n) noexcept nogil
cdef void sha1_final(sha1_ctx* c, uint8_t* digest) noexcept nogil     # digest: 20 bytes

# --- MPPE keys (RFC 3078 §7.3, RFC 3079 §2-3) ------------------------------------------------------------

cdef enum:
    MPPE_MAX_KEY_LEN = 16

ctypedef enum mppe_bits:
    MPPE_40 = 40      # 8-byte key, first 3 bytes forced to D1 26 9E
    MPPE_56 = 56      # 8-byte key, first byte forced to D1
    MPPE_128 = 128    # 16-byte key

ctypedef struct mppe_keys:
    uint8_t start_key[MPPE_MAX_KEY_LEN]     # the master send (or receive) key of RFC 3079
    uint8_t session_key[MPPE_MAX_KEY_LEN]   # the current session key
    uint32_t key_len                        # 8 or 16
    uint32_t bits                           # 40, 56 or 128
    rc4_state rc4                           # keyed with session_key

# GetNewKeyFromSHA: SHA1(start_key || SHApad1 || session_key || SHApad2) truncated to key_len bytes
cdef void mppe_get_new_key_from_sha(const uint8_t* start_key, const uint8_t* session_key,
                                    size_t key_len, uint8_t* interim) noexcept nogil
# Sets up keys for ``bits`` (40/56/128) from a start key of at least key_len bytes: the initial session
# key is GetNewKeyFromSHA(start, start), reduced, and the RC4 state is keyed with it. Returns -1 for
# a bad ``bits`` (the struct is then untouched), 0 otherwise.
cdef int mppe_keys_init(mppe_keys* k, const uint8_t* start_key, uint32_t bits) noexcept nogil
# The session key of the key change below, without re-keying the RC4 state (k.rc4 is then stale until
# mppe_rekey_rc4 / mppe_change_key): a receiver catching up on n lost packets pays one RC4 key schedule
# less per skipped key.
cdef void mppe_next_session_key(mppe_keys* k) noexcept nogil
# The key change of RFC 3078 §7.3: interim = GetNewKeyFromSHA(start, session); session = RC4(interim,
# interim); reduce for 40/56 bits; then re-key the RC4 state with the new session key.
cdef void mppe_change_key(mppe_keys* k) noexcept nogil
# Re-key the RC4 state with the current session key (stateful mode: flushed bit / after a reset).
cdef void mppe_rekey_rc4(mppe_keys* k) noexcept nogil
