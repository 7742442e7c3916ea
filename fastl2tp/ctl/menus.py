"""The RouterOS menu tree and what its commands do: print rows, monitor values, changes, export.

Each configuration menu is a table of the TOML file (``config/model.py``)::

    /interface l2tp-server server   [l2tp-server.server]       settings (print, set)
    /interface l2tp-server          [[l2tp-server.interface]]  items + the running sessions (dynamic)
    /interface l2tp-client          [[l2tp-client]]            items (+ monitor)
    /ppp secret, profile, l2tp-secret, aaa;  /ip pool;  /radius, /radius incoming
    /ppp active                     the running server sessions (print [stats], remove = disconnect)
    /fastl2tp daemon, metrics       fastl2tp's own settings

Pure: the daemon (runtime/ctlserver.py) hands in the configuration, the document being edited and a
``RuntimeView`` snapshot of its sessions; the CLI uses the tree for parsing and completion.
Every error is a ``CtlError`` (or the loader's ``ConfigError``) with one line of text.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import model as m
from ..config import values as v
from ..config.edit import ConfigDocument
from ..config.load import changed_settings, table_keys
from .protocol import CtlError, Request

__all__ = [
    "MENUS",
    "Menu",
    "RuntimeView",
    "SessionInfo",
    "apply",
    "children",
    "export",
    "find_menu",
    "format_uptime",
    "monitor",
    "print_menu",
    "session_id_text",
]


# --- the tree ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Menu:
    path: str  # "/ppp/secret"
    toml: tuple[str, ...] | None  # the TOML table path; None for runtime-only menus
    cls: type | None  # the model class of its items / settings
    many: bool  # a list of items (add/remove/...) rather than one table of settings
    columns: tuple[str, ...] = ()  # print's columns; empty: print shows key=value rows
    flags: tuple[tuple[str, str], ...] = ()
    verbs: frozenset[str] = frozenset()
    help: str = ""

    @property
    def words(self) -> str:
        return self.path.strip("/").replace("/", " ")

    def properties(self) -> list[str]:
        """The settable properties (RouterOS names), in the model's order."""
        if self.cls is None:
            return []
        return [k for k, f in table_keys(self.cls).items() if "kind" in f.metadata]


LIST_VERBS = frozenset({"print", "add", "set", "remove", "enable", "disable", "export"})
SETTINGS_VERBS = frozenset({"print", "set", "export"})
X = ("X", "disabled")


def _list(path: str, toml: tuple[str, ...], cls: type, columns: tuple[str, ...] = (),
          flags: tuple[tuple[str, str], ...] = (X,), extra: Iterable[str] = (), help: str = "") -> Menu:
    verbs = set(LIST_VERBS) | set(extra)
    if "disabled" not in table_keys(cls):
        verbs -= {"enable", "disable"}
    return Menu(path, toml, cls, True, columns, flags, frozenset(verbs), help)


def _settings(path: str, toml: tuple[str, ...], cls: type, help: str = "") -> Menu:
    return Menu(path, toml, cls, False, (), (), SETTINGS_VERBS, help)


