"""Multilink PPP micro-benchmarks: the C fragmenter + reassembler per fragment against a copy-only baseline in
the same run (``_dp._bench_mp``: the whole loop in C, GIL released), and the TUN -> UDP burst of a two-link
bundle (fragments) against a plain session's (``rx_bundle`` vs ``rx_tun``), as ratios."""

from __future__ import annotations

import socket

import pytest

from bench.test_bench_dp import _big_buffers
from fastl2tp import _dp

N_PACKETS = 20_000
PACKET_LEN = 1500
MTU = 1450                       # 1500-octet packets -> 2 fragments each
_results: dict[str, tuple[float, float]] = {}


def _record(benchmark, key: str, items: int, base_key: str | None, unit: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:            # --benchmark-disable
        return
    ns = (stats.stats.median / items * 1e9, stats.stats.min / items * 1e9)
    _results[key] = ns
    benchmark.extra_info[f"ns_per_{unit}"] = round(ns[0], 1)
    benchmark.extra_info[f"min_ns_per_{unit}"] = round(ns[1], 1)
    line = f"{key}: median {ns[0]:.1f} ns/{unit}, min {ns[1]:.1f}"
    base = _results.get(base_key) if base_key else None
    if base:
        for i, tag in enumerate(("", "min_")):
            benchmark.extra_info[f"{tag}baseline_ns_per_{unit}"] = round(base[i], 1)
            benchmark.extra_info[f"{tag}ratio_to_baseline"] = round(ns[i] / base[i], 3)
        line += f" vs baseline {base[0]:.1f} (x{ns[0] / base[0]:.2f}); min x{ns[1] / base[1]:.2f}"
    print("\n" + line)


@pytest.mark.parametrize("mode", ["baseline", "mp-long", "mp-short"])
def test_fragment_and_reassemble(benchmark, mode):
    """Per fragment: cut (MP header + copy) and back through the reassembler (header parse, buffer, rules,
    join). The baseline copies the same octets into the same fragment buffers and back."""
    baseline = mode == "baseline"
    short = mode == "mp-short"
    frags, done = _dp._bench_mp(100, PACKET_LEN, MTU, short, baseline)
    assert (frags, done) == (200, 100)
    benchmark.pedantic(_dp._bench_mp, args=(N_PACKETS, PACKET_LEN, MTU, short, baseline), rounds=30, iterations=1)
    _record(benchmark, mode, 2 * N_PACKETS, None if baseline else "baseline", "fragment")


# --- the bundle's TUN -> UDP burst against a plain session's -------------------------------------------------------

BURST = 256
IP_PACKET = b"\x45\x00" + (1400).to_bytes(2, "big") + bytes(8) + b"\x11" + bytes(1400 - 13)


@pytest.mark.parametrize("impl", ["session", "bundle"])
def test_rx_bundle_vs_rx_tun(benchmark, impl):
    """TUN -> UDP per packet (1400-octet IPv4): a plain session (one message each) against a two-link bundle
    cutting each packet into two fragments for mtu 800 (one in place, one copied; two messages)."""
    sink0, sink1, tx = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3))
    tun, tun_dp = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    drain = _dp.PacketBatch(64, slot_size=2048, headroom=0)
    try:
        for s in (sink0, sink1, tx):
            s.bind(("127.0.0.1", 0))
            _big_buffers(s)
        tun_dp.setblocking(False)
        _big_buffers(tun)
        dp = _dp.DataPlane(batch=64, max_sessions=16, max_bursts=BURST // 64 + 1)
        si = dp.add_socket(tx.fileno())
        if impl == "session":
            slot = dp.add_session(7, 1, 9, 1, "127.0.0.1", sink0.getsockname()[1], si, tun_dp.fileno(), tx_seq=True)
            run = lambda: dp.rx_tun(slot)
        else:
            dp.add_session(7, 1, 9, 1, "127.0.0.1", sink0.getsockname()[1], si, -1, tx_seq=True)
            dp.add_session(7, 2, 9, 2, "127.0.0.1", sink1.getsockname()[1], si, -1, tx_seq=True)
            bid = dp.add_bundle(tun_dp.fileno(), mrru=1600, rx_short_seq=False, tx_short_seq=False)
            dp.bundle_add_link(bid, 7, 1, mtu=800)
            dp.bundle_add_link(bid, 7, 2, mtu=800)
            run = lambda: dp.rx_bundle(bid)

        def fill():
            for sink in (sink0, sink1):
                while drain.recv(sink.fileno()):
                    pass
            for _ in range(BURST):
                tun.send(IP_PACKET)

        fill()
        assert run() == BURST
        benchmark.pedantic(run, setup=fill, rounds=100, iterations=1)
        c = dp.counters()
        assert c["tx_ip"] == c["tun_reads"]
        if impl == "bundle":
            assert c["mp_fragments_tx"] == 2 * c["tx_ip"]
        _record(benchmark, f"rx_tun-{impl}", BURST, None if impl == "session" else "rx_tun-session", "packet")
    finally:
        for s in (sink0, sink1, tx, tun, tun_dp):
            s.close()
