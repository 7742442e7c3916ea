"""Replies as RouterOS prints them: tables with a flags line, numbered ``key=value`` rows for
``detail``, ``key: value`` blocks for settings and ``monitor``. Pure: text in, text out."""

from __future__ import annotations

from typing import Any

__all__ = ["render_detail", "render_print", "render_settings", "render_table"]

WIDTH = 79  # RouterOS wraps its print at the terminal width; ours is fixed for stable output


def _flags_line(flags: list[list[str]]) -> list[str]:
    if not flags:
        return []
    return ["Flags: " + ", ".join(f"{letter} - {meaning}" for letter, meaning in flags)]


def render_table(result: dict[str, Any]) -> str:
    cols: list[str] = result["columns"]
    rows: list[dict[str, Any]] = result["rows"]
    flag_width = max([len(r["flags"]) for r in rows] + [0])
    number_width = max([len(str(r["n"])) for r in rows] + [1])
    widths = {c: max([len(c)] + [len(str(r["values"].get(c, ""))) for r in rows]) for c in cols}
    lead = " " * (number_width + 1 + (flag_width + 1 if flag_width else 0))
    out = _flags_line(result.get("flags", []))
    out.append(("#".ljust(number_width + 1) + lead[number_width + 1:]
                + " ".join(c.upper().ljust(widths[c]) for c in cols)).rstrip())
    for r in rows:
        left = str(r["n"]).rjust(number_width) + " " + (r["flags"].ljust(flag_width) + " " if flag_width else "")
        out.append((left + " ".join(str(r["values"].get(c, "")).ljust(widths[c]) for c in cols)).rstrip())
    return "\n".join(out) + "\n"


def _wrap(head: str, pairs: list[str]) -> list[str]:
    """``head`` then the pairs, wrapped under the first one at ``WIDTH``."""
    lines, line, empty = [], head, True
    indent = " " * len(head)
    for p in pairs:
        if not empty and len(line) + 1 + len(p) > WIDTH:
            lines.append(line)
            line, empty = indent, True
        line += p if empty else " " + p
        empty = False
    lines.append(line.rstrip())
    return lines


def render_detail(result: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = result["rows"]
    flag_width = max([len(r["flags"]) for r in rows] + [1])
    number_width = max([len(str(r["n"])) for r in rows] + [1])
    out = _flags_line(result.get("flags", []))
    for r in rows:
        head = str(r["n"]).rjust(number_width) + " " + r["flags"].ljust(flag_width) + " "
        out.extend(_wrap(head, [f"{k}={x}" for k, x in r["values"].items()]))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def render_settings(values: dict[str, Any]) -> str:
    width = max([len(k) for k in values] + [0])
    return "".join(f"{k.rjust(width)}: {'' if x is None else x}\n" for k, x in values.items())


def render_print(result: dict[str, Any]) -> str:
    style = result.get("style")
    if style == "settings":
        return render_settings(result["values"])
    if style == "detail":
        return render_detail(result)
    return render_table(result)
