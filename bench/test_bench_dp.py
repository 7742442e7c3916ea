"""Data-plane micro-benchmarks: the batch header parse (ns/packet), per-call wrappers for scale, and the
DataPlane's rx_udp / rx_tun bursts against a baseline making the same system calls (ratios)."""

from __future__ import annotations

import os
import socket

import pytest

from fastl2tp import _dp
from fastl2tp.wire import l2tp, ppp

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


# --- the DataPlane bursts, against the same system calls without L2TP work -------------------------------
#
# Both sides of each pair make the same system calls on the same kinds of fds: rx_udp is recvmmsg bursts
# plus one write() per packet (to /dev/null, so that the TUN's own cost does not hide ours); rx_tun is
# read() bursts from a datagram socketpair (standing in for the TUN fd) plus one sendmmsg to a loopback
# UDP socket. The baseline (_dp._BenchBaseline) does no parsing, lookup, clamping or header building, so
# ``dataplane - baseline`` is the data plane's own CPU per packet, and the ratio is what it costs on top.

BURST = 256                      # packets per round (4 recvmmsg/sendmmsg batches of 64)
ROUNDS = 150
IP_PACKET = b"\x45\x00" + (1380).to_bytes(2, "big") + bytes(8) + b"\x11" + bytes(1380 - 13)  # UDP in IPv4
_results: dict[tuple[str, str], tuple[float, float]] = {}


def _big_buffers(sock: socket.socket) -> None:
    for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):   # SO_RCVBUFFORCE / SO_SNDBUFFORCE
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, 8 << 20)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)


