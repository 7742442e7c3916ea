# cython: language_level=3
"""Linux socket batching and TUN declarations used by the data plane (``_dp``).

Only declarations (``cdef extern``): nothing here is compiled on its own. ``posix.uio`` already has
``struct iovec``; the rest of the sendmmsg/recvmmsg family is declared here.
"""

from posix.time cimport timespec
from posix.uio cimport iovec

cdef extern from "<sys/socket.h>" nogil:
    ctypedef long ssize_t
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t

    struct sockaddr:
        sa_family_t sa_family

    struct sockaddr_storage:
        sa_family_t ss_family

    struct msghdr:
        void* msg_name
        socklen_t msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags

    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len

    int recvmmsg(int fd, mmsghdr* msgvec, unsigned int vlen, int flags, timespec* timeout)
    int sendmmsg(int fd, mmsghdr* msgvec, unsigned int vlen, int flags)
    ssize_t recvmsg(int fd, msghdr* msg, int flags)
    ssize_t sendmsg(int fd, const msghdr* msg, int flags)
    int getsockname(int fd, sockaddr* addr, socklen_t* addrlen)

    enum:
        AF_INET
        AF_INET6
        MSG_DONTWAIT
        MSG_TRUNC
        MSG_WAITFORONE

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        unsigned int s_addr

    struct sockaddr_in:
        sa_family_t sin_family
        unsigned short sin_port
        in_addr sin_addr

    struct in6_addr:
        unsigned char s6_addr[16]

    struct sockaddr_in6:
        sa_family_t sin6_family
        unsigned short sin6_port
        unsigned int sin6_flowinfo
        in6_addr sin6_addr
        unsigned int sin6_scope_id

cdef extern from "<arpa/inet.h>" nogil:
    unsigned short htons(unsigned short)
    unsigned short ntohs(unsigned short)
    unsigned int htonl(unsigned int)
    unsigned int ntohl(unsigned int)

cdef extern from "<linux/if_tun.h>" nogil:
    enum:
        IFF_TUN
        IFF_NO_PI
        IFF_MULTI_QUEUE
        IFF_VNET_HDR
        TUNSETIFF
        TUNSETOFFLOAD
        TUNSETVNETHDRSZ
