"""``fastl2tp``: the command-line tool.

  fastl2tp demo [--iperf-seconds N] the manual's Router-to-Router example in two network namespaces (root)
  fastl2tp selftest [--sessions N]   start an LNS and a LAC daemon on loopback, bring a tunnel with N
                                     sessions up and down, and report what happened (exit 0 on success)
  fastl2tp check-config FILE        validate a configuration file (exit 0 when it is good)
  fastl2tp version
  fastl2tp [--socket PATH] [--json] MENU... COMMAND [ITEMS] [property=value ...]
                                    RouterOS menus against a running fastl2tpd, e.g.
                                    ``fastl2tp ppp secret add name=ex password=lkjrht``,
                                    ``fastl2tp interface l2tp-client monitor l2tp-out1 once``
  fastl2tp export [show-sensitive]  the running configuration as commands
  fastl2tp import FILE              run the commands of a file (an export) one by one
  fastl2tp                          the interactive console (commands from stdin when it is no terminal)

The menus talk to the daemon through its control socket (docs/api.md); the CLI never imports the runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

from . import __version__


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemon(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fastl2tp.daemon", "--events-json", "--log-level", "warning",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _describe(side: str, e: dict) -> str:
    kind = e["event"]
    if kind == "TunnelUp":
        return f"{side}: tunnel {e['tunnel-id']} connected to {e['peer'][0]}:{e['peer'][1]} " \
               f"(peer tunnel {e['peer-tunnel-id']}, host {e['peer-host-name']!r})"
    if kind == "SessionUp":
        return f"{side}: session {e['session-id']} in tunnel {e['tunnel-id']} connected " \
               f"(peer session {e['peer-session-id']})"
    if kind in ("SessionDown", "TunnelDown"):
        what = "session " + str(e["session-id"]) if kind == "SessionDown" else "tunnel " + str(e["tunnel-id"])
        return f"{side}: {what} terminated: {e['reason']}"
    return f"{side}: {kind}"


def selftest(sessions: int) -> int:
    port = _free_udp_port()
    print(f"fastl2tp {__version__} self-check: LNS on 127.0.0.1:{port}, LAC dials it with {sessions} session(s)")
    lns = _daemon("--listen", f"127.0.0.1:{port}")
    lac = None
    try:
        time.sleep(0.3)
        if lns.poll() is not None:
            print("LNS failed to start: " + lns.stderr.read().strip(), file=sys.stderr)
            return 1
        lac = _daemon("--connect", f"127.0.0.1:{port}", "--sessions", str(sessions), "--hold", "1")
        lac_events = [json.loads(line) for line in lac.stdout]
        rc = lac.wait(timeout=60)
        for e in lac_events:
            print("  " + _describe("LAC", e))
        os.kill(lns.pid, signal.SIGTERM)
        lns_out, lns_err = lns.communicate(timeout=15)
        for line in lns_out.splitlines():
            print("  " + _describe("LNS", json.loads(line)))
        ups = sum(e["event"] == "SessionUp" for e in lac_events)
        ok = rc == 0 and lns.returncode == 0 and ups == sessions
        print(f"result: {'ok' if ok else 'FAILED'} ({ups}/{sessions} sessions came up, LAC exit {rc}, "
              f"LNS exit {lns.returncode})")
        if not ok:
            sys.stderr.write(lac.stderr.read() + lns_err)
        return 0 if ok else 1
    finally:
        for p in (lac, lns):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def check_config(path: str) -> int:
    from .config import load_file
    from .errors import ConfigError

    try:
        config = load_file(path)
    except ConfigError as exc:
        text = str(exc)
        print(text if text.startswith(path) else f"{path}: {text}", file=sys.stderr)
        return 1
    server = config.l2tp_server.server
    clients = [c for c in config.l2tp_client if not c.disabled]
    print(f"{path}: ok (server {'enabled' if server.enabled else 'disabled'}, {len(config.ppp.secret)} secret(s), "
          f"{len(clients)} of {len(config.l2tp_client)} client(s) enabled)")
    return 0


def _session_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= 100:
        raise argparse.ArgumentTypeError(f"{n} is outside 1..100")
    return n


LOCAL_COMMANDS = ("demo", "selftest", "check-config", "version")
USAGE = """usage: fastl2tp [--socket PATH] [--json] MENU... COMMAND [ITEMS] [property=value ...]
       fastl2tp export [show-sensitive] | import FILE | check-config FILE | demo | selftest | version
       fastl2tp                (interactive console)
