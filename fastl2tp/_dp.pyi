"""Type stubs for fastl2tp._dp (the data plane). The C-level API is in _dp.pxd."""

from collections.abc import Sequence
from enum import IntEnum
from typing import TypeAlias

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
