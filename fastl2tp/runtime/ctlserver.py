"""The control socket: JSON lines on a Unix socket (ctl/protocol.py, docs/api.md), served on the
daemon's loop.

A change (add, set, remove, enable, disable) is made to the configuration *file's text* (comments
kept, config/edit.py), loaded and checked, written back atomically (a temporary file in the same
directory, fsync, rename) and only then applied to the running node (``Node.reload``): a change
the loader refuses changes nothing, and what runs is always what a restart would bring back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

from ..config import Config
from ..config.edit import ConfigDocument
from ..ctl import menus
from ..ctl.protocol import (
    MAX_LINE,
    CtlError,
    Reply,
    Request,
    decode_request,
    encode_reply,
)
from ..errors import ConfigError, FastL2tpError
from .metrics import interface_traffic
from .node import Node

log = logging.getLogger(__name__)

__all__ = ["CtlServer", "write_atomically"]

READ_TIMEOUT_S = 300.0  # an idle client connection is closed after this


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text``: never a half-written file, the old mode kept (0600 if new)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself durable too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class CtlServer:
    """Serves the control socket for one ``Node`` whose configuration lives in ``config_path``."""

    def __init__(self, node: Node, config_path: str | os.PathLike[str], socket_path: str | os.PathLike[str],
                 text: str | None = None) -> None:
        self.node = node
        self.config_path = Path(config_path)
        self.socket_path = Path(socket_path)
        self.text = text if text is not None else self.config_path.read_text(encoding="utf-8")
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()  # one change at a time

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        path = self.socket_path
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise FastL2tpError(f"control socket {path}: exists and is not a socket; remove it")
            if _in_use(path):
                raise FastL2tpError(f"control socket {path}: another fastl2tpd answers there")
            path.unlink()
        old = os.umask(0o177)  # the socket is created 0600: root only
        try:
            self._server = await asyncio.start_unix_server(self._client, path=str(path), limit=MAX_LINE)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        log.info("control socket %s", path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            clients = list(self._clients)
            for t in clients:  # a console left open must not hold the daemon's stop
                t.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(OSError):
                self.socket_path.unlink()

    def reload_file(self) -> None:
        """SIGHUP: read the file again and apply it (a bad file is refused and logged)."""
        try:
            text = self.config_path.read_text(encoding="utf-8")
            config = ConfigDocument(text).load()
        except (OSError, UnicodeDecodeError) as exc:
            log.error("reload refused, keeping the running configuration: %s: %s", self.config_path, exc)
            return
        except ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            return
        self.text = text
        self.node.reload(config)

    # --- connections -------------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
                except (asyncio.LimitOverrunError, ValueError):
                    writer.write(encode_reply(Reply(0, False, error=f"request longer than {MAX_LINE} bytes")))
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                reply = await self.handle_line(line)
                writer.write(encode_reply(reply))
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("control socket: internal error")
        finally:
            self._clients.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def handle_line(self, line: bytes) -> Reply:
        rid = 0
        try:
            req = decode_request(line)
            rid = req.id
            return Reply(rid, True, await self.handle(req))
        except (CtlError, ConfigError) as exc:
            return Reply(rid, False, error=str(exc))
        except Exception as exc:
            log.exception("control request failed")
            return Reply(rid, False, error=f"internal error: {type(exc).__name__}: {exc}")

    async def handle(self, req: Request) -> Any:
        config = self.node.config
        if req.cmd == "hello":
            from .. import __version__

            return {"version": __version__, "host": self.node.host_name, "config": str(self.config_path)}
        if req.cmd == "export":
            unknown = set(req.options) - {"show-sensitive"}
            if unknown:
                raise CtlError(f"export: unknown option {min(unknown)} (known: show-sensitive)")
            return {"text": menus.export(config, secrets="show-sensitive" in req.options)}
        menu = menus.get_menu(req.menu)
        if req.cmd not in menu.verbs:
            raise CtlError(f"{menu.words}: no command {req.cmd!r} here (commands: {', '.join(sorted(menu.verbs))})")
        # the sessions (and their counters) only for the menus that show them
        with_sessions = menu.path in ("/ppp/active", "/interface/l2tp-server", "/interface/l2tp-client")
        view = self.view(sessions=with_sessions)
        if req.cmd == "print":
            return menus.print_menu(config, view, menu, req.options)
        if req.cmd == "monitor":
            if len(req.items) != 1:
                raise CtlError(f"{menu.words}: monitor needs one item (number or name)")
            return menus.monitor(config, view, menu, req.items[0])
        if menu.path == "/ppp/active":  # remove = disconnect
            return self._disconnect(view, req)
        async with self._lock:
            # the file as it is now: an edit made by hand since is kept (and applied with this change)
            text = await asyncio.get_running_loop().run_in_executor(None, self._current_text)
            doc = ConfigDocument(text)
            base = self.node.config if text == self.text else _load_hand_edited(doc, self.config_path)
            done = menus.apply(base, doc, req, view)
            new_text = doc.text()
            new_config = doc.load()
            try:
                await asyncio.get_running_loop().run_in_executor(None, write_atomically, self.config_path, new_text)
            except OSError as exc:
                raise CtlError(f"cannot write {self.config_path}: {exc.strerror or exc}; nothing changed") from None
            self.text = new_text
            self.node.reload(new_config)
        # what changed, never the values (they may be passwords)
        log.info("configuration changed via the control socket: /%s %s%s%s", menu.words, req.cmd,
                 "".join(f" {x}" for x in req.items), "".join(f" {k}=..." for k in req.props))
        return {"done": done}

    def _current_text(self) -> str:
        try:
            return self.config_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self.text  # removed under us: written again with the change
        except (OSError, UnicodeDecodeError) as exc:
            raise CtlError(f"cannot read {self.config_path}: {getattr(exc, 'strerror', None) or exc}") from None

    def _disconnect(self, view: menus.RuntimeView, req: Request) -> Any:
        servers = [s for s in view.sessions if s.role == "server"]
        if not req.items:
            raise CtlError("ppp active: remove needs item numbers or names")
        keys = []
        for ref in req.items:
            match = [s for i, s in enumerate(servers) if ref in (str(i), s.user, s.name, s.ifname)]
            if not match:
                raise CtlError(f"ppp active: no such item {ref!r}")
            keys.extend((s.tunnel_id, s.session_id) for s in match)
        for key in keys:
            self.node.disconnect(key, "disconnected by the administrator")
        return {"done": "removed"}

    # --- what is running ----------------------------------------------------------------------------

    def view(self, *, sessions: bool = True) -> menus.RuntimeView:
        """What is running, for print and monitor; ``sessions`` False leaves the sessions out."""
        node = self.node
        config: Config = node.config
        statics = {x.name for x in config.l2tp_server.interface}
        now_mono = time.monotonic()
        infos = []
        for s in node.sessions.values() if sessions else ():
            if s.closed:
                continue
            try:
                rx_p, rx_b, tx_p, tx_b, last_rx, last_tx = interface_traffic(node.dp, s)
            except KeyError:
                rx_p = rx_b = tx_p = tx_b = last_rx = last_tx = 0
            st = {"rx_packets": rx_p, "rx_bytes": rx_b, "tx_packets": tx_p, "tx_bytes": tx_b,
                  "last_rx_ns": last_rx, "last_tx_ns": last_tx}
            up = s.up_since_monotonic if s.up_since is not None else None
            last_ns = max(st.get("last_rx_ns", 0), st.get("last_tx_ns", 0))
            idle = None
            if up is not None:
                idle = max(now_mono - (last_ns / 1e9 if last_ns else up), 0.0)
            server = s.client is None
            status = s.status if s.status else "connecting"
            infos.append(menus.SessionInfo(
                name=s.display_name or f"<l2tp-{s.user}>", ifname=s.ifname, user=s.user,
                role="server" if server else "client", caller_id=s.peer[0],
                local_address=str(s.local_address or ""), remote_address=str(s.remote_address or ""),
                status=status, uptime_s=None if up is None else max(now_mono - up, 0.0), idle_s=idle,
                encoding=s.encoding, mtu=s.mtu, mru=s.mru, tunnel_id=s.tunnel_id, session_id=s.session_id,
                bytes_in=st.get("rx_bytes", 0), bytes_out=st.get("tx_bytes", 0),
                packets_in=st.get("rx_packets", 0), packets_out=st.get("tx_packets", 0),
                static=s.display_name if server and s.display_name in statics else None,
                client=None if server else s.client.conf.name,
                rate_limit=(s.params.rate_limit or "") if s.params is not None else ""))
        usage = {}
        for name, pool in node.pools.items():
            usage[name] = (pool.total, pool.used)
        return menus.RuntimeView(sessions=tuple(infos), client_status={c.conf.name: c.status for c in node.clients},
                                 pool_usage=usage)


def _load_hand_edited(doc: ConfigDocument, path: Path) -> Config:
    try:
        return doc.load()
    except ConfigError as exc:
        raise CtlError(f"{path} was changed by hand and does not load ({exc}); fix it first") from None


def _in_use(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()
