"""Throughput benchmark: iperf3 through a fastl2tp tunnel between two namespaces, against the same iperf3
over the bare veth in the same run (so results read as ratios on this machine, not as absolute numbers).

    python -m bench [--duration 10] [--parallel 1] [--mtu 1450] [--json bench/out/throughput.json]

Prints a table (Gbit/s, packets/s, CPU seconds of each fastl2tpd, ratio tunnel/bare) and writes JSON.
Needs root and iperf3. Uses the demo's namespaces (fastl2tp.demo): HomeOffice runs the server, RemoteOffice
the client; iperf3 runs RemoteOffice → HomeOffice.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastl2tp.demo import CLIENT_CONFIG, HOME_WAN, SERVER_CONFIG, Namespaces, _wait

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def iperf(ns: Namespaces, server_ip: str, args: list[str], duration: int) -> dict:
    srv = ns.popen(ns.home, ["iperf3", "-s", "-1", "-B", server_ip], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    r = ns.run(ns.remote, ["iperf3", "-c", server_ip, "-t", str(duration), "-J", *args], timeout=duration + 60)
    srv.wait(timeout=15)
    data = json.loads(r.stdout)
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    end = data["end"]
    if "sum_received" in end:
        bps = end["sum_received"]["bits_per_second"]
        bytes_ = end["sum_received"]["bytes"]
        size = 1448
    else:
        bps = end["sum"]["bits_per_second"] * (1 - end["sum"].get("lost_percent", 0) / 100)
        bytes_ = end["sum"]["bytes"]
        size = 1400
    return {"gbps": bps / 1e9, "pps": bytes_ / size / duration}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--mtu", type=int, default=1450, help="tunnel max-mtu/max-mru")
    p.add_argument("--json", default="bench/out/throughput.json")
    args = p.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("iperf3") is None:
        print("the throughput benchmark needs root and iperf3", file=sys.stderr)
        return 1
    ns = Namespaces()
    tmp = Path(tempfile.mkdtemp(prefix="fastl2tp-bench-"))
    results: dict[str, dict] = {}
    try:
        ns.create()
        server_cfg = SERVER_CONFIG.replace("[l2tp-server.server]\n",
                                           f"[l2tp-server.server]\nmax-mtu = {args.mtu}\nmax-mru = {args.mtu}\n")
        client_cfg = CLIENT_CONFIG + f"max-mtu = {args.mtu}\nmax-mru = {args.mtu}\n"
        (tmp / "home.toml").write_text(server_cfg)
        (tmp / "remote.toml").write_text(client_cfg)
        daemon = [sys.executable, "-m", "fastl2tp.daemon", "--log-level", "warning", "-c"]
        lns = ns.popen(ns.home, daemon + [str(tmp / "home.toml")])
        lac = ns.popen(ns.remote, daemon + [str(tmp / "remote.toml")])
        _wait(lambda: (ns.link(ns.remote, "l2tp-out1") or {}).get("local"), 30, "the tunnel")
        streams = ["-P", str(args.parallel)]
        for name, target, extra in (
            ("bare TCP", HOME_WAN, streams),
            ("tunnel TCP", "10.0.103.1", streams),
            ("bare UDP -l 1400", HOME_WAN, ["-u", "-b", "0", "-l", "1400", *streams]),
            ("tunnel UDP -l 1400", "10.0.103.1", ["-u", "-b", "0", "-l", "1400", *streams]),
        ):
            before = {side: cpu_seconds(p.pid) for side, p in (("lns", lns), ("lac", lac))}
            res = iperf(ns, target, extra, args.duration)
            for side, p in (("lns", lns), ("lac", lac)):
                user, system = (a - b for a, b in zip(cpu_seconds(p.pid), before[side]))
                res[f"cpu_{side}_s"] = round(user + system, 2)
                res[f"user_{side}_s"] = round(user, 2)
                # user-space CPU per packet: the part of the cost that is ours (the rest is the kernel)
                packets = res["pps"] * args.duration
                res[f"user_ns_per_packet_{side}"] = round(user / packets * 1e9) if packets else None
            results[name] = res
        for kind in ("TCP", "UDP -l 1400"):
            results[f"tunnel {kind}"]["ratio_to_bare"] = results[f"tunnel {kind}"]["gbps"] / results[f"bare {kind}"][
                "gbps"]
    finally:
        ns.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'run':<22}{'Gbit/s':>8}{'kpps':>9}{'CPU LNS s':>11}{'CPU LAC s':>11}{'user ns/pkt':>13}{'ratio':>8}")
    for name, r in results.items():
        ratio = f"{r['ratio_to_bare']:.2f}" if "ratio_to_bare" in r else ""
        user = "" if name.startswith("bare") else f"{r['user_ns_per_packet_lns']}/{r['user_ns_per_packet_lac']}"
        print(f"{name:<22}{r['gbps']:>8.3f}{r['pps'] / 1e3:>9.1f}{r['cpu_lns_s']:>11.2f}{r['cpu_lac_s']:>11.2f}"
              f"{user:>13}{ratio:>8}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
