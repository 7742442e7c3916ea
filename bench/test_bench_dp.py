"""Data-plane micro-benchmarks: the batch header parse (ns/packet), and per-call wrappers for scale."""

from __future__ import annotations

import pytest

from fastl2tp import _dp
from fastl2tp.wire import l2tp

PAYLOAD = b"\x45" + bytes(1399 - 12 - 4)  # an IPv4 packet filling a 1400-byte L2TP message


def mixed_packets(n: int) -> list[bytes]:
    """Data messages in the shapes peers send: bare, with Length, with Ns/Nr, both; ACFC/PFC mixed."""
    out = []
    for i in range(n):
        out.append(_dp.build_data_header(
            PAYLOAD, 7, 1 + i % 32, length=bool(i & 1), ns=i if i & 2 else None, nr=0 if i & 2 else None,
            acfc=bool(i & 4), pfc=bool(i & 8),
        ))
    return out


@pytest.mark.parametrize("batch_size", [64, 1024])
def test_parse_batch(benchmark, per_item, batch_size):
    """``PacketBatch.parse()``: L2TP + PPP headers of every slot with the GIL released, per packet."""
    batch = _dp.PacketBatch(batch_size, slot_size=2048, headroom=64)
    batch.fill(mixed_packets(batch_size))
    assert batch.parse() == batch_size
    benchmark(batch.parse)
    per_item(batch_size)


def test_parse_header_python_call(benchmark, per_item):
    """One ``_dp.parse_header`` call (buffer + tuple): the per-call cost a batch avoids."""
    data = mixed_packets(4)[3]
    benchmark(_dp.parse_header, data)
    per_item(1)


def test_decode_header_oracle(benchmark, per_item):
    """The pure-Python twin, for comparison."""
    data = mixed_packets(4)[3]
    benchmark(l2tp.decode_header, data)
    per_item(1)


def test_clamp_mss_syn(benchmark, per_item):
    """MSS clamping of an IPv4 SYN (through the Python wrapper; the packet is re-clamped each time,
    so the second and later calls find MSS already small: the common no-change path)."""
    syn = bytearray(bytes.fromhex(
        "45000034000040004006000ac0a80001c0a80002"      # IPv4, TCP, 52 bytes
        "9c4001bb0102030400000000" "8002faf0" "00000000"  # SYN, doff 8
        "020405b4" "01030307" "01010402"                  # MSS 1460, NOP WS, NOP NOP SACK-perm
    ))
    assert _dp.clamp_mss(syn, 1360)
    benchmark(_dp.clamp_mss, syn, 1360)
    per_item(1)