def _ratio(benchmark, path: str, impl: str) -> None:
    """Record ns/packet (median and min: min is the least disturbed by other load on a shared machine)
    and, for the data plane, its ratio to the baseline measured earlier in the same run."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return
    ns = (stats.stats.median / BURST * 1e9, stats.stats.min / BURST * 1e9)
    _results[(path, impl)] = ns
    benchmark.extra_info["min_ns_per_packet"] = round(ns[1], 1)
    base = _results.get((path, "baseline"))
    if impl != "baseline" and base:
        for i, tag in enumerate(("", "min_")):
            benchmark.extra_info[f"{tag}baseline_ns_per_packet"] = round(base[i], 1)
            benchmark.extra_info[f"{tag}ratio_to_baseline"] = round(ns[i] / base[i], 3)
            benchmark.extra_info[f"{tag}own_cpu_ns_per_packet"] = round(ns[i] - base[i], 1)
        print(f"{path}: median {ns[0]:.0f} ns/packet vs baseline {base[0]:.0f} (x{ns[0] / base[0]:.2f}); "
              f"min {ns[1]:.0f} vs {base[1]:.0f} (x{ns[1] / base[1]:.2f}, +{ns[1] - base[1]:.0f} ns of our own work)")


@pytest.fixture
def udp_pair():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    devnull = os.open("/dev/null", os.O_WRONLY)
    try:
        rx.bind(("127.0.0.1", 0))
        tx.bind(("127.0.0.1", 0))
        _big_buffers(rx)
        _big_buffers(tx)
        yield rx, tx, devnull
    finally:
        rx.close()
        tx.close()
        os.close(devnull)


@pytest.mark.parametrize("impl,sessions", [("baseline", 1), ("dataplane", 1), ("dataplane", 4096)])
def test_rx_udp(benchmark, per_item, udp_pair, impl, sessions):
    """UDP -> TUN per packet: recvmmsg, parse, lookup, peer check, PPP demux, write (1400-byte datagrams,
    traffic spread over up to 256 of ``sessions`` sessions)."""
    rx, tx, devnull = udp_pair
    active = min(sessions, 256)
    frame = ppp.encode_frame_header(0x21) + IP_PACKET
    msgs = [_dp.build_data_header(IP_PACKET, 7, 1 + i % active, length=bool(i & 1)) for i in range(BURST)]
    assert all(m[-len(frame):] == frame for m in msgs)
    dest = rx.getsockname()

    def fill():
        for m in msgs:
            tx.sendto(m, dest)

    if impl == "baseline":
        base = _dp._BenchBaseline(batch=64, max_bursts=BURST // 64 + 1)
        run = lambda: base.udp_to_fd(rx.fileno(), devnull)
    else:
        dp = _dp.DataPlane(batch=64, max_sessions=sessions, max_bursts=BURST // 64 + 1)
        si = dp.add_socket(rx.fileno())
        for s in range(1, sessions + 1):
            dp.add_session(7, s, 9, s, "127.0.0.1", tx.getsockname()[1], si, devnull, mss=1360)
        run = lambda: dp.rx_udp(si)
    fill()
    assert run() == BURST
    benchmark.pedantic(run, setup=fill, rounds=ROUNDS, iterations=1)
    if impl != "baseline":
        c = dp.counters()
        assert c["rx_ip"] == c["rx_datagrams"] and c["rx_ip"] % BURST == 0     # every packet delivered
    per_item(BURST)
    _ratio(benchmark, "rx_udp", f"{impl}")


@pytest.mark.parametrize("impl", ["baseline", "dataplane"])
def test_rx_tun(benchmark, per_item, udp_pair, impl):
    """TUN -> UDP per packet: read bursts, MSS check, L2TP+PPP header in the headroom, one sendmmsg."""
    sink, tx, _ = udp_pair
    tun, tun_dp = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    drain = _dp.PacketBatch(64, slot_size=2048, headroom=0)
    try:
        tun_dp.setblocking(False)
        _big_buffers(tun)

        def fill():
            while drain.recv(sink.fileno()):
                pass
            for _ in range(BURST):
                tun.send(IP_PACKET)

        if impl == "baseline":
            base = _dp._BenchBaseline(batch=64, max_bursts=BURST // 64 + 1)
            base.set_dest(socket.AF_INET, "127.0.0.1", sink.getsockname()[1])
            run = lambda: base.fd_to_udp(tun_dp.fileno(), tx.fileno())
        else:
            dp = _dp.DataPlane(batch=64, max_sessions=16, max_bursts=BURST // 64 + 1)
            si = dp.add_socket(tx.fileno())
            slot = dp.add_session(7, 1, 9, 1, "127.0.0.1", sink.getsockname()[1], si, tun_dp.fileno(),
                                  tx_seq=True, mss=1360)
            run = lambda: dp.rx_tun(slot)
        fill()
        assert run() == BURST
        benchmark.pedantic(run, setup=fill, rounds=ROUNDS, iterations=1)
        if impl != "baseline":
            c = dp.counters()
            assert c["tx_ip"] == c["tun_reads"] and c["tx_ip"] % BURST == 0     # every packet sent
        per_item(BURST)
        _ratio(benchmark, "rx_tun", impl)
    finally:
        tun.close()
        tun_dp.close()


# --- MPPE on the TUN -> UDP path: the same burst with and without encryption, in the same run ------------------

_mppe_results: dict[str, tuple[float, float]] = {}


@pytest.mark.parametrize("mode", ["plain", "mppe128-stateless", "mppe128-stateful"])
def test_rx_tun_mppe(benchmark, per_item, udp_pair, mode):
    """TUN -> UDP per packet (1384-byte IPv4 packets) as in test_rx_tun, with MPPE-128 on the session:
    stateless is a key change (SHA-1 + two RC4 key schedules) and RC4 over the packet, stateful RC4 only
    (a key change every 256 packets). ``extra_ns_per_packet`` is the cost over ``plain`` in this run."""
    sink, tx, _ = udp_pair
    tun, tun_dp = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    drain = _dp.PacketBatch(64, slot_size=2048, headroom=0)
    try:
        tun_dp.setblocking(False)
        _big_buffers(tun)

        def fill():
            while drain.recv(sink.fileno()):
                pass
            for _ in range(BURST):
                tun.send(IP_PACKET)

        dp = _dp.DataPlane(batch=64, max_sessions=16, max_bursts=BURST // 64 + 1)
        si = dp.add_socket(tx.fileno())
        slot = dp.add_session(7, 1, 9, 1, "127.0.0.1", sink.getsockname()[1], si, tun_dp.fileno(),
                              tx_seq=True, mss=1360)
        if mode != "plain":
            dp.set_mppe(7, 1, send_key=bytes(range(16)), recv_key=bytes(range(16, 32)), bits=128,
                        stateless=mode.endswith("-stateless"))
        run = lambda: dp.rx_tun(slot)
        fill()
        assert run() == BURST
        benchmark.pedantic(run, setup=fill, rounds=ROUNDS, iterations=1)
        c = dp.counters()
        assert c["tx_ip"] == c["tun_reads"] and c["tx_ip"] % BURST == 0
        if mode != "plain":
            assert c["mppe_tx"] == c["tx_ip"]
        per_item(BURST)
        stats = getattr(benchmark, "stats", None)
        if stats is None:
            return
        ns = (stats.stats.median / BURST * 1e9, stats.stats.min / BURST * 1e9)
        _mppe_results[mode] = ns
        benchmark.extra_info["min_ns_per_packet"] = round(ns[1], 1)
        plain = _mppe_results.get("plain")
        if mode != "plain" and plain:
            benchmark.extra_info["plain_ns_per_packet"] = round(plain[0], 1)
            benchmark.extra_info["extra_ns_per_packet"] = round(ns[0] - plain[0], 1)
            benchmark.extra_info["min_extra_ns_per_packet"] = round(ns[1] - plain[1], 1)
            print(f"rx_tun {mode}: median {ns[0]:.0f} ns/packet vs plain {plain[0]:.0f} "
                  f"(+{ns[0] - plain[0]:.0f} ns); min {ns[1]:.0f} vs {plain[1]:.0f} (+{ns[1] - plain[1]:.0f} ns)")
    finally:
        tun.close()
        tun_dp.close()
