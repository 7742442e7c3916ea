# cython: language_level=3
"""RC4 and MPPE keying (RFC 3078 §7.3, RFC 3079) for the data plane.

The C-level functions (declared in ``_rc4.pxd``) are ``noexcept nogil`` and touch no Python object; the
data plane cimports them. The Python classes and functions at the end are thin wrappers for tests and
benchmarks, and for the control plane's one-off key computations.

SHA-1 is our own (FIPS 180-4): MPPE hashes 96 or 112 bytes per key change, so a small scalar SHA-1
costs little, and the package needs no OpenSSL headers to build.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

cdef extern from "assert.h" nogil:
    void c_assert "assert"(bint)   # compiled out unless FASTL2TP_DEBUG=1 (NDEBUG)


# --- RC4 ---------------------------------------------------------------------------------------------

cdef void rc4_init(rc4_state* st, const uint8_t* key, size_t keylen) noexcept nogil:
    """The key schedule (KSA). ``keylen`` must be 1..256 bytes."""
    c_assert(keylen >= 1 and keylen <= 256)
    cdef uint32_t* S = st.S
    cdef unsigned int i
    cdef unsigned int j = 0
    cdef size_t k = 0
    cdef uint32_t t
    for i in range(256):
        S[i] = i
    for i in range(256):
        t = S[i]
        j = (j + t + key[k]) & 0xFF
        S[i] = S[j]
        S[j] = t
        k += 1
        if k == keylen:
            k = 0
    st.i = 0
    st.j = 0


cdef void rc4_crypt(rc4_state* st, const uint8_t* inp, uint8_t* out, size_t n) noexcept nogil:
    """XOR ``n`` bytes of keystream over ``inp`` into ``out`` (``out == inp`` is allowed).

    The keystream is generated 8 bytes at a time into a word and XORed as one 64-bit load/store
    (memcpy, so any alignment works); i and j live in registers for the whole call.
    """
    cdef uint32_t* S = st.S
    cdef unsigned int i = st.i
    cdef unsigned int j = st.j
    cdef uint32_t a, b
    cdef uint8_t ks[8]
    cdef uint64_t w, kw
    cdef size_t off = 0
    cdef int k
    while off + 8 <= n:
        for k in range(8):
            i = (i + 1) & 0xFF
            a = S[i]
            j = (j + a) & 0xFF
            b = S[j]
            S[i] = b
            S[j] = a
            ks[k] = <uint8_t>S[(a + b) & 0xFF]
        memcpy(&w, inp + off, 8)
        memcpy(&kw, ks, 8)
        w ^= kw
        memcpy(out + off, &w, 8)
        off += 8
    while off < n:
        i = (i + 1) & 0xFF
        a = S[i]
        j = (j + a) & 0xFF
        b = S[j]
        S[i] = b
        S[j] = a
        out[off] = inp[off] ^ <uint8_t>S[(a + b) & 0xFF]
        off += 1
    st.i = i
    st.j = j


# --- SHA-1 -------------------------------------------------------------------------------------------

cdef inline uint32_t _rol(uint32_t x, int n) noexcept nogil:
    return (x << n) | (x >> (32 - n))


cdef void _sha1_block(uint32_t* h, const uint8_t* p) noexcept nogil:
    cdef uint32_t w[80]
    cdef uint32_t a, b, c, d, e, t
    cdef int r
    for r in range(16):
        w[r] = ((<uint32_t>p[4 * r] << 24) | (<uint32_t>p[4 * r + 1] << 16)
                | (<uint32_t>p[4 * r + 2] << 8) | <uint32_t>p[4 * r + 3])
    for r in range(16, 80):
        w[r] = _rol(w[r - 3] ^ w[r - 8] ^ w[r - 14] ^ w[r - 16], 1)
    a = h[0]
    b = h[1]
    c = h[2]
    d = h[3]
    e = h[4]
    for r in range(0, 20):
        t = _rol(a, 5) + ((b & c) | (~b & d)) + e + 0x5A827999u + w[r]
        e = d; d = c; c = _rol(b, 30); b = a; a = t
    for r in range(20, 40):
        t = _rol(a, 5) + (b ^ c ^ d) + e + 0x6ED9EBA1u + w[r]
        e = d; d = c; c = _rol(b, 30); b = a; a = t
    for r in range(40, 60):
        t = _rol(a, 5) + ((b & c) | (b & d) | (c & d)) + e + 0x8F1BBCDCu + w[r]
        e = d; d = c; c = _rol(b, 30); b = a; a = t
    for r in range(60, 80):
        t = _rol(a, 5) + (b ^ c ^ d) + e + 0xCA62C1D6u + w[r]
        e = d; d = c; c = _rol(b, 30); b = a; a = t
    h[0] += a
    h[1] += b
    h[2] += c
    h[3] += d
    h[4] += e


cdef void sha1_init(sha1_ctx* c) noexcept nogil:
    c.h[0] = 0x67452301u
    c.h[1] = 0xEFCDAB89u
    c.h[2] = 0x98BADCFEu
    c.h[3] = 0x10325476u
    c.h[4] = 0xC3D2E1F0u
    c.nbytes = 0
    c.buflen = 0


cdef void sha1_update(sha1_ctx* c, const uint8_t* data, size_t n) noexcept nogil:
    cdef size_t take
    c.nbytes += n
    if c.buflen:
        take = 64 - c.buflen
        if take > n:
            take = n
        memcpy(c.buf + c.buflen, data, take)
        c.buflen += <uint32_t>take
        data += take
        n -= take
        if c.buflen < 64:
            return
        _sha1_block(c.h, c.buf)
        c.buflen = 0
    while n >= 64:
        _sha1_block(c.h, data)
        data += 64
        n -= 64
    if n:
        memcpy(c.buf, data, n)
        c.buflen = <uint32_t>n


cdef void sha1_final(sha1_ctx* c, uint8_t* digest) noexcept nogil:
    cdef uint64_t bits = c.nbytes * 8
    cdef int r
    c.buf[c.buflen] = 0x80
    c.buflen += 1
    if c.buflen > 56:
        memset(c.buf + c.buflen, 0, 64 - c.buflen)
        _sha1_block(c.h, c.buf)
        c.buflen = 0
    memset(c.buf + c.buflen, 0, 56 - c.buflen)
    for r in range(8):
        c.buf[56 + r] = <uint8_t>(bits >> (56 - 8 * r))
    _sha1_block(c.h, c.buf)
    for r in range(5):
        digest[4 * r] = <uint8_t>(c.h[r] >> 24)
        digest[4 * r + 1] = <uint8_t>(c.h[r] >> 16)
        digest[4 * r + 2] = <uint8_t>(c.h[r] >> 8)
        digest[4 * r + 3] = <uint8_t>c.h[r]


# --- MPPE --------------------------------------------------------------------------------------------

# RFC 3079 §7.3 (GetNewKeyFromSHA): SHApad1 is 40 zero bytes, SHApad2 40 bytes of 0xF2
cdef uint8_t SHA_PAD1[40]
cdef uint8_t SHA_PAD2[40]
memset(SHA_PAD1, 0x00, 40)
memset(SHA_PAD2, 0xF2, 40)


cdef void mppe_get_new_key_from_sha(const uint8_t* start_key, const uint8_t* session_key,
                                    size_t key_len, uint8_t* interim) noexcept nogil:
    cdef sha1_ctx c
    cdef uint8_t digest[20]
    c_assert(key_len <= 20)
    sha1_init(&c)
    sha1_update(&c, start_key, key_len)
    sha1_update(&c, SHA_PAD1, 40)
    sha1_update(&c, session_key, key_len)
    sha1_update(&c, SHA_PAD2, 40)
    sha1_final(&c, digest)
    memcpy(interim, digest, key_len)


cdef inline void _mppe_reduce(mppe_keys* k) noexcept nogil:
    # RFC 3078 §7.3 / RFC 3079 §2.x: the 40-bit key is salted with D1 26 9E, the 56-bit one with D1
    if k.bits == 40:
        k.session_key[0] = 0xD1
        k.session_key[1] = 0x26
        k.session_key[2] = 0x9E
    elif k.bits == 56:
        k.session_key[0] = 0xD1


cdef int mppe_keys_init(mppe_keys* k, const uint8_t* start_key, uint32_t bits) noexcept nogil:
    cdef uint32_t key_len
    if bits == 128:
        key_len = 16
    elif bits == 40 or bits == 56:
        key_len = 8
    else:
        return -1
    memset(k, 0, sizeof(mppe_keys))
    k.bits = bits
    k.key_len = key_len
    memcpy(k.start_key, start_key, key_len)
    mppe_get_new_key_from_sha(k.start_key, k.start_key, key_len, k.session_key)
    _mppe_reduce(k)
    rc4_init(&k.rc4, k.session_key, key_len)
    return 0


cdef void mppe_next_session_key(mppe_keys* k) noexcept nogil:
    cdef uint8_t interim[MPPE_MAX_KEY_LEN]
    cdef rc4_state tmp
    mppe_get_new_key_from_sha(k.start_key, k.session_key, k.key_len, interim)
    rc4_init(&tmp, interim, k.key_len)
    rc4_crypt(&tmp, interim, k.session_key, k.key_len)
    _mppe_reduce(k)


cdef void mppe_change_key(mppe_keys* k) noexcept nogil:
    mppe_next_session_key(k)
    rc4_init(&k.rc4, k.session_key, k.key_len)


cdef void mppe_rekey_rc4(mppe_keys* k) noexcept nogil:
    rc4_init(&k.rc4, k.session_key, k.key_len)


# --- Python wrappers (tests, benchmarks, control plane) ------------------------------------------------

cdef bytes _new_bytes(Py_ssize_t n):
    return PyBytes_FromStringAndSize(NULL, n)


cdef class RC4:
    """RC4 with a running keystream: ``RC4(key).crypt(a) + ...crypt(b) == one crypt(a + b)``."""

    cdef rc4_state st

    def __cinit__(self, const uint8_t[::1] key not None):
        if key.shape[0] < 1 or key.shape[0] > 256:
            raise ValueError("RC4 keys are 1 to 256 bytes")
        rc4_init(&self.st, &key[0], key.shape[0])

    def crypt(self, data) -> bytes:
        """Encrypt (or decrypt) ``data`` (any bytes-like object); returns new bytes."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            out = PyBytes_FromStringAndSize(NULL, view.len)
            _crypt_nogil(&self.st, <const uint8_t*>view.buf, <uint8_t*>PyBytes_AS_STRING(out), view.len)
        finally:
            PyBuffer_Release(&view)
        return out

    def crypt_into(self, buf) -> None:
        """Encrypt (or decrypt) a writable buffer (bytearray, memoryview, ...) in place."""
        cdef Py_buffer view
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        try:
            _crypt_nogil(&self.st, <const uint8_t*>view.buf, <uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)


