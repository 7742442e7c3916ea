"""Throughput through a single-link Multilink PPP tunnel against the same tunnel without MP, in one run.

    python -m bench.mp [--duration 8] [--json bench/out/throughput-mp.json]

The demo's two namespaces and daemons (as ``python -m bench``), links of max-mtu/max-mru 1450, twice:

- plain: the interface MTU is the link's, 1450;
- MP: ``mrru = 1500`` on both ends: the interface MTU is 1500 and each full-size packet crosses the
  1450-octet link as two MP fragments (fragmented by the sender's data plane, reassembled by the
  receiver's).

iperf3 TCP (full-size segments: 1410 vs 1460 octets of payload) and UDP with full-size datagrams
(-l 1422 vs -l 1472), RemoteOffice → HomeOffice. The table gives Gbit/s, packets/s (of the interface,
not fragments) and each end's CPU seconds, and MP / plain as a ratio: what the fragmentation and
reassembly cost, and what the larger packets win back.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.run import configs, cpu_seconds, iperf
from fastl2tp.demo import Namespaces, _wait


def run_one(ns: Namespaces, tmp: Path, mrru: int | None, duration: int) -> dict[str, dict]:
    server_cfg, client_cfg, targets = configs(1, 1450)
    if mrru is not None:
        server_cfg = server_cfg.replace("[l2tp-server.server]\n", f"[l2tp-server.server]\nmrru = {mrru}\n")
        client_cfg = client_cfg.replace("[[l2tp-client]]\n", f"[[l2tp-client]]\nmrru = {mrru}\n")
    tag = "mp" if mrru else "plain"
    (tmp / f"home-{tag}.toml").write_text(server_cfg)
    (tmp / f"remote-{tag}.toml").write_text(client_cfg)
    daemon = [sys.executable, "-m", "fastl2tp.daemon", "--log-level", "warning", "-c"]
    lns = ns.popen(ns.home, daemon + [str(tmp / f"home-{tag}.toml"), "--socket", str(tmp / f"home-{tag}.sock")])
    lac = ns.popen(ns.remote, daemon + [str(tmp / f"remote-{tag}.toml"), "--socket", str(tmp / f"remote-{tag}.sock")])
    out: dict[str, dict] = {}
    try:
        _wait(lambda: (ns.link(ns.remote, "l2tp-out1") or {}).get("local"), 60, f"the {tag} tunnel")
        mtu = ns.link(ns.remote, "l2tp-out1")["mtu"]
        want = mrru or 1450
        if mtu != want:
            raise RuntimeError(f"{tag}: interface MTU {mtu}, expected {want}")
        udp_len = mtu - 28
        for kind, extra in (("TCP", []), (f"UDP -l {udp_len}", ["-u", "-b", "0", "-l", str(udp_len)])):
            before = {side: cpu_seconds(p.pid) for side, p in (("lns", lns), ("lac", lac))}
            res = iperf(ns, targets, extra, duration)
            for side, p in (("lns", lns), ("lac", lac)):
                res[f"cpu_{side}_s"] = round(sum(a - b for a, b in zip(cpu_seconds(p.pid), before[side])), 2)
            res["mtu"] = mtu
            out[f"{tag} {kind.split()[0]}"] = res
    finally:
        for p in (lac, lns):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.mp", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--json", default="bench/out/throughput-mp.json")
    args = p.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("iperf3") is None:
        print("the throughput benchmark needs root and iperf3", file=sys.stderr)
        return 1
    ns = Namespaces()
    tmp = Path(tempfile.mkdtemp(prefix="fastl2tp-bench-mp-"))
    results: dict[str, dict] = {}
    try:
        ns.create()
        results.update(run_one(ns, tmp, None, args.duration))
        results.update(run_one(ns, tmp, 1500, args.duration))
    finally:
        ns.close()
        shutil.rmtree(tmp, ignore_errors=True)
    for kind in ("TCP", "UDP"):
        results[f"mp {kind}"]["ratio_to_plain"] = results[f"mp {kind}"]["gbps"] / results[f"plain {kind}"]["gbps"]
    print(f"{'run':<12}{'MTU':>6}{'Gbit/s':>9}{'kpps':>9}{'CPU srv s':>11}{'CPU cli s':>11}{'vs plain':>10}")
    for name, r in results.items():
        ratio = f"{r['ratio_to_plain']:.2f}" if "ratio_to_plain" in r else ""
        print(f"{name:<12}{r['mtu']:>6}{r['gbps']:>9.3f}{r['pps'] / 1e3:>9.1f}{r['cpu_lns_s']:>11.2f}"
              f"{r['cpu_lac_s']:>11.2f}{ratio:>10}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
