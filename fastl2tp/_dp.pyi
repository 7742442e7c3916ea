"""Type stubs for fastl2tp._dp (the data plane). The C-level API is in _dp.pxd."""

from collections.abc import Sequence
from enum import IntEnum
from typing import Literal, TypeAlias

Buffer: TypeAlias = bytes | bytearray | memoryview  # any contiguous bytes-like object

class DropReason(IntEnum):
    OK = 0
    SHORT = 1
    BAD_VERSION = 2
    CTRL_NO_L = 3
    TRUNC_IDS = 4
    TRUNC_NS = 5
    CTRL_NO_S = 6
    CTRL_WITH_O = 7
    TRUNC_OFFSET = 8
    CTRL_WITH_P = 9
    BAD_LENGTH = 10
    OFFSET_PAST_END = 11
    PPP_SHORT = 12
    PPP_BAD_PROTO = 13
    NO_SESSION = 14
    PEER_MISMATCH = 15
    BAD_IP = 16
    TOO_BIG = 17
    TUN_WRITE = 18
    UDP_EAGAIN = 19
    UDP_SEND = 20
    UDP_RECV = 21
    PUNT_FULL = 22
    NO_TUN = 23
    MPPE_SHORT = 24
    MPPE_BAD_HEADER = 25
    MPPE_BAD_COUNT = 26
    MPPE_DECRYPT = 27
    MPPE_DISCARD = 28
    MPPE_UNENCRYPTED = 29

NUM_REASONS: int
TX_FLAGS: dict[str, int]

# (is_control, tunnel_id, session_id, ns, nr, length, offset_size, priority, payload_start, payload_end)
HeaderTuple = tuple[bool, int, int, int | None, int | None, int | None, int | None, bool, int, int]

def parse_header(data: Buffer) -> HeaderTuple: ...
def parse_reason(data: Buffer) -> DropReason: ...
def parse_ppp(data: Buffer) -> tuple[int, int]: ...
def build_data_header(
    payload: Buffer,
    tunnel_id: int,
    session_id: int,
    *,
    length: bool = False,
    ns: int | None = None,
    nr: int | None = None,
    ppp_proto: int = 0x0021,
    acfc: bool = False,
    pfc: bool = False,
    no_ppp: bool = False,
    headroom: int = 16,
) -> bytes: ...
def clamp_mss(packet: Buffer, mss: int) -> bool: ...

class PacketBatch:
    capacity: int
    slot_size: int
    headroom: int
    count: int
    data_packets: int
    control_packets: int
    def __init__(self, capacity: int = 64, slot_size: int = 2048, headroom: int = 64) -> None: ...
    def fill(self, packets: Sequence[Buffer]) -> None: ...
    def recv(self, fd: int) -> int: ...
    def packet(self, i: int) -> bytes: ...
    def parse(self) -> int: ...
    def result(self, i: int) -> tuple[DropReason, HeaderTuple | None, tuple[int, int] | None]: ...
    def counters(self) -> dict[str, int]: ...
    def reset_counters(self) -> None: ...

# ("control", datagram, (ip, port), sock_index) | ("ppp", tunnel_id, session_id, ppp_frame)
# | ("ccp-reset", tunnel_id, session_id): stateful MPPE lost packets, send a CCP Reset-Request
ControlPunt = tuple[Literal["control"], bytes, tuple[str, int], int]
PppPunt = tuple[Literal["ppp"], int, int, bytes]
CcpResetPunt = tuple[Literal["ccp-reset"], int, int]

class DataPlane:
    """The per-packet engine (see _dp.pyx). Python owns every fd; one thread drives a DataPlane."""

    batch: int
    headroom: int
    max_sessions: int
    slot_size: int
    max_bursts: int
    @property
    def punted(self) -> int: ...
    def __init__(
        self,
        batch: int = 64,
        headroom: int = 64,
        max_sessions: int = 65536,
        *,
        slot_size: int = 2048,
        max_bursts: int = 8,
        punt_slots: int = 1024,
        punt_bytes: int = 262144,
    ) -> None: ...
    def add_socket(self, fd: int) -> int: ...
    def remove_socket(self, sock_index: int) -> None: ...
    def add_session(
        self,
        tunnel_id: int,
        session_id: int,
        peer_tunnel_id: int,
        peer_session_id: int,
        peer_ip: str,
        peer_port: int,
        sock_index: int,
        tun_fd: int,
        *,
        tx_seq: bool = False,
        tx_length: bool = False,
        mss: int = 0,
    ) -> int: ...
    def update_session(
        self,
        tunnel_id: int,
        session_id: int,
        *,
        peer_ip: str | None = None,
        peer_port: int | None = None,
        peer_tunnel_id: int | None = None,
        peer_session_id: int | None = None,
        sock_index: int | None = None,
        tun_fd: int | None = None,
        tx_seq: bool | None = None,
        tx_length: bool | None = None,
        mss: int | None = None,
    ) -> None: ...
    def remove_session(self, tunnel_id: int, session_id: int) -> None: ...
    def set_mppe(
        self,
        tunnel_id: int,
        session_id: int,
        *,
        send_key: Buffer,
        recv_key: Buffer,
        bits: Literal[40, 56, 128],
        stateless: bool,
        required: bool = True,
    ) -> None: ...
    def clear_mppe(self, tunnel_id: int, session_id: int) -> None: ...
    def mppe_reset_received(self, tunnel_id: int, session_id: int) -> bool: ...
    def lookup(self, tunnel_id: int, session_id: int) -> int | None: ...
    def sessions(self) -> int: ...
    def rx_udp(self, sock_index: int) -> int: ...
    def rx_tun(self, slot: int) -> int: ...
    def take_punted(self) -> list[ControlPunt | PppPunt | CcpResetPunt]: ...
    def send_ppp(self, tunnel_id: int, session_id: int, frame: Buffer) -> bool: ...
    def session_traffic(self, tunnel_id: int, session_id: int) -> tuple[int, int, int, int, int, int]: ...
    def session_stats(self, tunnel_id: int, session_id: int) -> dict[str, object]: ...
    def counters(self) -> dict[str, int]: ...

class _BenchBaseline:
    """Benchmark baseline: the DataPlane's system calls without any L2TP work."""

    def __init__(self, batch: int = 64, headroom: int = 64, slot_size: int = 2048, max_bursts: int = 8) -> None: ...
    def set_dest(self, family: int, ip: str, port: int) -> None: ...
    def udp_to_fd(self, sock_fd: int, out_fd: int) -> int: ...
    def fd_to_udp(self, in_fd: int, sock_fd: int) -> int: ...