_MENU_LIST = [
    _list("/ip/pool", ("ip", "pool"), m.Pool, ("name", "ranges", "next-pool", "total", "used", "available"),
          flags=(), help="address pools"),
    _list("/ppp/profile", ("ppp", "profile"), m.Profile,
          ("name", "local-address", "remote-address", "use-encryption", "only-one"),
          flags=(("*", "default"),), help="settings shared by sessions"),
    _list("/ppp/secret", ("ppp", "secret"), m.Secret,
          ("name", "service", "caller-id", "profile", "local-address", "remote-address"),
          help="local users"),
    _list("/ppp/l2tp-secret", ("ppp", "l2tp-secret"), m.L2tpSecret, ("address",), flags=(),
          help="tunnel secrets (RFC 2661 tunnel authentication)"),
    _settings("/ppp/aaa", ("ppp", "aaa"), m.Aaa, "RADIUS use and accounting"),
    _list("/radius", ("radius",), m.RadiusServer, ("service", "address", "authentication-port",
                                                   "accounting-port", "timeout"), help="RADIUS servers"),
    _settings("/radius/incoming", ("radius-incoming",), m.RadiusIncoming, "RADIUS Disconnect/CoA"),
    _settings("/interface/l2tp-server/server", ("l2tp-server", "server"), m.L2tpServer, "the L2TP server"),
    _list("/interface/l2tp-server", ("l2tp-server", "interface"), m.L2tpServerInterface,
          ("name", "user", "mtu", "client-address", "uptime", "encoding"),
          flags=(X, ("D", "dynamic"), ("R", "running")), extra=("monitor",),
          help="server interfaces: static names for users, and the running sessions"),
    _list("/interface/l2tp-client", ("l2tp-client",), m.L2tpClient, flags=(X, ("R", "running")),
          extra=("monitor",), help="L2TP clients"),
    Menu("/ppp/active", None, None, True, ("name", "service", "caller-id", "address", "uptime", "encoding",
                                           "session-id"),
         (), frozenset({"print", "remove"}), "running server sessions (remove disconnects)"),
]
# fastl2tp's own tables ([daemon], [metrics], any later one) under /fastl2tp
_covered = {mn.toml for mn in _MENU_LIST}
for _f in dataclasses.fields(m.Config):
    if (_f.name.replace("_", "-"),) not in _covered and "table" in _f.metadata:
        _cls = _f.metadata["table"]
        if any("kind" in x.metadata for x in dataclasses.fields(_cls)):
            _MENU_LIST.append(_settings(f"/fastl2tp/{_f.name.replace('_', '-')}", (_f.name.replace("_", "-"),), _cls,
                                        (_cls.__doc__ or "").strip().splitlines()[0]))

MENUS: dict[str, Menu] = {mn.path: mn for mn in _MENU_LIST}
EXPORT_ORDER = [mn for mn in _MENU_LIST if mn.toml is not None]  # references point backwards


def children(path: str) -> list[str]:
    """The names of the sub-menus under ``path`` ("/" → ["fastl2tp", "interface", "ip", ...])."""
    base = path.rstrip("/") + "/"
    out = set()
    for p in MENUS:
        if p.startswith(base) and p != base:
            out.add(p[len(base):].split("/")[0])
    return sorted(out)


def is_menu_dir(path: str) -> bool:
    return path == "/" or path in MENUS or bool(children(path))


def find_menu(cwd: str, words: list[str]) -> tuple[str, list[str]]:
    """Walk ``words`` as menu names from ``cwd`` (``/x`` absolute, ``..`` up) as far as they go: the
    menu path reached and the words left (the command and its arguments)."""
    path = cwd or "/"
    rest = list(words)
    while rest:
        w = rest[0]
        if w.startswith("/") and w != "/":
            parts = [p for p in w.split("/") if p]
            cand = "/" + "/".join(parts)
            if not is_menu_dir(cand):
                raise CtlError(f"no such menu: {w}")
            path = cand
        elif w == "/":
            path = "/"
        elif w == "..":
            path = path.rsplit("/", 1)[0] or "/"
        else:
            cand = (path.rstrip("/") + "/" + w) if path != "/" else "/" + w
            if not is_menu_dir(cand):
                break
            path = cand
        rest.pop(0)
    return path, rest


def get_menu(path: str) -> Menu:
    menu = MENUS.get(path)
    if menu is None:
        sub = children(path)
        hint = f" (sub-menus: {', '.join(sub)})" if sub else ""
        raise CtlError(f"{path.strip('/').replace('/', ' ') or '/'}: not a menu with commands{hint}")
    return menu


# --- what the daemon knows that the configuration does not ---------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One running session, as print and monitor show it."""

    name: str  # interface name as RouterOS shows it: "<l2tp-ex>", a static name, or the client's name
    ifname: str  # the Linux interface
    user: str
    role: str  # "server" | "client"
    caller_id: str  # the peer's IP address
    local_address: str
    remote_address: str
    status: str
    uptime_s: float | None
    idle_s: float | None
    encoding: str
    mtu: int
    mru: int
    tunnel_id: int
    session_id: int
    bytes_in: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    packets_out: int = 0
    static: str | None = None  # the /interface l2tp-server entry it runs under
    rate_limit: str = ""  # the profile's rate-limit, or RADIUS Mikrotik-Rate-Limit
    client: str | None = None  # the /interface l2tp-client it belongs to


@dataclass(frozen=True, slots=True)
class RuntimeView:
    sessions: tuple[SessionInfo, ...] = ()
    client_status: dict[str, str] = field(default_factory=dict)  # client name → status text
    pool_usage: dict[str, tuple[int, int]] = field(default_factory=dict)  # pool name → (total, used)


# --- values as RouterOS shows them ---------------------------------------------------------------------