menus: interface l2tp-server [server], interface l2tp-client, ppp secret|profile|l2tp-secret|aaa|active,
       ip pool, radius [incoming], fastl2tp daemon|metrics
commands: print [detail|stats], add, set, remove, enable, disable, monitor [once], export"""


def _die(text: str, code: int = 1) -> int:
    print(f"fastl2tp: {text}", file=sys.stderr)
    return code


def _run_lines(console, lines, source: str) -> int:
    from .console import UsageError
    from .ctl.protocol import CtlError

    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            console.run_line(line)
        except (UsageError, CtlError) as exc:
            return _die(f"{source}:{n}: {exc}")
    return 0


def manage(words: list[str], socket_path: str, json_output: bool) -> int:
    """A RouterOS-style command, ``import FILE``, or the console, against the daemon."""
    from .console import Console, CtlClient, UsageError, parse
    from .ctl.protocol import CtlError, Request

    client = CtlClient(socket_path)
    console = Console(client, json_output=json_output)
    try:
        if words and words[0] == "import":
            if len(words) != 2:
                return _die("usage: fastl2tp import FILE", 2)
            try:
                with open(words[1], encoding="utf-8") as fh:
                    lines = fh.read().splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                return _die(f"{words[1]}: cannot read ({getattr(exc, 'strerror', None) or exc})")
            return _run_lines(console, lines, words[1])
        if words:
            return console.run(parse("/", words))
        if not sys.stdin.isatty():
            return _run_lines(console, sys.stdin.read().splitlines(), "stdin")
        try:
            host = client.request(Request("hello")).get("host", "fastl2tp")
        except CtlError as exc:
            return _die(str(exc))
        return console.interact(host)
    except UsageError as exc:
        return _die(str(exc), 2)
    except CtlError as exc:
        return _die(str(exc))
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    socket_path = os.environ.get("FASTL2TP_SOCKET", "")
    json_output = False
    words: list[str] = []
    i = 0
    while i < len(args_in):
        a = args_in[i]
        if a == "--socket" or a.startswith("--socket="):
            if "=" in a:
                socket_path = a.split("=", 1)[1]
            elif i + 1 < len(args_in):
                i += 1
                socket_path = args_in[i]
            else:
                return _die("--socket needs a path", 2)
        elif a == "--json":
            json_output = True
        elif a in ("-h", "--help") and not words:
            print(USAGE)
            return 0
        elif a == "--version":
            print(__version__)
            return 0
        else:
            words.append(a)
        i += 1
    if not words or words[0] not in LOCAL_COMMANDS:
        from .console import DEFAULT_SOCKET

        return manage(words, socket_path or DEFAULT_SOCKET, json_output)
    return local(words)


def local(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="fastl2tp", description="fastl2tp command-line tool")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    dm = sub.add_parser("demo", help="run the manual's Router-to-Router example in two namespaces (root)")
    dm.add_argument("--iperf-seconds", type=int, default=5, metavar="N", help="iperf3 run length, 0 to skip")
    st = sub.add_parser("selftest", help="bring a tunnel up and down between two local daemons")
    st.add_argument("--sessions", type=_session_count, default=2, metavar="N", help="1..100 (default 2)")
    cc = sub.add_parser("check-config", help="validate a configuration file")
    cc.add_argument("file")
    sub.add_parser("version", help="print the version")
    args = p.parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(max(0, args.iperf_seconds))
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "selftest":
        return selftest(args.sessions)
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
