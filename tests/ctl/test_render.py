"""Text output (ctl/render.py) in the shapes of the RouterOS manual: a flags line, a ``#`` header and
numbered rows for tables, numbered ``key=value`` rows wrapped under their first pair for ``detail``,
``key: value`` lines for settings and ``monitor``."""

from __future__ import annotations

import shlex

from fastl2tp.config import load_text
from fastl2tp.ctl import menus
from fastl2tp.ctl.menus import RuntimeView, SessionInfo
from fastl2tp.ctl.render import WIDTH, render_detail, render_print, render_settings, render_table

SERVER_FLAGS = [["X", "disabled"], ["D", "dynamic"], ["R", "running"]]


def test_table_as_the_manual_l2tp_server_print():
    result = {"style": "table", "flags": SERVER_FLAGS,
              "columns": ["name", "user", "mtu", "client-address", "uptime", "encoding"],
              "rows": [{"n": 0, "flags": "DR", "values": {"name": "<l2tp-ex>", "user": "ex", "mtu": "1460",
                                                          "client-address": "10.0.0.202", "uptime": "6m32s",
                                                          "encoding": "none"}},
                       {"n": 1, "flags": "", "values": {"name": "l2tp-in1", "user": "ex1", "mtu": "",
                                                        "client-address": "", "uptime": "", "encoding": ""}}]}
    lines = render_print(result).splitlines()
    assert lines[0] == "Flags: X - disabled, D - dynamic, R - running"
    assert lines[1].split() == ["#", "NAME", "USER", "MTU", "CLIENT-ADDRESS", "UPTIME", "ENCODING"]
    assert lines[2].split() == ["0", "DR", "<l2tp-ex>", "ex", "1460", "10.0.0.202", "6m32s", "none"]
    assert lines[3].split() == ["1", "l2tp-in1", "ex1"]
    assert len(lines) == 4
    # columns line up: each header word starts where its values start
    for col, value in (("NAME", "<l2tp-ex>"), ("USER", "ex"), ("MTU", "1460"), ("UPTIME", "6m32s")):
        assert lines[1].index(col) == lines[2].index(" " + value + " ") + 1
    assert lines[3].index("l2tp-in1") == lines[2].index("<l2tp-ex>")
    assert all(line == line.rstrip() for line in lines)


def test_table_without_flags_has_no_flags_line():
    result = {"style": "table", "flags": [], "columns": ["name", "ranges"],
              "rows": [{"n": 0, "flags": "", "values": {"name": "pool1", "ranges": "10.0.0.2-10.0.0.254"}}]}
    lines = render_table(result).splitlines()
    assert lines[0].split() == ["#", "NAME", "RANGES"]
    assert lines[1].split() == ["0", "pool1", "10.0.0.2-10.0.0.254"]


def test_empty_table_prints_flags_and_header():
    text = render_table({"flags": [["X", "disabled"]], "columns": ["name"], "rows": []})
    assert text.splitlines() == ["Flags: X - disabled", "# NAME"]


def test_table_numbers_align_right_past_ten_rows():
    rows = [{"n": i, "flags": "", "values": {"name": f"u{i}"}} for i in range(12)]
    lines = render_table({"flags": [], "columns": ["name"], "rows": rows}).splitlines()
    assert lines[1] == " 0 u0" and lines[11] == "10 u10" and lines[12] == "11 u11"


