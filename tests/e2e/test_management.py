"""RouterOS-style management against running daemons (issue 6): every command of the issue through
``fastl2tp`` and the control socket, their live effect on sessions, the config file rewritten with the
user's comments and reloaded identically after a restart, export replayed on a fresh daemon, one-line
errors for bad input, and the interactive console in a pseudo-terminal."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import pexpect

from fastl2tp.config import load_file
from fastl2tp.ctl import menus
from tests.e2e.daemons import LNS_IP, Daemon, link_addr, pair, wait_for
from tests.netns import netns_only

pytestmark = netns_only

LNS_FILE = f"""\
# office LNS -- managed with fastl2tp; keep these comments
# (the server starts switched off and is turned on from the CLI)

[l2tp-server.server]
enabled = false          # switched on with: interface l2tp-server server set enabled=yes
listen-address = "{LNS_IP}"
authentication = "mschap2"
keepalive-timeout = "5s"  # short for the tests
"""

LNS_COMMENTS = [line.split("#", 1)[1] for line in LNS_FILE.splitlines() if "#" in line]

LAC_FILE = """\
# branch office LAC: clients are added from the CLI
"""


# --- helpers ---------------------------------------------------------------------------------------


def ok(d: Daemon, *args: str) -> str:
    """Run ``fastl2tp ARGS`` against ``d``; it must succeed without anything on stderr."""
    r = d.cli(*args)
    assert r.returncode == 0 and r.stderr == "", (
        f"fastl2tp {' '.join(args)} -> {r.returncode}\n{r.stdout}{r.stderr}\n--- daemon log ---\n{log(d)[-3000:]}")
    return r.stdout


def fails(d: Daemon, *args: str) -> str:
    """``fastl2tp ARGS`` must fail with exactly one line on stderr and no traceback; the line."""
    r = d.cli(*args)
    assert r.returncode != 0, f"fastl2tp {' '.join(args)} succeeded:\n{r.stdout}"
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, f"fastl2tp {' '.join(args)}:\n{r.stderr}"
    assert r.stdout == ""
    return lines[0]


def log(d: Daemon) -> str:
    """The daemon's log so far (also after it was stopped)."""
    try:
        return d.text()
    except ValueError:  # the log file was closed by stop()
        return d.log.read_text()


def table(text: str) -> list[str]:
    """The numbered rows of a table print (after the optional flags line and the ``#`` header)."""
    lines = text.splitlines()
    if lines and lines[0].startswith("Flags:"):
        lines = lines[1:]
    assert lines and lines[0].lstrip().startswith("#"), text
    return lines[1:]