# RouterOS quotes free text and names in print detail (name="ex" caller-id="" routes="..."), but not
# references to other items (profile=default) nor addresses and numbers
_QUOTED = (v.Text, v.OptText, v.Name, v.IfName, v.Routes, v.AbsPath)
_REFERENCES = {"profile", "default-profile", "next-pool", "bridge"}


_ESCAPE_OUT = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "$": "\\$"}


def quote_text(text: str) -> str:
    """``"text"`` with RouterOS escapes (``\\"``, ``\\\\``, ``\\n``, ``\\t``, ``\\r``, ``\\$``, ``\\HH`` for other
    control characters): one word for ``console.split`` whatever the text holds."""
    out = []
    for ch in text:
        if ch in _ESCAPE_OUT:
            out.append(_ESCAPE_OUT[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def needs_quotes(text: str) -> bool:
    return text == "" or any(ch.isspace() or ch in '"\\=;#$[]{}\'' or ord(ch) < 0x20 or ord(ch) == 0x7F
                             for ch in text)


def session_id_text(tunnel_id: int, session_id: int) -> str:
    """``/ppp active``'s session-id (RouterOS shows e.g. 0x81D00001); also the RADIUS Acct-Session-Id."""
    return f"0x{tunnel_id:04X}{session_id:04X}"


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    w, s = divmod(s, 7 * 86400)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    mi, s = divmod(s, 60)
    out = "".join(f"{n}{u}" for n, u in ((w, "w"), (d, "d"), (h, "h"), (mi, "m")) if n)
    return out + f"{s}s" if s or not out else out


def _display(kind: v.Kind[Any], value: Any, quote: bool = True, key: str = "") -> str:
    raw = kind.dump(value)
    if isinstance(raw, bool):
        text = "yes" if raw else "no"
    elif isinstance(raw, list):
        text = ",".join(str(x) for x in raw)
    else:
        text = str(raw)
    if quote and ((isinstance(kind, _QUOTED) and key not in _REFERENCES) or (text and needs_quotes(text))):
        return quote_text(text)
    return text


def _json(kind: v.Kind[Any], value: Any) -> Any:
    raw = kind.dump(value)
    return raw


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {k: f for k, f in table_keys(cls).items() if "kind" in f.metadata}


def item_values(obj: Any, *, secrets: bool = False, quote: bool = True) -> dict[str, str]:
    """Every property of a configuration item as RouterOS prints it; passwords only with ``secrets``."""
    out = {}
    for key, f in _fields(type(obj)).items():
        if f.metadata.get("secret") and not secrets:
            continue
        text = _display(f.metadata["kind"], getattr(obj, f.name), quote, key)
        if text == "" and quote:
            continue  # an unset address: RouterOS leaves it out of print
        out[key] = text
    return out


def item_data(obj: Any, *, secrets: bool = False) -> dict[str, Any]:
    out = {}
    for key, f in _fields(type(obj)).items():
        if f.metadata.get("secret") and not secrets:
            continue
        out[key] = _json(f.metadata["kind"], getattr(obj, f.name))
    return out


# --- print ---------------------------------------------------------------------------------------------


def _items(config: m.Config, menu: Menu) -> tuple[Any, ...]:
    node: Any = config
    assert menu.toml is not None
    for key in menu.toml:
        node = getattr(node, key.replace("-", "_"))
    return node


def _row(n: int | None, flags: str, values: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    return {"n": n, "flags": flags, "values": values, "data": data}


def _session_columns(s: SessionInfo) -> dict[str, str]:
    return {"mtu": str(s.mtu) if s.mtu else "", "client-address": s.caller_id,
            "uptime": format_uptime(s.uptime_s), "encoding": s.encoding or "none"}


def _session_data(s: SessionInfo) -> dict[str, Any]:
    return dataclasses.asdict(s)


def _server_rows(config: m.Config, rt: RuntimeView) -> list[dict[str, Any]]:
    statics = config.l2tp_server.interface
    running = {s.static: s for s in rt.sessions if s.role == "server" and s.static is not None}
    rows = []
    for i, st in enumerate(statics):
        s = running.get(st.name)
        flags = ("X" if st.disabled else "") + ("R" if s is not None else "")
        values = {"name": st.name, "user": st.user, "mtu": "", "client-address": "", "uptime": "", "encoding": ""}
        data = item_data(st)
        if s is not None:
            values.update(_session_columns(s))
            data["session"] = _session_data(s)
        rows.append(_row(i, flags, values, data))
    dynamic = [s for s in rt.sessions if s.role == "server" and s.static is None]
    for j, s in enumerate(dynamic):
        values = {"name": s.name, "user": s.user, **_session_columns(s)}
        rows.append(_row(len(statics) + j, "DR", values, {"name": s.name, "user": s.user, "session": _session_data(s)}))
    return rows


def _active_rows(rt: RuntimeView, stats: bool) -> list[dict[str, Any]]:
    rows = []
    for n, s in enumerate(x for x in rt.sessions if x.role == "server"):
        values = {"name": s.user, "service": "l2tp", "caller-id": s.caller_id, "address": s.remote_address,
                  "uptime": format_uptime(s.uptime_s), "encoding": s.encoding or "none",
                  "session-id": session_id_text(s.tunnel_id, s.session_id)}
        if s.rate_limit:
            values["limit"] = s.rate_limit  # shown by print detail (RouterOS: limit-bytes/rate in detail)
        if stats:
            values.update({"bytes-in": str(s.bytes_in), "bytes-out": str(s.bytes_out),
                           "packets-in": str(s.packets_in), "packets-out": str(s.packets_out)})
        rows.append(_row(n, "", values, _session_data(s)))
    return rows


def _quoted(rows: list[dict[str, Any]], detail: bool) -> list[dict[str, Any]]:
    """In ``detail``, every ``key=value`` reads back as one word: values with spaces get quotes."""
    if detail:
        for row in rows:
            row["values"] = {k: quote_text(x) if x and needs_quotes(x) else x for k, x in row["values"].items()}
    return rows


def print_menu(config: m.Config, rt: RuntimeView, menu: Menu, options: Iterable[str] = ()) -> dict[str, Any]:
    """The result of ``print`` (see docs/api.md): rows with display values and JSON data."""
    opts = set(options)
    unknown = opts - {"detail", "stats", "show-sensitive"}
    if unknown:
        raise CtlError(f"print: unknown option {min(unknown)} (known: detail, stats)")
    detail = "detail" in opts
    if menu.path == "/ppp/active":
        stats = "stats" in opts
        cols = list(menu.columns) + (["bytes-in", "bytes-out", "packets-in", "packets-out"] if stats else [])
        return {"style": "detail" if detail else "table", "flags": [], "columns": cols,
                "rows": _quoted(_active_rows(rt, stats), detail)}
    if not menu.many:
        obj = _items(config, menu)
        return {"style": "settings", "values": item_values(obj, quote=False), "data": item_data(obj)}
    flags = [list(f) for f in menu.flags]
    if menu.path == "/interface/l2tp-server":
        rows = _quoted(_server_rows(config, rt), detail)
        return {"style": "detail" if detail else "table", "flags": flags, "columns": list(menu.columns),
                "rows": rows}
    # secrets print the password only in ``detail`` of /ppp secret, as the issue asks
    secrets = detail and menu.path == "/ppp/secret"
    running = {s.client for s in rt.sessions if s.client is not None and s.status == "connected"}
    rows = []
    for i, obj in enumerate(_items(config, menu)):
        fl = ""
        if getattr(obj, "disabled", False):
            fl += "X"
        if menu.path == "/ppp/profile" and obj.name in m.BUILTIN_PROFILES:
            fl += "*"
        if menu.path == "/interface/l2tp-client" and obj.name in running:
            fl += "R"
        values, data = item_values(obj, secrets=secrets), item_data(obj, secrets=secrets)
        if menu.path == "/ip/pool":
            total, used = rt.pool_usage.get(obj.name, (sum(r.size for r in obj.ranges), 0))
            values.update({"total": str(total), "used": str(used), "available": str(total - used)})
            data.update({"total": total, "used": used, "available": total - used})
        if menu.path == "/interface/l2tp-client":
            data["status"] = rt.client_status.get(obj.name, "")
        rows.append(_row(i, fl, values, data))
    style = "detail" if detail or not menu.columns else "table"
    if style == "table":  # table cells are not quoted
        for i, obj in enumerate(_items(config, menu)):
            plain = item_values(obj, secrets=secrets, quote=False)
            rows[i]["values"] = {k: plain.get(k, x) for k, x in rows[i]["values"].items()}
    return {"style": style, "flags": flags, "columns": list(menu.columns), "rows": rows}


# --- monitor -------------------------------------------------------------------------------------------


def _monitor_values(s: SessionInfo | None, status: str) -> dict[str, Any]:
    if s is None or s.status != "connected":
        return {"status": s.status if s is not None else status}
    return {"status": s.status, "uptime": format_uptime(s.uptime_s), "idle-time": format_uptime(s.idle_s),
            "encoding": s.encoding or "none", "mtu": s.mtu, "mru": s.mru, "local-address": s.local_address,
            "remote-address": s.remote_address}


def monitor(config: m.Config, rt: RuntimeView, menu: Menu, item: str) -> dict[str, Any]:
    if menu.path == "/interface/l2tp-client":
        clients = config.l2tp_client
        i = _resolve(menu, clients, item)
        c = clients[i]
        s = next((x for x in rt.sessions if x.client == c.name), None)
        status = "disabled" if c.disabled else rt.client_status.get(c.name, "terminated")
        return {"name": c.name, "values": _monitor_values(s, status)}
    if menu.path == "/interface/l2tp-server":
        rows = _server_rows(config, rt)
        for row in rows:
            names = {row["values"]["name"], str(row["n"]), row["data"].get("session", {}).get("ifname", "")}
            if item in names or item.strip("<>") in {x.strip("<>") for x in names}:
                sess = row["data"].get("session")
                s = SessionInfo(**sess) if sess else None
                return {"name": row["values"]["name"], "values": _monitor_values(s, "disconnected")}
        raise CtlError(f"{menu.words}: no such item {item!r}")
    raise CtlError(f"{menu.words}: monitor is not a command here")


# --- changes -------------------------------------------------------------------------------------------


def _key_of(menu: Menu, obj: Any) -> str | None:
    for attr in ("name", "address"):
        if hasattr(obj, attr):
            return str(getattr(obj, attr))
    return None


def _resolve(menu: Menu, items: tuple[Any, ...], ref: str) -> int:
    """An item by print number or by name (address for l2tp-secret and radius)."""
    if re.fullmatch(r"\*?\d+", ref):
        n = int(ref.lstrip("*"))
        if 0 <= n < len(items):
            return n
        raise CtlError(f"{menu.words}: no such item {n} (there are {len(items)})")
    for i, obj in enumerate(items):
        if _key_of(menu, obj) == ref:
            return i
    raise CtlError(f"{menu.words}: no such item {ref!r}")


def _values(menu: Menu, props: dict[str, str]) -> dict[str, Any]:
    """Typed, then TOML-native values of ``key=value`` pairs (errors name the property and the form)."""
    assert menu.cls is not None
    fields = _fields(menu.cls)
    out: dict[str, Any] = {}
    for key, raw in props.items():
        if key not in fields:
            raise CtlError(f"{menu.words}: unknown property {key!r} (known: {', '.join(fields)})")
        kind = fields[key].metadata["kind"]
        try:
            value = kind.parse(raw)
        except v.BadValue as exc:
            raise CtlError(f"{menu.words}: {key}={raw}: {exc}") from None
        out[key] = kind.dump(value)
    return out


def _default_name(config: m.Config, prefix: str) -> str:
    taken = {x.name for x in config.l2tp_client} | {x.name for x in config.l2tp_server.interface}
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def apply(config: m.Config, doc: ConfigDocument, req: Request, rt: RuntimeView | None = None) -> str:
    """Carry out a changing command on ``doc`` (``config`` is what it holds now). The caller loads the
    result, which checks the whole configuration. Returns a short text of what was done."""
    menu = get_menu(req.menu)
    if req.cmd not in menu.verbs:
        raise CtlError(f"{menu.words}: no command {req.cmd!r} here (commands: {', '.join(sorted(menu.verbs))})")
    if menu.toml is None or menu.cls is None:
        raise CtlError(f"{menu.words}: {req.cmd} is not a configuration change")
    cmd = req.cmd
    if cmd == "add":
        if req.items:
            raise CtlError(f"{menu.words}: add takes property=value pairs only, not {req.items[0]!r}")
        values = _values(menu, req.props)
        if "name" in _fields(menu.cls) and "name" not in values:
            if menu.path == "/interface/l2tp-client":
                values = {"name": _default_name(config, "l2tp-out"), **values}
            elif menu.path == "/interface/l2tp-server":
                values = {"name": _default_name(config, "l2tp-in"), **values}
        if menu.path == "/ppp/profile" and values.get("name") in m.BUILTIN_PROFILES:
            raise CtlError(f"ppp profile: {values['name']} exists (built-in); change it with set")
        doc.add(menu.toml, values)
        return "added"
    if cmd == "set":
        values = _values(menu, req.props)
        if not values:
            raise CtlError(f"{menu.words}: set needs property=value pairs")
        if not menu.many:
            if req.items:
                raise CtlError(f"{menu.words}: set takes no item number here, only property=value pairs")
            doc.set(menu.toml, values)
            return "set"
        if len(req.items) != 1:
            raise CtlError(f"{menu.words}: set needs one item (number or name)")
        index = _index(config, menu, req.items[0], rt)
        if menu.path == "/ppp/profile" and "name" in values and config.ppp.profile[index].name in m.BUILTIN_PROFILES:
            raise CtlError("ppp profile: a built-in profile cannot be renamed")
        doc.set(menu.toml, values, index, config)
        return "set"
    if cmd in ("remove", "enable", "disable"):
        if not req.items:
            raise CtlError(f"{menu.words}: {cmd} needs item numbers or names")
        if req.props:
            raise CtlError(f"{menu.words}: {cmd} takes no property=value pairs")
        indexes = sorted({_index(config, menu, ref, rt) for ref in req.items}, reverse=True)
        for index in indexes:
            if cmd == "remove":
                if menu.path == "/ppp/profile" and config.ppp.profile[index].name in m.BUILTIN_PROFILES:
                    raise CtlError(f"ppp profile: the built-in profile {config.ppp.profile[index].name} "
                                   "cannot be removed")
                doc.remove(menu.toml, index, config)
            else:
                doc.set(menu.toml, {"disabled": cmd == "disable"}, index, config)
        return cmd + "d"
    raise CtlError(f"{menu.words}: {cmd} is not a configuration change")


def _index(config: m.Config, menu: Menu, ref: str, rt: RuntimeView | None) -> int:
    items = _items(config, menu)
    if menu.path == "/interface/l2tp-server" and rt is not None:
        rows = _server_rows(config, rt)
        for row in rows[len(items):]:
            if ref in (str(row["n"]), row["values"]["name"]):
                raise CtlError(f"{menu.words}: item {ref} is dynamic (a running session): it cannot be changed")
    return _resolve(menu, items, ref)


# --- export --------------------------------------------------------------------------------------------


def _arg(key: str, text: str) -> str:
    return f"{key}={quote_text(text) if needs_quotes(text) else text}"


def _changed(obj: Any, base: Any | None, *, secrets: bool) -> list[str]:
    out = []
    for key, f, value in changed_settings(obj, base):
        if f.metadata.get("secret") and not secrets:
            continue
        out.append(_arg(key, _display(f.metadata["kind"], value, quote=False)))
    return out


def export(config: m.Config, *, secrets: bool = False) -> str:
    """The configuration as CLI commands that recreate it on a fresh daemon (RouterOS ``export``).
    Passwords and shared secrets only with ``secrets`` (``export show-sensitive``)."""
    lines = ["# fastl2tp configuration export" + ("" if secrets else " (passwords left out: export show-sensitive)")]
    for menu in EXPORT_ORDER:
        assert menu.cls is not None
        if not menu.many:
            obj = _items(config, menu)
            args = [a for a in _changed(obj, menu.cls(), secrets=secrets)]
            if args:
                lines.append(f"/{menu.words}")
                lines.append("set " + " ".join(args))
            continue
        items = list(_items(config, menu))
        cmds = []
        if menu.path == "/ip/pool":  # print order kept: next-pool is set once every pool exists
            later = [f"set {_arg('name', p.name)[5:]} {_arg('next-pool', p.next_pool)}" for p in items if p.next_pool]
            items = [dataclasses.replace(p, next_pool=None) for p in items]
        else:
            later = []
        for obj in items:
            if menu.path == "/ppp/profile" and obj.name in m.BUILTIN_PROFILES:
                args = [a for a in _changed(obj, m.BUILTIN_PROFILES[obj.name], secrets=secrets)
                        if not a.startswith("name=")]
                if args:
                    cmds.append(f"set {_arg('name', obj.name)[5:]} " + " ".join(args))
                continue
            cmds.append("add " + " ".join(_changed(obj, None, secrets=secrets)))
        cmds += later
        if cmds:
            lines.append(f"/{menu.words}")
            lines.extend(cmds)
    return "\n".join(lines) + "\n"