cdef inline void _crypt_nogil(rc4_state* st, const uint8_t* inp, uint8_t* out, Py_ssize_t n) noexcept:
    # Releasing the GIL costs ~100 ns: worth it only for bulk data
    if n >= 4096:
        with nogil:
            rc4_crypt(st, inp, out, n)
    elif n > 0:
        rc4_crypt(st, inp, out, n)


def sha1(const uint8_t[::1] data not None) -> bytes:
    """SHA-1 of ``data`` with the C implementation used for MPPE (exposed for its test vectors)."""
    cdef sha1_ctx c
    cdef bytes out = _new_bytes(20)
    sha1_init(&c)
    if data.shape[0]:
        sha1_update(&c, &data[0], data.shape[0])
    sha1_final(&c, <uint8_t*>PyBytes_AS_STRING(out))
    return out


cdef uint32_t _key_len_for(int bits) except 0:
    if bits == 128:
        return 16
    if bits == 40 or bits == 56:
        return 8
    raise ValueError(f"MPPE key strength must be 40, 56 or 128 bits, not {bits}")


def get_new_key_from_sha(const uint8_t[::1] start_key not None, const uint8_t[::1] session_key not None,
                         Py_ssize_t key_len) -> bytes:
    """RFC 3079 §7.3 GetNewKeyFromSHA: SHA1(start || SHApad1 || session || SHApad2)[:key_len]."""
    if key_len < 1 or key_len > MPPE_MAX_KEY_LEN:
        raise ValueError("key_len must be 1..16")
    if start_key.shape[0] < key_len or session_key.shape[0] < key_len:
        raise ValueError("keys shorter than key_len")
    cdef bytes out = _new_bytes(key_len)
    mppe_get_new_key_from_sha(&start_key[0], &session_key[0], key_len, <uint8_t*>PyBytes_AS_STRING(out))
    return out


