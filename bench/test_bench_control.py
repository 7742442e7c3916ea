"""Control-plane micro-benchmarks (pytest-benchmark): header and AVP codecs, tunnel set-ups per second.

Run: python -m pytest bench/test_bench_control.py --benchmark-only
Each codec benchmark has a baseline in the same run (the least work Python can do for the same bytes:
struct.unpack_from of the fixed fields), so results read as ratios, not as absolute timings.
"""

from __future__ import annotations

import struct

from fastl2tp.control.endpoint import EndpointConfig
from fastl2tp.wire.avp import decode_message, encode_message
from fastl2tp.wire.l2tp import decode_header
from tests.control.harness import LNS_ADDR, make_pair
from tests.pcaputil import TRACES, l2tp_packets

SCCRQ = next(p.payload for p in l2tp_packets(TRACES / "linux-xl2tpd-pppd" / "pap-nomppe.pcap"))
HDR = struct.Struct("!HHHHHH")


def test_baseline_struct_unpack_header(benchmark):
    benchmark(HDR.unpack_from, SCCRQ)


def test_decode_header(benchmark):
    benchmark(decode_header, SCCRQ)


def test_decode_sccrq(benchmark):
    benchmark(decode_message, SCCRQ)


def test_encode_sccrq(benchmark):
    msg = decode_message(SCCRQ)
    benchmark(encode_message, msg)


def _setups(n: int) -> None:
    p = make_pair(lac_cfg=EndpointConfig(accept_tunnels=False),
                  lns_cfg=EndpointConfig(max_half_open=n, max_half_open_per_peer=n))
    for _ in range(n):
        tid = p.lac.open_tunnel(LNS_ADDR, 0.0)
        p.lac.open_session(tid, 0.0)
    p.run(until=1.0)
    assert len(p.events["lns"]) == 2 * n


def test_tunnel_and_session_setups_through_the_pair(benchmark):
    n = 200
    benchmark.extra_info["tunnels_per_round"] = n
    benchmark.pedantic(_setups, args=(n,), rounds=5, iterations=1)
    benchmark.extra_info["setups_per_second"] = round(n / benchmark.stats.stats.mean)