def settings(text: str) -> dict[str, str]:
    """``key: value`` lines (settings print, monitor) as a dict."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def detail(text: str) -> list[dict[str, str]]:
    """The rows of a ``print detail``: their key=value pairs (continuation lines joined)."""
    rows: list[str] = []
    for line in text.splitlines():
        if line.startswith("Flags:") or not line.strip():
            continue
        if re.match(r"\s*\d+ ", line) and not line.startswith("    "):
            rows.append(line)
        else:
            rows[-1] += " " + line.strip()
    out = []
    for row in rows:
        pairs = re.findall(r'([\w-]+)=("(?:[^"\\]|\\.)*"|\S*)', row)
        out.append({k: x.strip('"') for k, x in pairs})
    return out


def row_of(rows: list[str], word: str) -> list[str]:
    for r in rows:
        if word in r.split():
            return r.split()
    raise AssertionError(f"no row with {word!r} in\n" + "\n".join(rows))


def ping(ns, dst: str, count: int = 3):
    return ns.run(["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst], check=False)


def answers(d: Daemon) -> bool:
    r = d.cli("ppp", "secret", "print")
    return r.returncode == 0


def started(d: Daemon) -> Daemon:
    wait_for(lambda: d.socket.exists() and answers(d), what=f"{d.path.stem} control socket", on_fail=lambda: log(d))
    return d


# --- the manual's commands, live, persisted --------------------------------------------------------


def test_manual_commands_apply_live_and_persist(netns, tmp_path):
    lns_ns, lac_ns = pair(netns)
    lns = started(Daemon(lns_ns, LNS_FILE, tmp_path, "lns"))
    lac = started(Daemon(lac_ns, LAC_FILE, tmp_path, "lac"))
    lns_mode, lac_mode = (d.path.stat().st_mode & 0o777 for d in (lns, lac))
    logs = lambda: f"--- LNS ---\n{log(lns)[-4000:]}\n--- LAC ---\n{log(lac)[-4000:]}"  # noqa: E731

    # the server: off at start, switched on
    assert settings(ok(lns, "interface", "l2tp-server", "server", "print"))["enabled"] == "no"
    assert ok(lns, "interface", "l2tp-server", "server", "set", "enabled=yes") == ""
    server = settings(ok(lns, "interface", "l2tp-server", "server", "print"))
    assert server["enabled"] == "yes" and server["authentication"] == "mschap2"
    for key in ("max-mtu", "max-mru", "mrru", "keepalive-timeout", "default-profile"):
        assert key in server

    # /ppp secret as in the manual
    ok(lns, "ppp", "secret", "add", "name=ex", "password=lkjrht", "local-address=10.0.103.1",
       "remote-address=10.0.103.2", "routes=10.150.1.0/24 10.0.103.2 1")
    rows = table(ok(lns, "ppp", "secret", "print"))
    assert row_of(rows, "ex")[:1] == ["0"] and "10.0.103.1" in rows[0] and "10.0.103.2" in rows[0]
    assert "lkjrht" not in ok(lns, "ppp", "secret", "print")
    (d,) = detail(ok(lns, "ppp", "secret", "print", "detail"))
    assert d["name"] == "ex" and d["password"] == "lkjrht" and d["profile"] == "default"
    assert d["local-address"] == "10.0.103.1" and d["remote-address"] == "10.0.103.2"
    assert d["routes"] == "10.150.1.0/24 10.0.103.2 1"
    ok(lns, "ppp", "secret", "set", "0", "routes=10.150.1.0/24 10.0.103.2 1,10.150.2.0/24 10.0.103.2 5")
    assert detail(ok(lns, "ppp", "secret", "print", "detail"))[0]["routes"] == \
        "10.150.1.0/24 10.0.103.2 1,10.150.2.0/24 10.0.103.2 5"
    ok(lns, "ppp", "secret", "set", "ex", "routes=10.150.1.0/24 10.0.103.2 1")

    # remove / enable / disable, by number and by name
    ok(lns, "ppp", "secret", "add", "name=tmp1", "password=t1")
    ok(lns, "ppp", "secret", "add", "name=tmp2", "password=t2")
    ok(lns, "ppp", "secret", "disable", "1")
    ok(lns, "ppp", "secret", "disable", "tmp2")
    rows = table(ok(lns, "ppp", "secret", "print"))
    assert row_of(rows, "tmp1")[:2] == ["1", "X"] and row_of(rows, "tmp2")[:2] == ["2", "X"]
    ok(lns, "ppp", "secret", "enable", "tmp1")
    ok(lns, "ppp", "secret", "enable", "2")
    rows = table(ok(lns, "ppp", "secret", "print"))
    assert row_of(rows, "tmp1")[1] == "tmp1" and row_of(rows, "tmp2")[1] == "tmp2"
    ok(lns, "ppp", "secret", "remove", "tmp1")
    ok(lns, "ppp", "secret", "remove", "1")  # tmp2, numbered 1 now
    assert [r.split()[1] for r in table(ok(lns, "ppp", "secret", "print"))] == ["ex"]

    # /ip pool and /ppp profile: the user "dyn" gets the pool's addresses
    ok(lns, "ip", "pool", "add", "name=pool1", "ranges=10.0.105.2-10.0.105.20")
    pool = row_of(table(ok(lns, "ip", "pool", "print")), "pool1")
    assert pool[-3:] == ["19", "0", "19"]  # total used available
    ok(lns, "ppp", "profile", "add", "name=office", "local-address=10.0.105.1", "remote-address=pool1")
    ok(lns, "ppp", "profile", "set", "office", "only-one=yes", "use-encryption=no")
    prof = table(ok(lns, "ppp", "profile", "print"))
    assert row_of(prof, "office")[1:] == ["office", "10.0.105.1", "pool1", "no", "yes"]
    assert row_of(prof, "default")[1] == "*" and row_of(prof, "default-encryption")[1] == "*"
    ok(lns, "ppp", "secret", "add", "name=dyn", "password=dynpass", "profile=office")

    # a static interface for ex, as the manual
    ok(lns, "interface", "l2tp-server", "add", "name=FromLaptop", "user=ex")
    out = ok(lns, "interface", "l2tp-server", "print")
    assert out.splitlines()[0] == "Flags: X - disabled, D - dynamic, R - running"
    assert out.splitlines()[1].split() == ["#", "NAME", "USER", "MTU", "CLIENT-ADDRESS", "UPTIME", "ENCODING"]
    assert table(out)[0].split() == ["0", "FromLaptop", "ex"]

    # the LAC: a client added as the manual (disabled), enabled by number
    ok(lac, "interface", "l2tp-client", "add", "name=test2", f"connect-to={LNS_IP}", "user=ex",
       "password=lkjrht", "add-default-route=yes")
    out = ok(lac, "interface", "l2tp-client", "print")
    assert out.splitlines()[0] == "Flags: X - disabled, R - running"
    (c,) = detail(out)
    assert c["name"] == "test2" and c["connect-to"] == LNS_IP and c["user"] == "ex"
    assert c["add-default-route"] == "yes" and "password" not in c
    assert re.match(r"0 +X ", out.splitlines()[1])
    assert lac_ns.link("test2") is None
    ok(lac, "interface", "l2tp-client", "enable", "0")
    assert wait_for(lambda: link_addr(lac_ns, "test2"), what="client test2 up", on_fail=logs) == (
        "10.0.103.2", "10.0.103.1")
    assert ping(lac_ns, "10.0.103.1").returncode == 0, logs()
    wait_for(lambda: any(r.get("dst") == "default" and r.get("dev") == "test2" for r in lac_ns.routes()),
             what="default route through test2", on_fail=logs)
    wait_for(lambda: re.match(r"0 +R ", ok(lac, "interface", "l2tp-client", "print").splitlines()[1]),
             what="client R flag", on_fail=logs)
    mon = settings(ok(lac, "interface", "l2tp-client", "monitor", "test2", "once"))
    assert mon["status"] == "connected", mon
    assert mon["local-address"] == "10.0.103.2" and mon["remote-address"] == "10.0.103.1"
    assert mon["mtu"].isdigit() and mon["mru"].isdigit() and mon["encoding"]
    assert re.fullmatch(r"(\d+[wdhm])*\d+s|(\d+[wdhm])+", mon["uptime"]) and mon["idle-time"]
    assert list(mon) == ["status", "uptime", "idle-time", "encoding", "mtu", "mru", "local-address",
                         "remote-address"]

    # the LNS sees the static interface running, and the routes of the secret
    wait_for(lambda: link_addr(lns_ns, "FromLaptop"), what="FromLaptop on the LNS", on_fail=logs)
    assert any(r.get("dst") == "10.150.1.0/24" for r in lns_ns.routes())
    row = row_of(table(ok(lns, "interface", "l2tp-server", "print")), "FromLaptop")
    assert row[:4] == ["0", "R", "FromLaptop", "ex"] and row[4].isdigit() and row[5] == "192.0.2.2"
    mon = settings(ok(lns, "interface", "l2tp-server", "monitor", "FromLaptop", "once"))
    assert mon["status"] == "connected" and mon["local-address"] == "10.0.103.1"
    assert mon["remote-address"] == "10.0.103.2"

    # a second client for "dyn": a dynamic <l2tp-dyn> row, an address from the pool
    ok(lac, "interface", "l2tp-client", "add", "name=dyn1", f"connect-to={LNS_IP}", "user=dyn",
       "password=dynpass", "disabled=no")
    local, remote = wait_for(lambda: link_addr(lac_ns, "dyn1"), what="client dyn1 up", on_fail=logs)
    assert remote == "10.0.105.1" and local.startswith("10.0.105.")
    rows = table(ok(lns, "interface", "l2tp-server", "print"))
    dyn = row_of(rows, "<l2tp-dyn>")
    assert dyn[1:4] == ["DR", "<l2tp-dyn>", "dyn"] and "192.0.2.2" in dyn
    mon = settings(ok(lns, "interface", "l2tp-server", "monitor", "<l2tp-dyn>", "once"))
    assert mon["status"] == "connected" and mon["remote-address"] == local
    assert row_of(table(ok(lns, "ip", "pool", "print")), "pool1")[-3:] == ["19", "1", "18"]
    # a dynamic entry cannot be changed
    assert "dynamic" in fails(lns, "interface", "l2tp-server", "remove", dyn[0])
    # the client list on the LAC: both running
    flags = [line.split()[1] for line in ok(lac, "interface", "l2tp-client", "print").splitlines()
             if re.match(r"\d+ ", line)]
    assert flags == ["R", "R"]

    # /ppp active: both sessions; stats grow with traffic
    active = table(ok(lns, "ppp", "active", "print"))
    assert {r.split()[1] for r in active} == {"ex", "dyn"}
    ex = row_of(active, "ex")
    assert ex[2] == "l2tp" and ex[3] == "192.0.2.2" and ex[4] == "10.0.103.2" and ex[-1].startswith("0x")
    header = ok(lns, "ppp", "active", "print", "stats").splitlines()[0].split()
    assert header[-4:] == ["BYTES-IN", "BYTES-OUT", "PACKETS-IN", "PACKETS-OUT"]

    def ex_bytes() -> tuple[int, int]:
        row = row_of(table(ok(lns, "ppp", "active", "print", "stats")), "ex")
        return int(row[-4]), int(row[-3])

    before = ex_bytes()
    assert ping(lac_ns, "10.0.103.1", count=5).returncode == 0
    after = wait_for(lambda: (lambda b: b if b[0] >= before[0] + 5 * 84 and b[1] >= before[1] + 5 * 84 else None)(
        ex_bytes()), what="bytes grow with the pings", on_fail=lambda: f"{before} -> {ex_bytes()}")
    assert after[0] > before[0] and after[1] > before[1]

    # --json on a print
    data = json.loads(ok(lns, "--json", "ppp", "active", "print", "stats"))
    assert {r["data"]["user"] for r in data["rows"]} == {"ex", "dyn"}
    assert all(isinstance(r["data"]["bytes_in"], int) for r in data["rows"])
    data = json.loads(ok(lns, "--json", "ppp", "secret", "print"))
    assert [r["data"]["name"] for r in data["rows"]] == ["ex", "dyn"]
    assert "lkjrht" not in json.dumps(data)

    # /ppp active remove N disconnects (the client dials again: a new session)
    active = table(ok(lns, "ppp", "active", "print"))
    n, old = next((r.split()[0], r.split()[-1]) for r in active if r.split()[1] == "dyn")
    ok(lns, "ppp", "active", "remove", n)
    wait_for(lambda: all(r.split()[1] != "dyn" or r.split()[-1] != old
                         for r in table(ok(lns, "ppp", "active", "print"))),
             what="session of dyn disconnected", on_fail=logs)
    assert "disconnected by the administrator" in lns.text()

    # --json on monitor
    data = json.loads(ok(lac, "--json", "interface", "l2tp-client", "monitor", "test2", "once"))
    assert data["name"] == "test2" and data["values"]["status"] == "connected"

    # the LAC: disable hangs up, enable dials again, remove removes
    ok(lac, "interface", "l2tp-client", "disable", "dyn1")
    ok(lac, "interface", "l2tp-client", "disable", "test2")
    wait_for(lambda: lac_ns.link("test2") is None and lac_ns.link("dyn1") is None,
             what="client interfaces gone", on_fail=logs)
    wait_for(lambda: lns_ns.link("FromLaptop") is None, what="FromLaptop gone on the LNS", on_fail=logs)
    assert settings(ok(lac, "interface", "l2tp-client", "monitor", "test2", "once"))["status"] != "connected"
    ok(lac, "interface", "l2tp-client", "enable", "test2")
    wait_for(lambda: link_addr(lac_ns, "test2"), what="client test2 up again", on_fail=logs)
    wait_for(lambda: link_addr(lns_ns, "FromLaptop"), what="FromLaptop again", on_fail=logs)
    ok(lac, "interface", "l2tp-client", "remove", "dyn1")
    assert [d["name"] for d in detail(ok(lac, "interface", "l2tp-client", "print"))] == ["test2"]

    # the server switched off tears its sessions down; switched on, the client comes back
    ok(lns, "interface", "l2tp-server", "server", "set", "enabled=no")
    wait_for(lambda: lns_ns.link("FromLaptop") is None, what="server sessions torn down", on_fail=logs)
    wait_for(lambda: table(ok(lns, "ppp", "active", "print")) == [], what="no active sessions", on_fail=logs)
    wait_for(lambda: lac_ns.link("test2") is None, what="client interface gone", on_fail=logs)
    ok(lns, "interface", "l2tp-server", "server", "set", "enabled=yes")
    wait_for(lambda: link_addr(lac_ns, "test2"), timeout=40, what="test2 back after the server is on again",
             on_fail=logs)
    assert ping(lac_ns, "10.0.103.1").returncode == 0, logs()
    # the only session is number 0: remove 0 disconnects it
    (only,) = table(ok(lns, "ppp", "active", "print"))
    ok(lns, "ppp", "active", "remove", "0")
    wait_for(lambda: all(r.split()[-1] != only.split()[-1] for r in table(ok(lns, "ppp", "active", "print"))),
             what="ppp active remove 0 disconnected it", on_fail=logs)
    # quiet for the restart: client off, server off
    ok(lac, "interface", "l2tp-client", "disable", "0")
    ok(lns, "interface", "l2tp-server", "server", "set", "enabled=no")
    wait_for(lambda: table(ok(lns, "ppp", "active", "print")) == [], what="no active sessions", on_fail=logs)
    wait_for(lambda: lac_ns.link("test2") is None, what="client interface gone", on_fail=logs)
    assert all(oct(d.path.stat().st_mode & 0o777) == oct(mode) for d, mode in ((lns, lns_mode), (lac, lac_mode)))
    # no password in any log, even at debug level, after all these changes and logins
    for pw in ("lkjrht", "dynpass"):
        assert pw not in lns.text() and pw not in lac.text(), pw

    # persistence: the files load to what runs, with the user's comments; check-config accepts them
    for d in (lns, lac):
        assert menus.export(load_file(str(d.path)), secrets=True) == ok(d, "export", "show-sensitive")
        r = subprocess.run([sys.executable, "-m", "fastl2tp", "check-config", str(d.path)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    lns_text = lns.path.read_text()
    for comment in LNS_COMMENTS:
        assert comment in lns_text, (comment, lns_text)
    assert "# branch office LAC: clients are added from the CLI" in lac.path.read_text()

    prints = [("interface", "l2tp-server", "server", "print"), ("interface", "l2tp-server", "print"),
              ("ppp", "secret", "print", "detail"), ("ppp", "secret", "print"), ("ppp", "profile", "print"),
              ("ppp", "profile", "print", "detail"), ("ip", "pool", "print"), ("ppp", "active", "print"),
              ("export", "show-sensitive")]
    before = {p: ok(lns, *p) for p in prints}
    lac_before = ok(lac, "interface", "l2tp-client", "print")
    assert lns.stop() == 0 and lac.stop() == 0
    lns2 = started(Daemon(lns_ns, lns_text, tmp_path, "lns"))
    lac2 = started(Daemon(lac_ns, lac.path.read_text(), tmp_path, "lac"))
    for p in prints:
        assert ok(lns2, *p) == before[p], p
    assert ok(lac2, "interface", "l2tp-client", "print") == lac_before
    assert lac2.stop() == 0

    # export from this daemon, import into a fresh one with an empty file: the same configuration
    exported = ok(lns2, "export", "show-sensitive")
    assert lns2.stop() == 0
    (tmp_path / "export.rsc").write_text(exported)
    fresh = started(Daemon(lns_ns, "", tmp_path, "fresh"))
    assert ok(fresh, "import", str(tmp_path / "export.rsc")) == ""
    assert ok(fresh, "export", "show-sensitive") == exported
    assert load_file(str(fresh.path)) == load_file(str(lns2.path))
    for p in prints:
        assert ok(fresh, *p) == before[p], p
    assert fresh.stop() == 0


# --- bad input ------------------------------------------------------------------------------------

SMALL_FILE = """\
# a small configuration for the error tests
[[ppp.secret]]
name = "ex"        # the laptop
password = "lkjrht"
"""


def test_bad_input_gives_one_line_errors_and_the_daemon_goes_on(netns, tmp_path):
    ns = netns.new("ctl")
    ns.up()
    d = started(Daemon(ns, SMALL_FILE, tmp_path, "d"))
    print_before = ok(d, "ppp", "secret", "print", "detail")
    assert d.socket.stat().st_mode & 0o777 == 0o600  # root only

    msg = fails(d, "frobnicate", "print")  # unknown menu
    assert "frobnicate" in msg
    msg = fails(d, "ppp", "secrets", "print")
    assert "secrets" in msg and "secret" in msg
    msg = fails(d, "ppp", "secret", "frobnicate")  # unknown command
    assert "frobnicate" in msg and "add" in msg and "print" in msg
    msg = fails(d, "ppp", "secret", "add", "name=x", "pasword=y")  # unknown property
    assert "pasword" in msg
    for prop in ("password", "local-address", "remote-address", "routes", "profile"):
        assert prop in msg, msg
    msg = fails(d, "ppp", "secret", "add", "name=x", "local-address=10.0.0.300")  # bad value
    assert "local-address" in msg and "IPv4 address" in msg
    msg = fails(d, "interface", "l2tp-server", "server", "set", "enabled=maybe")
    assert "enabled" in msg and "yes/no" in msg
    msg = fails(d, "interface", "l2tp-server", "server", "set", "keepalive-timeout=soon")
    assert "keepalive-timeout" in msg and "30s" in msg
    msg = fails(d, "ppp", "secret", "set", "7", "password=x")  # no such item
    assert "no such item" in msg
    msg = fails(d, "ppp", "secret", "remove", "nobody")
    assert "no such item" in msg and "nobody" in msg
    msg = fails(d, "ppp", "profile", "remove", "default")
    assert "built-in" in msg
    msg = fails(d, "ppp", "secret", "add", "name=ex", "password=dup")  # refused by the loader
    assert "ex" in msg
    msg = fails(d, "interface", "l2tp-client", "monitor", "nosuch", "once")
    assert "nosuch" in msg
    msg = fails(d, "ppp", "secret", "print", "everything")
    assert "everything" in msg
    fails(d, "ppp", "secret")  # a menu without a command
    fails(d, "import", str(tmp_path / "no-such-file.rsc"))
    (tmp_path / "bad.rsc").write_text("/ppp secret\nadd name=ok1 password=1\nadd name=bad local-address=x\n")
    msg = fails(d, "import", str(tmp_path / "bad.rsc"))
    assert "bad.rsc:3" in msg and "local-address" in msg

    # the daemon is not running there: the socket path is named
    missing = tmp_path / "nothing-here.sock"
    r = d.cli("ppp", "secret", "print")  # sanity: the real socket answers
    assert r.returncode == 0
    r = subprocess.run([sys.executable, "-m", "fastl2tp", "--socket", str(missing), "ppp", "secret", "print"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and len(r.stderr.splitlines()) == 1 and str(missing) in r.stderr
    assert "Traceback" not in r.stderr

    # garbage on the socket itself: an error reply, the connection and the daemon still fine
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(d.socket))
        f = s.makefile("rwb")
        internal = []
        for line in (b"not json\n", b'{"v":1,"cmd":[]}\n', b'{"v":9,"cmd":"print"}\n',
                     b'{"v":1,"cmd":"print","menu":"/no/such"}\n', b'{"v":1,"cmd":"add","menu":"/ppp/secret",'
                     b'"props":{"name":"x","colour":"red"}}\n'):
            f.write(line)
            f.flush()
            reply = json.loads(f.readline())
            assert reply["ok"] is False and reply["error"] and "\n" not in reply["error"], (line, reply)
            if "internal error" in reply["error"]:
                internal.append((line, reply["error"]))
        f.write(b'{"v":1,"id":5,"cmd":"print","menu":"/ppp/secret"}\n')
        f.flush()
        reply = json.loads(f.readline())
        assert reply["ok"] is True and reply["id"] == 5
        f.close()

    # nothing changed, the daemon still answers, and nothing was logged as a crash
    # (the import ran its first command before the bad line, as RouterOS's import does)
    after = ok(d, "ppp", "secret", "print", "detail")
    assert [x["name"] for x in detail(after)] == ["ex", "ok1"]
    assert detail(after)[0] == detail(print_before)[0]
    assert "# the laptop" in d.path.read_text()
    assert d.p.poll() is None
    # an idle client (a console left open) while the daemon stops: a clean stop
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(str(d.socket))
    try:
        assert d.stop() == 0
    finally:
        idle.close()
    # a malformed request is the client's fault, answered as such, not an internal error of the daemon
    assert internal == [], internal
    assert "Traceback" not in log(d), log(d)[-3000:]


def test_remove_every_secret_then_add_one_again(netns, tmp_path):
    ns = netns.new("rm")
    ns.up()
    d = started(Daemon(ns, SMALL_FILE, tmp_path, "d"))
    ok(d, "ppp", "secret", "remove", "0")
    assert table(ok(d, "ppp", "secret", "print")) == []
    ok(d, "ppp", "secret", "add", "name=again", "password=x")
    assert row_of(table(ok(d, "ppp", "secret", "print")), "again")[0] == "0"
    assert load_file(str(d.path)).ppp.secret[0].name == "again"
    assert "# a small configuration for the error tests" in d.path.read_text()
    assert d.stop() == 0


def test_a_comment_added_to_the_file_while_running_survives_a_cli_change(netns, tmp_path):
    """The file is the user's: a comment written into it while the daemon runs (no SIGHUP needed for a
    comment) must not be lost by the next change made through the CLI."""
    ns = netns.new("hand")
    ns.up()
    d = started(Daemon(ns, SMALL_FILE, tmp_path, "d"))
    d.path.write_text(d.path.read_text() + "# added by hand while the daemon runs\n")
    ok(d, "ppp", "secret", "add", "name=two", "password=x")
    text = d.path.read_text()
    assert "two" in text and "# a small configuration for the error tests" in text
    assert "# added by hand while the daemon runs" in text, text
    assert d.stop() == 0


# --- the interactive console ----------------------------------------------------------------------


def test_interactive_console_navigation_command_and_completion(netns, tmp_path):
    ns = netns.new("con")
    ns.up()
    d = started(Daemon(ns, SMALL_FILE, tmp_path, "d"))
    child = pexpect.spawn(sys.executable, ["-m", "fastl2tp", "--socket", str(d.socket)], encoding="utf-8",
                          timeout=15, dimensions=(40, 200), env={"HOME": str(tmp_path), "TERM": "dumb",
                                                                 "PATH": "/usr/bin:/bin"})
    try:
        child.expect(r"\[admin@[^\]]+\] > ")
        child.sendline("/interface l2tp-server")
        child.expect(r"\[admin@[^\]]+\] interface l2tp-server> ")
        child.sendline("print")
        child.expect("Flags: X - disabled, D - dynamic, R - running")
        child.expect(r"NAME +USER +MTU +CLIENT-ADDRESS +UPTIME +ENCODING")
        child.expect(r"\[admin@[^\]]+\] interface l2tp-server> ")
        child.sendline("server")
        child.expect(r"\[admin@[^\]]+\] interface l2tp-server server> ")
        child.sendline("print")
        child.expect(r"enabled: no")
        child.expect(r"\] interface l2tp-server server> ")
        child.sendline("..")
        child.expect(r"\[admin@[^\]]+\] interface l2tp-server> ")
        # completion of a property in this menu: add na<TAB> -> add name=
        child.send("add na\t")
        child.expect_exact("name=")
        child.sendline("FromLaptop user=ex")
        child.expect(r"\] interface l2tp-server> ")
        child.sendline("print")
        child.expect(r"0 +FromLaptop +ex")
        child.expect(r"\] interface l2tp-server> ")
        # monitor refreshes until Ctrl-C, then the prompt is back
        child.sendline("monitor FromLaptop")
        child.expect("status: ")
        child.expect("status: ")
        child.sendintr()
        child.expect(r"\] interface l2tp-server> ")
        child.sendline("..")
        child.expect(r"\[admin@[^\]]+\] interface> ")
        child.sendline("/")
        child.expect(r"\[admin@[^\]]+\] > ")
        # completion of a menu name: /ppp sec<TAB> -> /ppp secret
        child.send("/ppp sec\t")
        child.expect_exact("secret")
        child.sendline(" print")
        child.expect(r"0 +ex ")
        child.expect(r"\[admin@[^\]]+\] > ")
        # an error is one line, and the console goes on
        child.sendline("ppp secret set 9 password=x")
        child.expect("no such item")
        child.expect(r"\[admin@[^\]]+\] > ")
        child.sendline("?")
        child.expect("menus:")
        child.expect(r"\[admin@[^\]]+\] > ")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    # the console's change is in the daemon and in the file
    assert row_of(table(ok(d, "interface", "l2tp-server", "print")), "FromLaptop")[:3] == ["0", "FromLaptop", "ex"]
    assert "FromLaptop" in d.path.read_text() and "# the laptop" in d.path.read_text()
    assert d.stop() == 0