def initial_session_key(const uint8_t[::1] start_key not None, int bits) -> bytes:
    """The first session key from a start (master send/receive) key: RFC 3079 §2-3."""
    cdef MppeKeyState k = MppeKeyState(start_key, bits)
    return k.session_key


def change_key(const uint8_t[::1] start_key not None, const uint8_t[::1] session_key not None,
               int bits) -> bytes:
    """One MPPE key change (RFC 3078 §7.3): the session key that follows ``session_key``."""
    cdef uint32_t key_len = _key_len_for(bits)
    if start_key.shape[0] < key_len or session_key.shape[0] < key_len:
        raise ValueError(f"{bits}-bit MPPE needs {key_len}-byte keys")
    cdef mppe_keys k
    k.bits = bits
    k.key_len = key_len
    memcpy(k.start_key, &start_key[0], key_len)
    memcpy(k.session_key, &session_key[0], key_len)
    mppe_change_key(&k)
    return PyBytes_FromStringAndSize(<char*>k.session_key, key_len)


cdef class MppeKeyState:
    """One direction of MPPE: start key, current session key and the RC4 state keyed with it.

    ``start_key`` is the 16-byte master send or receive key (only its first 8 bytes are used for
    40/56 bits). Stateless mode is ``change_key()`` then ``crypt`` for every packet; stateful mode
    changes the key every 256 packets and calls ``rekey()`` when a packet has the flushed bit.
    """

    cdef mppe_keys k

    def __cinit__(self, const uint8_t[::1] start_key not None, int bits):
        cdef uint32_t key_len = _key_len_for(bits)
        if start_key.shape[0] < key_len:
            raise ValueError(f"{bits}-bit MPPE needs a start key of at least {key_len} bytes")
        mppe_keys_init(&self.k, &start_key[0], bits)

    @property
    def bits(self) -> int:
        return self.k.bits

    @property
    def session_key(self) -> bytes:
        return PyBytes_FromStringAndSize(<char*>self.k.session_key, self.k.key_len)

    def change_key(self) -> None:
        """RFC 3078 §7.3 key change; the RC4 state is re-keyed with the new session key."""
        mppe_change_key(&self.k)

    def skip(self, Py_ssize_t n) -> None:
        """``n`` key changes at once (the receiver catching up on lost packets): the same state as
        ``n`` calls of ``change_key()``, with the RC4 state keyed only once, at the end."""
        cdef Py_ssize_t r
        if n < 0:
            raise ValueError("n must be >= 0")
        if n == 0:
            return
        with nogil:
            for r in range(n - 1):
                mppe_next_session_key(&self.k)
            mppe_change_key(&self.k)

    def rekey(self) -> None:
        """Restart RC4 from the current session key (flushed bit / CCP Reset-Ack)."""
        mppe_rekey_rc4(&self.k)

    def crypt(self, data) -> bytes:
        """RC4 over ``data`` with the current state (the session key's running keystream)."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            out = PyBytes_FromStringAndSize(NULL, view.len)
            _crypt_nogil(&self.k.rc4, <const uint8_t*>view.buf, <uint8_t*>PyBytes_AS_STRING(out), view.len)
        finally:
            PyBuffer_Release(&view)
        return out

    def stateless_crypt_into(self, buf, Py_ssize_t count=1) -> None:
        """Key change + RC4 over the writable ``buf`` in place, ``count`` times (each time as a new
        packet). ``count > 1`` lets a benchmark time the per-packet C cost without a Python call each."""
        cdef Py_buffer view
        cdef Py_ssize_t r
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        try:
            with nogil:
                for r in range(count):
                    mppe_change_key(&self.k)
                    rc4_crypt(&self.k.rc4, <const uint8_t*>view.buf, <uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
