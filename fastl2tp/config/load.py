"""TOML in, ``Config`` out (``load``), checks on a whole ``Config`` (``check``), and TOML back (``dump``).

Every error is a ``ConfigError`` whose message starts with the key path, the way it is written in
the file: ``ppp.secret[2].local-address: "10.0.0.300" is not an IPv4 address``, ``l2tp-server.server:
unknown key "keepalive" (known: ...)``. Array indexes count from 0, like RouterOS's ``print`` numbers.

The only I/O here is ``load_file`` reading the file it is given.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import Any

from ..errors import ConfigError
from . import values as v
from .model import (
    BUILTIN_PROFILES,
    Config,
    L2tpClient,
    L2tpServer,
    L2tpServerInterface,
    Profile,
    RadiusService,
    Secret,
    Service,
)
from .values import BadValue, looks_like_ipv4, show

__all__ = ["changed_settings", "check", "dump", "load", "load_file", "load_text", "parse_setting", "table_keys"]


# --- schema helpers ------------------------------------------------------------------------------


def _key(attr: str) -> str:
    return attr.replace("_", "-")


def _is_leaf(cls: type) -> bool:
    return any("kind" in f.metadata for f in dataclasses.fields(cls))


def table_keys(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """The TOML keys of a model class (RouterOS property names), in declaration order."""
    return {_key(f.name): f for f in dataclasses.fields(cls)}


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def parse_setting(cls: type, key: str, raw: Any, path: str = "") -> Any:
    """Parse one ``key=value`` of a model class as the loader would (for ``set`` in the CLI).

    ``path`` is the table's key path used in the error text; the value comes back typed.
    """
    where = f"{path}.{key}" if path else key
    fields = table_keys(cls)
    f = fields.get(key)
    if f is None or "kind" not in f.metadata:
        known = [k for k, fld in fields.items() if "kind" in fld.metadata]
        raise ConfigError(f'{path or cls.__name__}: unknown key "{key}" (known: {", ".join(known)})')
    try:
        return f.metadata["kind"].parse(raw)
    except BadValue as exc:
        raise ConfigError(f"{where}: {exc}") from None


# Keys RouterOS has that fastl2tp does not do: accepted when they say "off", refused otherwise.
_IPSEC = "is not supported (fastl2tp does not do IPsec; protect UDP 1701 with a kernel IPsec policy instead)"
_FAST_PATH = "is not yes/no (allow-fast-path is accepted and ignored: fastl2tp's data path is always fast)"


def _off(raw: Any) -> bool:
    try:
        return not v.parse_bool(raw)
    except BadValue:
        return False


def _empty(raw: Any) -> bool:
    return raw == ""


def _any_bool(raw: Any) -> bool:
    try:
        v.parse_bool(raw)
        return True
    except BadValue:
        return False


_UNSUPPORTED: dict[type, dict[str, tuple[Callable[[Any], bool], str]]] = {
    L2tpServer: {
        "use-ipsec": (_off, _IPSEC),
        "ipsec-secret": (_empty, _IPSEC),
        "allow-fast-path": (_any_bool, _FAST_PATH),
    },
    L2tpClient: {
        "use-ipsec": (_off, _IPSEC),
        "ipsec-secret": (_empty, _IPSEC),
        "dial-on-demand": (_off, "is not supported (a client dials whenever it is enabled)"),
        "allow-fast-path": (_any_bool, _FAST_PATH),
    },
}


# --- TOML → model --------------------------------------------------------------------------------


def _build_leaf(cls: type, raw: Any, path: str, base: Any = None) -> Any:
    if not isinstance(raw, dict):
        if isinstance(raw, list):
            raise ConfigError(f"{path}: must be a table ([{path}]), not an array of tables")
        raise ConfigError(f"{path}: must be a table ([{path}]), not {show(raw)}")
    fields = table_keys(cls)
    unsupported = _UNSUPPORTED.get(cls, {})
    kwargs: dict[str, Any] = {}
    for key, raw_value in raw.items():
        f = fields.get(key)
        if f is None:
            if key in unsupported:
                accept, why = unsupported[key]
                if accept(raw_value):
                    continue
                raise ConfigError(f"{path}.{key}: {show(raw_value)} {why}")
            raise ConfigError(f'{path}: unknown key "{key}" (known: {", ".join(fields)})')
        try:
            kwargs[f.name] = f.metadata["kind"].parse(raw_value)
        except BadValue as exc:
            raise ConfigError(f"{path}.{key}: {exc}") from None
    if base is not None:
        return dataclasses.replace(base, **kwargs)
    for key, f in fields.items():
        if f.name not in kwargs and _required(f):
            raise ConfigError(f'{path}: missing required key "{key}"')
    return cls(**kwargs)


def _build_array(cls: type, raw: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: must be an array of tables ([[{path}]])")
    items = []
    for i, item in enumerate(raw):
        base = None
        if cls is Profile and isinstance(item, dict):
            base = BUILTIN_PROFILES.get(item.get("name"))  # type: ignore[arg-type]
        if not isinstance(item, dict):
            raise ConfigError(f"{path}[{i}]: must be a table, not {show(item)}")
        items.append(_build_leaf(cls, item, f"{path}[{i}]", base))
    if cls is Profile:  # the built-ins are always there; those not mentioned come last
        named = {p.name for p in items}
        items.extend(p for name, p in BUILTIN_PROFILES.items() if name not in named)
    return tuple(items)


def _build(cls: type, raw: Any, path: str) -> Any:
    if _is_leaf(cls):
        return _build_leaf(cls, raw, path)
    where = path or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a table ([{path}]), not {show(raw)}")
    fields = table_keys(cls)
    for key in raw:
        if key not in fields:
            what = "table" if not path else "key"
            raise ConfigError(f'{where}: unknown {what} "{key}" (known: {", ".join(fields)})')
    kwargs: dict[str, Any] = {}
    for key, f in fields.items():
        if key not in raw:
            continue
        sub = f"{path}.{key}" if path else key
        if "array" in f.metadata:
            kwargs[f.name] = _build_array(f.metadata["array"], raw[key], sub)
        else:
            kwargs[f.name] = _build(f.metadata["table"], raw[key], sub)
    return cls(**kwargs)


def _default_names(doc: dict[str, Any]) -> None:
    """Give unnamed clients l2tp-out1, l2tp-out2, ... and unnamed static interfaces l2tp-in1, ...:
    the lowest numbers no other interface uses, as RouterOS does."""
    clients = doc.get("l2tp-client")
    server = doc.get("l2tp-server")
    statics = server.get("interface") if isinstance(server, dict) else None
    lists = [(x, prefix) for x, prefix in ((clients, "l2tp-out"), (statics, "l2tp-in")) if isinstance(x, list)]
    taken = {item["name"] for items, _ in lists for item in items
             if isinstance(item, dict) and isinstance(item.get("name"), str)}
    for items, prefix in lists:
        n = 1
        for item in items:
            if isinstance(item, dict) and "name" not in item:
                while f"{prefix}{n}" in taken:
                    n += 1
                item["name"] = f"{prefix}{n}"
                taken.add(item["name"])


def load_text(text: str | bytes) -> Config:
    """Parse and check a TOML document."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError as exc:
            raise ConfigError(f"TOML: not UTF-8 ({exc})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"TOML: {exc}") from None
    _default_names(doc)
    config: Config = _build(Config, doc, "")
    check(config, values=False)
    return config


def load_file(path: str | PurePath) -> Config:
    """Read a file and ``load_text`` it; an unreadable file is a ConfigError naming the path."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return load_text(data)


def load(text_or_path: str | bytes | PurePath) -> Config:
    """``load_file`` for a path (a ``PathLike``, or a one-line string without ``=``/``[``), else ``load_text``."""
    if hasattr(text_or_path, "__fspath__"):
        return load_file(text_or_path)  # type: ignore[arg-type]
    if isinstance(text_or_path, str) and text_or_path.strip() and not any(
            ch in text_or_path for ch in "\n=[#"):
        return load_file(text_or_path.strip())
    return load_text(text_or_path)  # type: ignore[arg-type]


# --- checks on a whole Config ----------------------------------------------------------------------


def _walk(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf object of the tree with its key path."""
    if _is_leaf(type(obj)):
        yield path, obj
        return
    for f in dataclasses.fields(obj):
        sub = f"{path}.{_key(f.name)}" if path else _key(f.name)
        value = getattr(obj, f.name)
        if "array" in f.metadata:
            for i, item in enumerate(value):
                yield from _walk(item, f"{sub}[{i}]")
        else:
            yield from _walk(value, sub)


def _check_values(config: Config) -> None:
    """Each value is one its kind would have produced (for a Config built or changed in code)."""
    for path, obj in _walk(config):
        for f in dataclasses.fields(obj):
            kind = f.metadata["kind"]
            value = getattr(obj, f.name)
            where = f"{path}.{_key(f.name)}"
            try:
                again = kind.parse(kind.dump(value))
            except BadValue as exc:
                raise ConfigError(f"{where}: {exc}") from None
            except (TypeError, AttributeError, ValueError):  # a value of the wrong type
                raise ConfigError(f"{where}: {value!r} is not {kind.form}") from None
            if again != value:
                raise ConfigError(f"{where}: {value!r} is not {kind.form}")


def _names(items: tuple[Any, ...]) -> str:
    return ", ".join(item.name for item in items)


def _dupes(items: tuple[Any, ...], path: str, key: Callable[[Any], Any], what: str = "name") -> None:
    seen: dict[Any, int] = {}
    for i, item in enumerate(items):
        k = key(item)
        if k in seen:
            raise ConfigError(f"{path}[{i}].{what}: duplicate {show(str(k))} (also {path}[{seen[k]}])")
        seen[k] = i


def _serves_l2tp(secret: Secret) -> bool:
    return secret.service in (Service.ANY, Service.L2TP)


def check(config: Config, *, values: bool = True) -> None:
    """Check a whole configuration: unique names, references that resolve, pools that do not overlap
    or loop. With ``values`` (for a Config made or changed in code), also every value's range and type.
    ``load`` calls this; the management API calls it before it applies or saves a change."""
    if values:
        _check_values(config)
    ppp, server = config.ppp, config.l2tp_server

    # profiles: built-ins present, unique names
    _dupes(ppp.profile, "ppp.profile", lambda p: p.name)
    profiles = {p.name: p for p in ppp.profile}
    for name in BUILTIN_PROFILES:
        if name not in profiles:
            raise ConfigError(f'ppp.profile: the built-in profile "{name}" is missing')

    def need_profile(name: str, where: str) -> None:
        if name not in profiles:
            raise ConfigError(f"{where}: no profile named {show(name)} (known: {_names(ppp.profile)})")

    # pools: names, next-pool references and loops, no address in two ranges
    pools = {p.name: p for p in config.ip.pool}
    _dupes(config.ip.pool, "ip.pool", lambda p: p.name)
    for i, pool in enumerate(config.ip.pool):
        if looks_like_ipv4(pool.name):
            raise ConfigError(f"ip.pool[{i}].name: {show(pool.name)} looks like an address; a pool name must not")
        if pool.next_pool is not None:
            if pool.next_pool not in pools:
                raise ConfigError(f"ip.pool[{i}].next-pool: no pool named {show(pool.next_pool)}"
                                  f" (known: {_names(config.ip.pool) or 'none'})")
            chain = [pool.name]
            nxt: str | None = pool.next_pool
            while nxt is not None:
                chain.append(nxt)
                if nxt == pool.name:
                    raise ConfigError(f"ip.pool[{i}].next-pool: loops ({' -> '.join(chain)})")
                if nxt in chain[:-1]:
                    break  # a loop not through this pool: reported at its own index
                nxt = pools[nxt].next_pool if nxt in pools else None
    spans = sorted((r.first, r.last, i, r) for i, pool in enumerate(config.ip.pool) for r in pool.ranges)
    for (_, last, i, r), (first, _, j, r2) in itertools.pairwise(spans):
        if first <= last:
            a, b = sorted([(i, r), (j, r2)], key=lambda t: t[0])
            raise ConfigError(f"ip.pool[{b[0]}].ranges: {b[1]} overlaps {a[1]} of ip.pool[{a[0]}]"
                              f" ({show(config.ip.pool[a[0]].name)})")

    for i, profile in enumerate(ppp.profile):
        for attr in ("local_address", "remote_address"):
            ref = getattr(profile, attr)
            if isinstance(ref, str) and ref not in pools:
                raise ConfigError(f"ppp.profile[{i}].{_key(attr)}: no pool named {show(ref)}"
                                  f" (known: {_names(config.ip.pool) or 'none'})")

    # secrets: unique per service, existing profiles
    seen: dict[str, list[tuple[int, Service]]] = {}
    for i, secret in enumerate(ppp.secret):
        for j, service in seen.get(secret.name, []):
            if Service.ANY in (service, secret.service) or service == secret.service:
                raise ConfigError(f"ppp.secret[{i}].name: duplicate {show(secret.name)} for service "
                                  f"{secret.service.value} (also ppp.secret[{j}], service {service.value})")
        seen.setdefault(secret.name, []).append((i, secret.service))
        need_profile(secret.profile, f"ppp.secret[{i}].profile")
    _dupes(ppp.l2tp_secret, "ppp.l2tp-secret", lambda s: s.address, "address")

    # server
    need_profile(server.server.default_profile, "l2tp-server.server.default-profile")
    users = {s.name for s in ppp.secret if _serves_l2tp(s)}
    for i, static in enumerate(server.interface):
        if static.user not in users and not ppp.aaa.use_radius:
            raise ConfigError(f"l2tp-server.interface[{i}].user: no ppp secret named {show(static.user)}"
                              " for l2tp (and ppp.aaa.use-radius is no)")

    # interfaces (static server entries and clients) share the Linux name space
    names: dict[str, str] = {}
    interfaces: list[tuple[str, L2tpServerInterface | L2tpClient]] = [
        *((f"l2tp-server.interface[{i}]", x) for i, x in enumerate(server.interface)),
        *((f"l2tp-client[{i}]", x) for i, x in enumerate(config.l2tp_client)),
    ]
    for here, item in interfaces:
        if item.name in names:
            raise ConfigError(f"{here}.name: duplicate {show(item.name)} (also {names[item.name]})")
        names[item.name] = here
    for i, client in enumerate(config.l2tp_client):
        need_profile(client.profile, f"l2tp-client[{i}].profile")

    # RADIUS
    if ppp.aaa.use_radius and not any(not r.disabled and RadiusService.PPP in r.service for r in config.radius):
        raise ConfigError("ppp.aaa.use-radius: yes, but no enabled [[radius]] entry has service ppp")
    if config.radius_incoming.accept and not config.radius:
        raise ConfigError("radius-incoming.accept: yes, but there is no [[radius]] entry to accept requests from")


# --- model → TOML ----------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return v.toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(x) for x in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def changed_settings(obj: Any, base: Any = None) -> Iterator[tuple[str, dataclasses.Field[Any], Any]]:
    """(key, field, value) of the settings of ``obj`` that differ from their default (or from ``base``),
    required ones and ``name`` always: what ``dump`` writes and ``export`` says."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if base is not None:
            default = getattr(base, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = dataclasses.MISSING  # required: always written
        if f.name == "name" or value != default:
            yield _key(f.name), f, value


def _leaf_lines(obj: Any, base: Any = None) -> list[str]:
    """``key = value`` lines for the settings that differ from the default (or from ``base``)."""
    return [f"{key} = {_toml_value(f.metadata['kind'].dump(value))}" for key, f, value in changed_settings(obj, base)]


def _implicit_builtins(profiles: tuple[Profile, ...]) -> int:
    """How many trailing profiles are unchanged built-ins in their own order: ``load`` adds those back."""
    order = list(BUILTIN_PROFILES)
    n = 0  # profiles are Profile instances here
    while n < len(profiles) and BUILTIN_PROFILES.get(profiles[-1 - n].name) == profiles[-1 - n]:
        n += 1
    while n:
        tail = [p.name for p in profiles[len(profiles) - n:]]
        if tail == [name for name in order if name in tail]:
            break
        n -= 1
    return n


def _dump(obj: Any, path: str, out: list[str]) -> None:
    if _is_leaf(type(obj)):
        lines = _leaf_lines(obj)
        if lines:
            out.append(f"\n[{path}]")
            out.extend(lines)
        return
    for f in dataclasses.fields(obj):
        sub = f"{path}.{_key(f.name)}" if path else _key(f.name)
        value = getattr(obj, f.name)
        if "array" in f.metadata:
            if f.metadata["array"] is Profile:
                value = value[: len(value) - _implicit_builtins(value)]
            for item in value:
                base = BUILTIN_PROFILES.get(item.name) if isinstance(item, Profile) else None
                out.append(f"\n[[{sub}]]")
                out.extend(_leaf_lines(item, base))
        else:
            _dump(value, sub, out)


def dump(config: Config) -> str:
    """The configuration as TOML, writing only what differs from the defaults; ``load(dump(c)) == c``.

    Comments of the original file are not kept (see docs/config.md).
    """
    out = ["# fastl2tp configuration (docs/config.md)"]
    _dump(config, "", out)
    return "\n".join(out).strip() + "\n"
