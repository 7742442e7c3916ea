"""Throughput benchmark: iperf3 through a fastl2tp tunnel between two namespaces, against the same iperf3
over the bare veth in the same run (so results read as ratios on this machine, not as absolute numbers).

    python -m bench [--duration 10] [--parallel 1] [--mtu 1450] [--sessions 1] [--mppe none|stateless|stateful]
                    [--json bench/out/throughput.json]

Also runs the same iperf3 through ``bench/ctunnel/ctunnel.c`` (the simplest fast userspace UDP tunnel in
C: TUN read/write, a 12-byte header, recvmmsg/sendmmsg bursts, nothing else), built here with cc: the
yardstick for a userspace data plane on this machine. Prints a table (Gbit/s, packets/s, CPU seconds of
each end, ratio to the C tunnel and to the bare veth), writes JSON, and a PNG chart next to it when
matplotlib is installed. With ``--sessions N`` the client daemon runs N
sessions and one iperf3 per session runs at once (the table shows the sum). With ``--mppe stateless`` or
``--mppe stateful`` both ends' profiles say ``use-encryption=required`` (and ``mppe-stateful`` allow or
prefer): the tunnel runs MPPE-128 in that mode (checked in both daemons' logs); compare with a plain run
(``--mppe none``) made just before or after.
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


def iperf(ns: Namespaces, server_ips: list[str], args: list[str], duration: int) -> dict:
    """One iperf3 client per server address, all at once; the sum of what arrived."""
    servers = [ns.popen(ns.home, ["iperf3", "-s", "-1", "-B", ip], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL) for ip in server_ips]
    time.sleep(0.5)
    clients = [ns.popen(ns.remote, ["iperf3", "-c", ip, "-t", str(duration), "-J", *args], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True) for ip in server_ips]
    total_bps = total_pkts = 0.0
    for c in clients:
        out, err = c.communicate(timeout=duration + 60)
        data = json.loads(out)
        if "error" in data:
            for other in clients + servers:
                other.kill()
                other.wait()
            raise RuntimeError(f"iperf3: {data['error']}")
        end = data["end"]
        if "sum_received" in end:
            total_bps += end["sum_received"]["bits_per_second"]
            total_pkts += end["sum_received"]["bytes"] / 1448
        else:
            delivered = 1 - end["sum"].get("lost_percent", 0) / 100
            total_bps += end["sum"]["bits_per_second"] * delivered
            total_pkts += end["sum"]["bytes"] * delivered / 1400
    for srv in servers:
        srv.wait(timeout=15)
    return {"gbps": total_bps / 1e9, "pps": total_pkts / duration}


CTUNNEL_SRC = Path(__file__).with_name("ctunnel") / "ctunnel.c"


def start_ctunnel(ns: Namespaces, tmp: Path, mtu: int) -> list[subprocess.Popen] | None:
    """Both ends of the C tunnel (10.99.0.1 at HomeOffice, 10.99.0.2 at RemoteOffice), or None without cc."""
    from pyroute2 import IPRoute

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    binary = tmp / "ctunnel"
    subprocess.run([cc, "-O2", "-o", str(binary), str(CTUNNEL_SRC)], check=True)
    procs = []
    for where, local, peer, wan, other in ((ns.home, "10.99.0.1", "10.99.0.2", HOME_WAN, "192.168.81.1"),
                                           (ns.remote, "10.99.0.2", "10.99.0.1", "192.168.81.1", HOME_WAN)):
        procs.append(ns.popen(where, [str(binary), "ct0", wan, "17999", other, "17999"]))
        _wait(lambda where=where: ns.link(where, "ct0"), 10, "the C tunnel's TUN device")
        with IPRoute(netns=where) as ipr:
            idx = ipr.link_lookup(ifname="ct0")[0]
            ipr.link("set", index=idx, mtu=mtu, state="up")
            ipr.addr("add", index=idx, address=local, local=local, prefixlen=32)
            ipr.route("add", dst=f"{peer}/32", oif=idx)
    return procs


MPPE_STATEFUL = {"stateless": "allow", "stateful": "prefer"}  # --mppe → both ends' mppe-stateful


def mppe_profiles(mppe: str) -> str:
    """Both built-in profiles (secrets and clients use `default`/`default-encryption`) with MPPE-128 required."""
    if mppe == "none":
        return ""
    return "".join(f'\n[[ppp.profile]]\nname = "{name}"\nuse-encryption = "required"\nmppe-key-lengths = "128"\n'
                   f'mppe-stateful = "{MPPE_STATEFUL[mppe]}"\n' for name in ("default", "default-encryption"))


def configs(sessions: int, mtu: int, mppe: str = "none") -> tuple[str, str, list[str]]:
    """Server and client configuration for ``sessions`` sessions, and the server-side addresses."""
    server, client, targets = _configs(sessions, mtu)
    return server + mppe_profiles(mppe), client + mppe_profiles(mppe), targets


def _configs(sessions: int, mtu: int) -> tuple[str, str, list[str]]:
    mtus = f"max-mtu = {mtu}\nmax-mru = {mtu}\n"
    if sessions == 1:
        server = SERVER_CONFIG.replace("[l2tp-server.server]\n", "[l2tp-server.server]\n" + mtus)
        return server, CLIENT_CONFIG + mtus, ["10.0.103.1"]
    server = f"[l2tp-server.server]\nenabled = true\nauthentication = \"mschap2\"\nlisten-address = \"{HOME_WAN}\"\n{mtus}"
    client = ""
    for i in range(1, sessions + 1):
        server += (f'[[ppp.secret]]\nname = "u{i}"\npassword = "p{i}"\nlocal-address = "10.200.{i}.1"\n'
                   f'remote-address = "10.200.{i}.2"\n')
        client += (f'[[l2tp-client]]\nname = "l2tp-out{i}"\nconnect-to = "{HOME_WAN}"\nuser = "u{i}"\n'
                   f'password = "p{i}"\ndisabled = false\n{mtus}')
    return server, client, [f"10.200.{i}.1" for i in range(1, sessions + 1)]


def chart(results: dict, path: Path, mppe: str = "none") -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = list(results)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(names, [results[n]["gbps"] for n in names], color=["#999" if n.startswith("bare") else "#2a7" for n in names])
    ax.set_xlabel("Gbit/s")
    title = "iperf3: fastl2tp tunnel vs. bare veth (same run)"
    ax.set_title(title if mppe == "none" else f"{title}, MPPE-128 {mppe}")
    fig.tight_layout()
    png = path.with_suffix(".png")
    fig.savefig(png)
    return png


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--mtu", type=int, default=1450, help="tunnel max-mtu/max-mru")
    p.add_argument("--sessions", type=int, default=1, help="sessions (1..200), one iperf3 each")
    p.add_argument("--mppe", choices=("none", "stateless", "stateful"), default="none",
                   help="MPPE-128 required on both ends, in this mode (default: no MPPE)")
    p.add_argument("--json", default=None,
                   help="default bench/out/throughput.json (throughput-mppe-MODE.json with --mppe)")
    args = p.parse_args(argv)
    if args.json is None:
        args.json = "bench/out/throughput.json" if args.mppe == "none" else f"bench/out/throughput-mppe-{args.mppe}.json"
    if not 1 <= args.sessions <= 200:
        p.error("--sessions must be 1..200")
    if os.geteuid() != 0 or shutil.which("iperf3") is None:
        print("the throughput benchmark needs root and iperf3", file=sys.stderr)
        return 1
    ns = Namespaces()
    tmp = Path(tempfile.mkdtemp(prefix="fastl2tp-bench-"))
    results: dict[str, dict] = {}
    logs: dict = {}
    try:
        ns.create()
        server_cfg, client_cfg, targets = configs(args.sessions, args.mtu, args.mppe)
        (tmp / "home.toml").write_text(server_cfg)
        (tmp / "remote.toml").write_text(client_cfg)
        if args.mppe == "none":
            daemon = [sys.executable, "-m", "fastl2tp.daemon", "--log-level", "warning", "-c"]
            lns = ns.popen(ns.home, daemon + [str(tmp / "home.toml"), "--socket", str(tmp / "home.sock")])
            lac = ns.popen(ns.remote, daemon + [str(tmp / "remote.toml"), "--socket", str(tmp / "remote.sock")])
        else:  # info logs to files: they name the encoding each session got
            daemon = [sys.executable, "-m", "fastl2tp.daemon", "--log-level", "info", "-c"]
            logs = {side: open(tmp / f"{side}.log", "w") for side in ("home", "remote")}
            lns = ns.popen(ns.home, daemon + [str(tmp / "home.toml"), "--socket", str(tmp / "home.sock")],
                           stdout=logs["home"], stderr=logs["home"])
            lac = ns.popen(ns.remote, daemon + [str(tmp / "remote.toml"), "--socket", str(tmp / "remote.sock")],
                           stdout=logs["remote"], stderr=logs["remote"])
        for i in range(1, args.sessions + 1):
            _wait(lambda i=i: (ns.link(ns.remote, f"l2tp-out{i}") or {}).get("local"), 60, f"tunnel {i}")
        if args.mppe != "none":
            want = f"encryption MPPE128 {args.mppe}\n"
            _wait(lambda: all((tmp / f"{side}.log").read_text().count(want) >= args.sessions
                              for side in ("home", "remote")), 30, f"MPPE128 {args.mppe} on every session")
            print(f"every session: MPPE128 {args.mppe} (tunnel mtu {ns.link(ns.remote, 'l2tp-out1')['mtu']})")
        streams = ["-P", str(args.parallel)]
        for name, target, extra in (
            ("bare TCP", [HOME_WAN], streams),
            ("tunnel TCP", targets, streams),
            ("bare UDP -l 1400", [HOME_WAN], ["-u", "-b", "0", "-l", "1400", *streams]),
            ("tunnel UDP -l 1400", targets, ["-u", "-b", "0", "-l", "1400", *streams]),
        ):
            before = {side: cpu_seconds(p.pid) for side, p in (("lns", lns), ("lac", lac))}
            try:
                res = iperf(ns, target, extra, args.duration)
            except RuntimeError as exc:  # recorded as failed (e.g. TCP stalled for good); the others still run
                print(f"{name}: {exc}", file=sys.stderr)
                res = {"gbps": 0.0, "pps": 0.0, "error": str(exc)}
            for side, p in (("lns", lns), ("lac", lac)):
                user, system = (a - b for a, b in zip(cpu_seconds(p.pid), before[side]))
                res[f"cpu_{side}_s"] = round(user + system, 2)
                res[f"user_{side}_s"] = round(user, 2)
                # user-space CPU per packet: the part of the cost that is ours (the rest is the kernel)
                packets = res["pps"] * args.duration
                res[f"user_ns_per_packet_{side}"] = round(user / packets * 1e9) if packets else None
            results[name] = res
        ct = start_ctunnel(ns, tmp, args.mtu)
        if ct is not None:
            for name, extra in (("C tunnel TCP", streams), ("C tunnel UDP -l 1400", ["-u", "-b", "0", "-l", "1400",
                                                                                    *streams])):
                before = {side: cpu_seconds(p.pid) for side, p in (("lns", ct[0]), ("lac", ct[1]))}
                res = iperf(ns, ["10.99.0.1"], extra, args.duration)
                for side, p in (("lns", ct[0]), ("lac", ct[1])):
                    user, system = (a - b for a, b in zip(cpu_seconds(p.pid), before[side]))
                    res[f"cpu_{side}_s"] = round(user + system, 2)
                    packets = res["pps"] * args.duration
                    res[f"user_ns_per_packet_{side}"] = round(user / packets * 1e9) if packets else None
                results[name] = res
        for kind in ("TCP", "UDP -l 1400"):
            t = results[f"tunnel {kind}"]
            t["ratio_to_bare"] = t["gbps"] / results[f"bare {kind}"]["gbps"]
            if f"C tunnel {kind}" in results:
                t["ratio_to_c_tunnel"] = t["gbps"] / results[f"C tunnel {kind}"]["gbps"]
    except Exception:
        for side, f in logs.items():  # --mppe: what the daemons said
            f.flush()
            print(f"--- {side} daemon log (end) ---\n" + (tmp / f"{side}.log").read_text()[-4000:], file=sys.stderr)
        raise
    finally:
        ns.close()
        for f in logs.values():
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.mppe != "none":
        print(f"tunnel runs with MPPE128 {args.mppe}")
    print(f"{'run':<22}{'Gbit/s':>8}{'kpps':>9}{'CPU srv s':>11}{'CPU cli s':>11}{'user ns/pkt':>13}"
          f"{'vs C':>7}{'vs bare':>9}")
    for name, r in results.items():
        ratio = f"{r['ratio_to_bare']:.2f}" if "ratio_to_bare" in r else ""
        vs_c = f"{r['ratio_to_c_tunnel']:.2f}" if "ratio_to_c_tunnel" in r else ""
        user = "" if name.startswith("bare") else f"{r['user_ns_per_packet_lns']}/{r['user_ns_per_packet_lac']}"
        print(f"{name:<22}{r['gbps']:>8.3f}{r['pps'] / 1e3:>9.1f}{r['cpu_lns_s']:>11.2f}{r['cpu_lac_s']:>11.2f}"
              f"{user:>13}{vs_c:>7}{ratio:>9}" + (f"  FAILED: {r['error']}" if "error" in r else ""))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"wrote {out}")
    png = chart(results, out, args.mppe)
    if png is not None:
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
