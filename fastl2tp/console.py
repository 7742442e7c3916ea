"""The RouterOS-style command language of ``fastl2tp``: one command line → one request to the daemon,
and its reply → the text RouterOS would print. Used for command-line arguments, ``import`` files and the
interactive console (prompt ``[admin@HOST] /interface l2tp-server>``, menu navigation, readline history
and completion).

Talks to the daemon only through the control socket (``CtlClient``); never imports the runtime.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .ctl import menus
from .ctl.protocol import CtlError, Request, decode_reply, encode_request
from .ctl.render import render_print, render_settings

__all__ = ["DEFAULT_SOCKET", "Console", "CtlClient", "UsageError"]

DEFAULT_SOCKET = "/run/fastl2tp/fastl2tpd.sock"
VERBS = ("print", "add", "set", "remove", "enable", "disable", "monitor", "export")
OPTION_WORDS = {"print": {"detail", "stats"}, "monitor": {"once"}, "export": {"show-sensitive"}}


class UsageError(Exception):
    """A command line that does not parse; the text is the one line the user sees."""


class CtlClient:
    """A connection to the daemon's control socket (opened on first use)."""

    def __init__(self, path: str, timeout_s: float = 30.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buf = b""
        self._next_id = 1

    def _connect(self) -> socket.socket:
        if self._sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(self.timeout_s)
            try:
                s.connect(self.path)
            except OSError as exc:
                s.close()
                why = exc.strerror or str(exc)
                raise CtlError(f"cannot reach fastl2tpd at {self.path}: {why} "
                               "(is it running? another socket: --socket PATH)") from None
            self._sock = s
        return self._sock

    def request(self, req: Request) -> Any:
        """Send one request; the result, or ``CtlError`` with the daemon's one-line error."""
        s = self._connect()
        rid = self._next_id
        self._next_id += 1
        req = Request(cmd=req.cmd, menu=req.menu, items=req.items, props=req.props, options=req.options, id=rid)
        try:
            s.sendall(encode_request(req))
            while b"\n" not in self._buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise CtlError("fastl2tpd closed the control connection")
                self._buf += chunk
        except OSError as exc:
            self.close()
            raise CtlError(f"control socket {self.path}: {exc.strerror or exc}") from None
        line, self._buf = self._buf.split(b"\n", 1)
        reply = decode_reply(line)
        if not reply.ok:
            raise CtlError(reply.error)
        return reply.result

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._buf = b""


@dataclass
class Parsed:
    """One command line: where it runs, and what it asks."""

    menu: str
    verb: str | None  # None: navigation only
    items: list[str] = field(default_factory=list)
    props: dict[str, str] = field(default_factory=dict)
    options: list[str] = field(default_factory=list)


def parse(cwd: str, tokens: list[str]) -> Parsed:
    """``["interface", "l2tp-client", "set", "0", "user=x"]`` (from ``cwd``) → ``Parsed``."""
    try:
        path, rest = menus.find_menu(cwd, tokens)
    except CtlError as exc:
        raise UsageError(str(exc)) from None
    if not rest:
        return Parsed(path, None)
    verb, args = rest[0], rest[1:]
    if verb == "export":
        bad = [a for a in args if a not in OPTION_WORDS["export"]]
        if bad:
            raise UsageError(f"export: unknown argument {bad[0]!r} (known: show-sensitive)")
        return Parsed(path, verb, options=args)
    menu = menus.MENUS.get(path)
    if menu is None:
        sub = menus.children(path)
        where = path.strip("/").replace("/", " ") or "/"
        if verb in VERBS:
            raise UsageError(f"{where}: no command {verb!r} here (sub-menus: {', '.join(sub)})")
        raise UsageError(f"{where}: no such menu or command {verb!r} (sub-menus: {', '.join(sub)})")
    if verb not in menu.verbs:
        known = ", ".join(sorted(menu.verbs))
        sub = menus.children(path)
        extra = f"; sub-menus: {', '.join(sub)}" if sub else ""
        raise UsageError(f"{menu.words}: no such command or menu {verb!r} (commands: {known}{extra})")
    p = Parsed(path, verb)
    for a in args:
        if "=" in a and not a.startswith("="):
            key, value = a.split("=", 1)
            if key in p.props:
                raise UsageError(f"{verb}: {key} given twice")
            p.props[key] = value
        elif a in OPTION_WORDS.get(verb, ()):
            p.options.append(a)
        elif a:
            p.items.extend(x for x in a.split(",") if x)
    if verb in ("print", "monitor", "remove", "enable", "disable") and p.props:
        raise UsageError(f"{verb}: takes no property=value pairs (got {next(iter(p.props))}=...)")
    if verb == "print" and p.items:
        raise UsageError(f"print: unknown argument {p.items[0]!r} (known: detail, stats)")
    if verb == "add" and p.items:
        raise UsageError(f"add: expected property=value, got {p.items[0]!r}")
    return p


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$", "?": "?", "_": " ",
            "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_HEX = "0123456789abcdefABCDEF"


def split(line: str) -> list[str]:
    """A console line → words, as RouterOS reads them: blanks separate words, ``"..."`` holds blanks
    with the escapes ``\\" \\\\ \\n \\t \\r \\$ \\HH`` (what ``export`` writes), ``#`` before a word starts a
    comment, and outside quotes a backslash takes the next character as it is."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            i += 1
        elif c == "#" and not in_word:
            break
        elif c == '"':
            in_word = True
            i += 1
            while True:
                if i >= n:
                    raise UsageError("cannot parse the line: no closing quotation mark")
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    e = line[i + 1] if i + 1 < n else ""
                    if e in _ESCAPES and e:
                        cur.append(_ESCAPES[e])
                        i += 2
                    elif len(line) >= i + 3 and e in _HEX and line[i + 2] in _HEX:
                        cur.append(chr(int(line[i + 1:i + 3], 16)))
                        i += 3
                    else:
                        raise UsageError(f"cannot parse the line: unknown escape \\{e} in quotes")
                    continue
                cur.append(c)
                i += 1
        elif c == "\\" and i + 1 < n:
            cur.append(line[i + 1])
            in_word = True
            i += 2
        else:
            cur.append(c)
            in_word = True
            i += 1
    if in_word:
        words.append("".join(cur))
    return words


class Console:
    """Runs parsed commands against the daemon and prints what RouterOS would."""

    def __init__(self, client: CtlClient, out: TextIO = sys.stdout, *, json_output: bool = False,
                 monitor_interval_s: float = 1.0) -> None:
        self.client = client
        self.out = out
        self.json = json_output
        self.cwd = "/"
        self.monitor_interval_s = monitor_interval_s

    def _emit_json(self, obj: Any) -> None:
        self.out.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")

    def run(self, p: Parsed, *, navigate: bool = False) -> int:
        if p.verb is None:
            if navigate:
                self.cwd = p.menu
                return 0
            where = p.menu.strip("/").replace("/", " ") or "/"
            menu = menus.MENUS.get(p.menu)
            cmds = f" (commands: {', '.join(sorted(menu.verbs))})" if menu else ""
            raise UsageError(f"{where}: missing command{cmds}")
        if p.verb == "export":
            result = self.client.request(Request("export", "/", options=tuple(p.options)))
            if self.json:
                self._emit_json(result)
            else:
                self.out.write(result["text"])
            return 0
        if p.verb == "monitor":
            return self._monitor(p)
        result = self.client.request(Request(p.verb, p.menu, tuple(p.items), dict(p.props), tuple(p.options)))
        if self.json:
            self._emit_json(result)
        elif p.verb == "print":
            self.out.write(render_print(result))
        return 0

    def _monitor(self, p: Parsed) -> int:
        if len(p.items) != 1:
            raise UsageError("monitor: needs one item (number or name)")
        req = Request("monitor", p.menu, tuple(p.items))
        once = "once" in p.options or self.json
        tty = hasattr(self.out, "isatty") and self.out.isatty()
        shown = 0
        try:
            while True:
                result = self.client.request(req)
                if self.json:
                    self._emit_json(result)
                else:
                    text = render_settings(result["values"])
                    if tty and shown:
                        self.out.write(f"\x1b[{shown}F\x1b[J")  # redraw in place, as RouterOS does
                    elif shown:
                        self.out.write("\n")
                    self.out.write(text)
                    shown = text.count("\n")
                self.out.flush()
                if once:
                    return 0
                time.sleep(self.monitor_interval_s)
        except KeyboardInterrupt:
            return 0

    def run_line(self, line: str) -> int:
        return self.run(parse(self.cwd, split(line)), navigate=True)

    # --- interactive -------------------------------------------------------------------------------

    def prompt(self, host: str) -> str:
        where = self.cwd.strip("/").replace("/", " ")
        return f"[admin@{host}] {where}> " if where else f"[admin@{host}] > "

    def complete(self, line: str, text: str) -> list[str]:
        """Completions of the word ``text`` at the end of ``line`` (menus, commands, properties)."""
        words = split_loose(line)
        if line and not line.endswith(" ") and words:
            words = words[:-1]
        try:
            path, rest = menus.find_menu(self.cwd, words)
        except CtlError:
            return []
        menu = menus.MENUS.get(path)
        if not rest:
            options = list(menus.children(path)) + (sorted(menu.verbs) if menu else []) + ["..", "/"]
            if path == "/":
                options.append("export")
            return sorted({o + " " for o in options if o.startswith(text)})
        if menu is None:
            return []
        verb = rest[0]
        options = []
        if verb in ("add", "set"):
            options = [f"{k}=" for k in menu.properties()]
        options += sorted(OPTION_WORDS.get(verb, ()))
        return sorted({o for o in options if o.startswith(text)})

    def help_text(self) -> str:
        menu = menus.MENUS.get(self.cwd)
        lines = []
        sub = menus.children(self.cwd)
        if sub:
            lines.append("menus: " + ", ".join(sub))
        if menu is not None:
            lines.append("commands: " + ", ".join(sorted(menu.verbs)))
            if menu.properties():
                lines.append("properties: " + ", ".join(menu.properties()))
        lines.append("also: .. (up), / (top), export, quit")
        return "\n".join(lines) + "\n"

    def interact(self, host: str, err: TextIO = sys.stderr, input_fn: Callable[[str], str] = input) -> int:
        try:
            import readline
        except ImportError:  # pragma: no cover - readline is part of CPython on Linux
            readline = None  # type: ignore[assignment]
        history = os.path.expanduser("~/.fastl2tp_history")
        if readline is not None:
            try:
                readline.read_history_file(history)
            except OSError:
                pass
            matches: list[str] = []

            def completer(text: str, state: int) -> str | None:
                nonlocal matches
                if state == 0:
                    matches = self.complete(readline.get_line_buffer()[: readline.get_endidx()], text)
                return matches[state] if state < len(matches) else None

            readline.set_completer(completer)
            readline.set_completer_delims(" \t")
            readline.parse_and_bind("tab: complete")
        try:
            while True:
                try:
                    line = input_fn(self.prompt(host))
                except EOFError:
                    self.out.write("\n")
                    return 0
                except KeyboardInterrupt:
                    self.out.write("\n")
                    continue
                line = line.strip()
                if not line:
                    continue
                if line in ("quit", "exit", "/quit"):
                    return 0
                if line in ("?", "help"):
                    self.out.write(self.help_text())
                    continue
                try:
                    self.run_line(line)
                except (UsageError, CtlError) as exc:
                    err.write(f"failure: {exc}\n")
                    err.flush()
                self.out.flush()
        finally:
            if readline is not None:
                try:
                    readline.write_history_file(history)
                except OSError:
                    pass


def split_loose(line: str) -> list[str]:
    """``split`` that tolerates an unfinished quote (for completion while typing)."""
    try:
        return split(line)
    except UsageError:
        return line.split()