def test_detail_as_the_manual_ppp_secret_print_detail():
    result = {"style": "detail", "flags": [["X", "disabled"]], "rows": [
        {"n": 0, "flags": "", "values": {
            "name": '"ex"', "service": "l2tp", "caller-id": '""', "password": '"lkjrht"', "profile": "default",
            "local-address": "10.0.103.1", "remote-address": "10.0.103.2",
            "routes": '"10.150.1.0/24 10.0.103.2 1"'}},
        {"n": 1, "flags": "X", "values": {"name": '"two"'}}]}
    text = render_print(result)
    lines = text.splitlines()
    assert lines[0] == "Flags: X - disabled"
    assert lines[1].startswith("0 ") and lines[1].split()[1] == 'name="ex"'
    # continuation lines are indented under the first pair
    first = lines[1].index('name="ex"')
    body = lines[1:lines.index("")]
    assert len(body) >= 2 and all(len(line) <= WIDTH for line in body)
    for line in body[1:]:
        assert line[:first].strip() == "" and line[first] != " "
    # all pairs, in order, nothing lost in the wrapping
    pairs = shlex.split(" ".join(line[first:] for line in body))
    assert pairs == ["name=ex", "service=l2tp", "caller-id=", "password=lkjrht", "profile=default",
                     "local-address=10.0.103.1", "remote-address=10.0.103.2", "routes=10.150.1.0/24 10.0.103.2 1"]
    # the disabled row carries its flag, rows are separated by an empty line
    assert any(line.split()[:3] == ["1", "X", 'name="two"'] for line in lines)
    assert lines.index("") < [i for i, line in enumerate(lines) if line.startswith("1 ")][0]


def test_detail_wraps_long_rows_at_the_width():
    values = {f"key{i}": "v" * 10 for i in range(20)}
    lines = render_detail({"flags": [], "rows": [{"n": 0, "flags": "", "values": values}]}).splitlines()
    assert len(lines) > 3 and all(len(line) <= WIDTH for line in lines)


def test_settings_as_the_manual_server_print():
    text = render_settings({"enabled": "yes", "max-mtu": 1460, "max-mru": 1460, "mrru": "disabled",
                            "authentication": "mschap2", "keepalive-timeout": "30s", "default-profile": "default"})
    lines = text.splitlines()
    assert [line.split(": ", 1)[0].strip() for line in lines] == [
        "enabled", "max-mtu", "max-mru", "mrru", "authentication", "keepalive-timeout", "default-profile"]
    assert lines[0].strip() == "enabled: yes" and lines[3].strip() == "mrru: disabled"
    # the colons line up (keys right-aligned)
    assert len({line.index(":") for line in lines}) == 1


def test_settings_style_dispatch():
    assert render_print({"style": "settings", "values": {"status": "connected"}}) == "status: connected\n"


def _print_text(text_config: str, path: str, rt: RuntimeView, *options: str) -> str:
    config = load_text(text_config)
    return render_print(menus.print_menu(config, rt, menus.MENUS[path], options))


def test_detail_values_with_spaces_are_quoted():
    """In ``detail`` every ``key=value`` must read back as one pair: a value with a space is quoted, as
    RouterOS does (encoding="MPPE128 stateless")."""
    config = '[[ppp.secret]]\nname = "ex"\npassword = "p"\n[[l2tp-server.interface]]\nname = "in1"\nuser = "ex"\n'
    s = SessionInfo(name="in1", ifname="in1", user="ex", role="server", caller_id="192.0.2.2",
                    local_address="10.0.0.1", remote_address="10.0.0.2", status="connected", uptime_s=5.0,
                    idle_s=1.0, encoding="MPPE128 stateless", mtu=1450, mru=1450, tunnel_id=1, session_id=2,
                    static="in1")
    text = _print_text(config, "/interface/l2tp-server", RuntimeView(sessions=(s,)), "detail")
    body = " ".join(line[4:] for line in text.splitlines()[1:] if line.strip())
    for word in shlex.split(body):
        assert "=" in word, (word, text)


def test_real_prints_fit_the_width_and_number_rows():
    config = "\n".join(f'[[ppp.secret]]\nname = "user{i}"\npassword = "p"\nlocal-address = "10.0.{i}.1"\n'
                       for i in range(3))
    table = _print_text(config, "/ppp/secret", RuntimeView())
    lines = table.splitlines()
    assert lines[0] == "Flags: X - disabled" and lines[1].startswith("#")
    assert [line.split()[0] for line in lines[2:]] == ["0", "1", "2"]
    detail = _print_text(config, "/ppp/secret", RuntimeView(), "detail")
    assert all(len(line) <= WIDTH for line in detail.splitlines())
    assert [line.split()[0] for line in detail.splitlines()[1:] if line[:1].isdigit()] == ["0", "1", "2"]
