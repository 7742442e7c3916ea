"""Trace helpers for the authentication tests: PAP/CHAP frames of the captures, and a scripted rng."""

from __future__ import annotations

from pathlib import Path

from tests.pcaputil import TRACES, PppCapture, ppp_frames


def traces_dir() -> Path:
    return TRACES


def auth_frames(path: Path) -> list[PppCapture]:
    """PAP and CHAP frames only, in capture order."""
    return [f for f in ppp_frames(path) if f.protocol in (0xC023, 0xC223)]


class FakeRng:
    """An rng(n) that hands out scripted bytes, then zeros; records what it was asked for."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.asked: list[int] = []

    def __call__(self, n: int) -> bytes:
        self.asked.append(n)
        if self.chunks:
            chunk = self.chunks.pop(0)
            assert len(chunk) == n, f"scripted {len(chunk)} octets, asked for {n}"
            return chunk
        return bytes(n)
