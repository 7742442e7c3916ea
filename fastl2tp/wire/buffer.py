"""Bounds-checked big-endian reads and writes over bytes (control-plane codecs only).

The data plane never uses this module: per-packet parsing lives in ``fastl2tp._dp``.
"""

from __future__ import annotations

from ..errors import DecodeError


class Reader:
    """Reads big-endian integers and byte strings from ``data[start:end]``; never past ``end``."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None):
        self.data = bytes(data)
        self.pos = start
        self.end = len(self.data) if end is None else end
        if not 0 <= start <= self.end <= len(self.data):
            raise DecodeError("bad buffer bounds", offset=start)

    def remaining(self) -> int:
        return self.end - self.pos

    def eof(self) -> bool:
        return self.pos >= self.end

    def _need(self, n: int, field: str) -> int:
        pos = self.pos
        if n < 0 or pos + n > self.end:
            raise DecodeError(f"truncated: need {n} bytes, have {self.end - pos}", offset=pos, field=field)
        self.pos = pos + n
        return pos

    def u8(self, field: str = "u8") -> int:
        return self.data[self._need(1, field)]

    def u16(self, field: str = "u16") -> int:
        p = self._need(2, field)
        return (self.data[p] << 8) | self.data[p + 1]

    def u32(self, field: str = "u32") -> int:
        p = self._need(4, field)
        return int.from_bytes(self.data[p : p + 4], "big")

    def bytes(self, n: int, field: str = "bytes") -> bytes:
        p = self._need(n, field)
        return self.data[p : p + n]

    def rest(self) -> bytes:
        p = self.pos
        self.pos = self.end
        return self.data[p : self.end]


class Writer:
    """Appends big-endian integers and bytes; ``getvalue()`` returns the result."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def __len__(self) -> int:
        return len(self.buf)

    def u8(self, v: int) -> None:
        self.buf.append(v & 0xFF)

    def u16(self, v: int) -> None:
        self.buf += (v & 0xFFFF).to_bytes(2, "big")

    def u32(self, v: int) -> None:
        self.buf += (v & 0xFFFFFFFF).to_bytes(4, "big")

    def bytes(self, b: bytes) -> None:
        self.buf += b

    def patch_u16(self, pos: int, v: int) -> None:
        self.buf[pos : pos + 2] = (v & 0xFFFF).to_bytes(2, "big")

    def getvalue(self) -> bytes:
        return bytes(self.buf)
