"""The control socket's wire format: versioned JSON lines, one request and one reply each (docs/api.md).

A request is one line holding a JSON object::

    {"v": 1, "id": 7, "cmd": "set", "menu": "/ppp/secret", "items": ["ex"], "props": {"routes": "..."}}

and its reply is one line::

    {"v": 1, "id": 7, "ok": true, "result": {...}}       or
    {"v": 1, "id": 7, "ok": false, "error": "one line of text"}

``items`` name the entries a command is about, by their ``print`` number (an int, or a string of digits)
or by name; ``props`` are RouterOS ``property=value`` pairs with the value as text, exactly as typed on
the command line; ``options`` are the words that change how ``print``/``monitor`` answer (``detail``,
``stats``). A client sends as many requests as it likes on one connection; the daemon answers them in
order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import FastL2tpError

__all__ = [
    "COMMANDS",
    "MAX_LINE",
    "VERSION",
    "CtlError",
    "Reply",
    "Request",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
]

VERSION = 1
MAX_LINE = 1 << 20  # one request or reply line, bytes
COMMANDS = frozenset({"print", "add", "set", "remove", "enable", "disable", "monitor", "export", "hello"})


class CtlError(FastL2tpError):
    """A request the daemon cannot carry out; the text is the one line the user sees."""


@dataclass(frozen=True, slots=True)
class Request:
    cmd: str
    menu: str = "/"
    items: tuple[str, ...] = ()
    props: dict[str, str] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    id: int = 0


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    ok: bool
    result: Any = None
    error: str = ""


def encode_request(r: Request) -> bytes:
    obj: dict[str, Any] = {"v": VERSION, "id": r.id, "cmd": r.cmd, "menu": r.menu}
    if r.items:
        obj["items"] = list(r.items)
    if r.props:
        obj["props"] = dict(r.props)
    if r.options:
        obj["options"] = list(r.options)
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _strings(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    raw = obj.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in raw):
        raise CtlError(f'"{key}" must be a list of strings')
    return tuple(str(x) for x in raw)


def decode_request(line: bytes) -> Request:
    """One request line → ``Request``; anything else is a ``CtlError`` saying what is wrong."""
    if len(line) > MAX_LINE:
        raise CtlError(f"request longer than {MAX_LINE} bytes")
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CtlError(f"request is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CtlError("request must be a JSON object")
    v = obj.get("v")
    if type(v) is not int or v != VERSION:
        raise CtlError(f"protocol version {v!r} not supported (this daemon speaks {VERSION})")
    rid = obj.get("id", 0)
    if not isinstance(rid, int) or isinstance(rid, bool):
        raise CtlError('"id" must be an integer')
    cmd = obj.get("cmd")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise CtlError(f"unknown command {cmd!r} (known: {', '.join(sorted(COMMANDS))})")
    menu = obj.get("menu", "/")
    if not isinstance(menu, str):
        raise CtlError('"menu" must be a string such as "/ppp/secret"')
    props = obj.get("props", {})
    if not isinstance(props, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in props.items()):
        raise CtlError('"props" must be an object of strings')
    return Request(cmd=cmd, menu=menu, items=_strings(obj, "items"), props=dict(props),
                   options=_strings(obj, "options"), id=rid)


def encode_reply(r: Reply) -> bytes:
    obj: dict[str, Any] = {"v": VERSION, "id": r.id, "ok": r.ok}
    if r.ok:
        obj["result"] = r.result
    else:
        obj["error"] = r.error
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def decode_reply(line: bytes) -> Reply:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CtlError(f"daemon reply is not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("v") != VERSION or not isinstance(obj.get("ok"), bool):
        raise CtlError("daemon reply is not a version-1 reply")
    return Reply(id=obj.get("id", 0), ok=obj["ok"], result=obj.get("result"), error=str(obj.get("error", "")))
