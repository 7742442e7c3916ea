"""``fastl2tpd``: the fastl2tp daemon.

``fastl2tpd -c /etc/fastl2tp/fastl2tpd.toml`` runs what the configuration says (server, clients, PPP,
interfaces and routes) in the foreground, logging to stderr; SIGTERM stops it cleanly (StopCCN to the
peers, interfaces and routes removed, exit 0).

``--listen``/``--connect`` run only the L2TP control plane (tunnels and calls, no PPP, no interfaces),
printing events as JSON lines with ``--events-json``: a tool for interoperability and load tests.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import json
import logging
import signal
import sys

from .control import events as ev
from .control.endpoint import Endpoint, EndpointConfig, TunnelSecret
from .control.transport import TransportConfig
from .control.tunnel import TunnelConfig
from .runtime.driver import ControlDriver, open_udp
from .wire.l2tp import UDP_PORT

log = logging.getLogger("fastl2tpd")


def host_port(text: str, default_port: int = UDP_PORT) -> tuple[str, int]:
    """'10.0.0.1', '10.0.0.1:1701', '[::1]:1701' → (host, port); ValueError with a clear text otherwise."""
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"bad address {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad address {text!r}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, p = text.split(":")
        port = int(p)
    ipaddress.ip_address(host)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return host, port


def _address_arg(text: str) -> tuple[str, int]:
    try:
        return host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (expected IP or IP:PORT)") from None


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fastl2tpd", description="fastl2tp daemon: L2TPv2 LNS and LAC.")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("-c", "--config", metavar="FILE", help="run as configured in this TOML file")
    mode.add_argument("--listen", type=_address_arg, metavar="IP[:PORT]", help="serve as LNS on this address")
    mode.add_argument("--connect", type=_address_arg, metavar="IP[:PORT]", help="dial this LNS as LAC")
    p.add_argument("--bind", type=_address_arg, default=None, metavar="IP[:PORT]",
                   help="LAC: local address to dial from (default: any, ephemeral port)")
    p.add_argument("--sessions", type=int, default=1, help="LAC: calls to place in the tunnel (default 1)")
    p.add_argument("--hold", type=_positive, default=None, metavar="SECONDS",
                   help="LAC: hang up after the calls have been up this long, then exit")
    p.add_argument("--secret", default=None, help="tunnel secret (RFC 2661 tunnel authentication)")
    p.add_argument("--host-name", default="fastl2tp", help="Host Name AVP (default fastl2tp)")
    p.add_argument("--hello-interval", type=_positive, default=60.0, metavar="SECONDS")
    p.add_argument("--receive-window", type=int, default=4)
    p.add_argument("--per-tunnel-port", action="store_true", help="LNS: answer each tunnel from its own port")
    p.add_argument("--events-json", action="store_true", help="print tunnel/session events as JSON lines")
    p.add_argument("--socket", default=None, metavar="PATH",
                   help="control socket (default: [daemon] socket, /run/fastl2tp/fastl2tpd.sock)")
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                   help="overrides [daemon] log-level (default info)")
    return p


def _event_json(e: ev.Event) -> str:
    d = {"event": type(e).__name__}
    for f in dataclasses.fields(e):
        v = getattr(e, f.name)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif dataclasses.is_dataclass(v):
            v = {k: (x.decode("utf-8", "replace") if isinstance(x, bytes) else x)
                 for k, x in dataclasses.asdict(v).items()}
        d[f.name.replace("_", "-")] = v
    return json.dumps(d)


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    secret = args.secret.encode() if args.secret is not None else None
    if not 1 <= args.receive_window <= 32767:
        log.error("--receive-window must be 1..32767")
        return 2
    tcfg = TunnelConfig(host_name=args.host_name.encode(), hello_interval_s=args.hello_interval, secret=secret,
                        transport=TransportConfig(receive_window=args.receive_window))
    lns = args.listen is not None
    secrets = (TunnelSecret(ipaddress.ip_network("::/0"), secret),
               TunnelSecret(ipaddress.ip_network("0.0.0.0/0"), secret)) if (secret and lns) else ()
    endpoint = Endpoint(EndpointConfig(tunnel=tcfg, accept_tunnels=lns, secrets=secrets))
    bind = args.listen if lns else (args.bind or (("::" if ":" in args.connect[0] else "0.0.0.0"), 0))
    try:
        sock = open_udp(*bind)
    except OSError as exc:
        log.error("cannot bind UDP %s:%d: %s", bind[0], bind[1], exc.strerror or exc)
        return 1
    done = asyncio.Event()
    state = {"rc": 0, "up": 0, "tunnel": None}

    def on_event(e: ev.Event) -> None:
        if args.events_json:
            print(_event_json(e), flush=True)
        if isinstance(e, ev.TunnelDown) and not lns:
            if not e.by_peer and e.result is None or state["up"] < args.sessions:
                state["rc"] = state["rc"] or 1
            done.set()
        if isinstance(e, ev.SessionUp) and not lns:
            state["up"] += 1
            if state["up"] == args.sessions and args.hold is not None:
                loop.call_later(args.hold, hang_up)

    def hang_up() -> None:
        tid = state["tunnel"]
        if tid in endpoint.tunnels:
            for sid in list(endpoint.tunnels[tid].sessions):
                driver.call(endpoint.close_session, tid, sid)
            driver.call(endpoint.close_tunnel, tid)

    driver = ControlDriver(endpoint, sock, on_event, loop, per_tunnel_port=args.per_tunnel_port)
    log.info("%s on %s:%d", "LNS listening" if lns else "LAC dialing from", *driver.local_address)

    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    if not lns:
        tid = driver.call(endpoint.open_tunnel, args.connect)
        state["tunnel"] = tid
        for _ in range(args.sessions):
            driver.call(endpoint.open_session, tid)

    waiters = {asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(done.wait())}
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        w.cancel()
    if stopping.is_set():
        log.info("shutting down: closing %d tunnel(s)", len(endpoint.tunnels))
        driver.call(endpoint.close_all)
    # Give StopCCNs their chance to be acknowledged (bounded), then leave.
    deadline = loop.time() + 3.0
    while any(t.state.value == "closing" for t in endpoint.tunnels.values()) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    driver.close()
    return state["rc"]


async def serve(config, path: str, text: str, socket_path: str | None = None) -> int:
    """Run a configured node until SIGTERM/SIGINT, with its control socket; SIGHUP reloads ``path``."""
    from .errors import FastL2tpError
    from .runtime.ctlserver import CtlServer
    from .runtime.netlink import Netlink
    from .runtime.node import Node

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with Netlink() as netlink:
        node = Node(config, netlink)
        ctl = CtlServer(node, path, socket_path or config.daemon.socket, text)
        loop.add_signal_handler(signal.SIGHUP, ctl.reload_file)
        try:
            await ctl.start()
        except (OSError, FastL2tpError) as exc:
            log.error("cannot start: %s (choose another with --socket or [daemon] socket)", exc)
            return 1
        try:
            await node.start()
        except (OSError, FastL2tpError) as exc:
            log.error("cannot start: %s", exc)
            await node.stop()
            await ctl.stop()
            return 1
        await stop.wait()
        log.info("stopping")
        await ctl.stop()
        await node.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.sessions < 0 or args.sessions > 65535:
        parser().error("--sessions must be 0..65535")
    config = None
    level = args.log_level or "info"
    if args.config is not None:
        from .config import load_text
        from .errors import ConfigError

        try:
            try:
                with open(args.config, encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{args.config}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
            config = load_text(text)
        except ConfigError as exc:
            text = str(exc)
            where = "" if text.startswith(str(args.config)) else f"{args.config}: "
            print(f"fastl2tpd: {where}{text}", file=sys.stderr)
            return 2
        level = args.log_level or config.daemon.log_level.value
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvloop

    if config is not None:
        return uvloop.run(serve(config, args.config, text, args.socket))
    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
